"""rv32 (QEMU -icount, exact counts): retired instructions per window, per MAC and per layer of the device firmware."""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def available() -> str | None:
    """None when the rv32 row can run here, else why not."""
    from edgeflow.target import load_target

    for exe in (load_target("rv32-virt").toolchain, "qemu-system-riscv32"):
        if shutil.which(exe) is None:
            return f"not available: {exe} not found on PATH"
    return None


def by_layer(nodes: list[dict], layers: list[int]) -> list[dict[str, Any]]:
    """Per IR node: name, op, MACs and instructions (zip of the report's nodes with the device's layer counts)."""
    return [{"name": n["name"], "op": n["op"], "macs": n["macs"], "instret": int(i)}
            for n, i in zip(nodes, layers, strict=False)]


def by_op(layers: list[dict[str, Any]], total: float) -> dict[str, dict[str, Any]]:
    """Instructions and MACs summed per op kind, largest first, with the share of the window."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in layers:
        acc[r["op"]][0] += r["instret"]
        acc[r["op"]][1] += r["macs"]
    return {op: {"instret": v[0], "macs": v[1], "share": v[0] / total if total else 0.0,
                 "instret_per_mac": (v[0] / v[1]) if v[1] else None}
            for op, v in sorted(acc.items(), key=lambda kv: -kv[1][0])}


def bench_rv32(onnx_path: Path, card: str, build_dir: Path, xq: np.ndarray) -> dict[str, Any]:
    """Build firmware.elf for rv32-virt, start QEMU, send the int8 windows over the link, check every answer
    against the numpy reference and collect the device's instruction counts (whole window and per layer)."""
    from edgeflow.build import build
    from edgeflow.ir.graph import Graph
    from edgeflow.ir.reference import run
    from edgeflow.link.model_info import model_hash
    from edgeflow.link.session import Session, open_port
    from edgeflow.runners import qemu_rv32 as emulator

    t0 = time.monotonic()
    report = build(onnx_path, "rv32-virt", build_dir, name=card)
    build_s = time.monotonic() - t0
    graph = Graph.load(build_dir)
    instret: list[int] = []
    layers: list[int] = []
    exact, wall = 0, []
    dev = emulator.start(build_dir)
    try:
        port = open_port(dev.port, write_timeout=emulator.WRITE_TIMEOUT_S)
        try:
            session = Session(port, model_hash(build_dir), timeout_s=600.0, retries=1, name=dev.port)
            session.handshake()
            for i, w in enumerate(xq):
                t = time.monotonic()
                ans = session.infer(i + 1, np.ascontiguousarray(w, dtype=np.int8).tobytes())
                wall.append(time.monotonic() - t)
                want = np.asarray(run(graph, w)[graph.outputs[0]]).reshape(-1)
                exact += int(np.array_equal(np.asarray(ans.output.values), want))
                instret.append(ans.output.instret)
                layers = list(ans.output.layer_instret)
        finally:
            port.close()
    finally:
        emulator.stop(build_dir)
    macs = report["macs"]
    mean = float(np.mean(instret))
    rows = by_layer(report["nodes"], layers)
    return {"available": True, "windows": len(instret), "macs": macs, "instret_per_window": int(mean),
            "instret_min": int(min(instret)), "instret_max": int(max(instret)), "instret_per_mac": mean / macs,
            "wall_s_per_window": float(np.mean(wall)), "build_s": build_s, "firmware": report.get("firmware"),
            "check": {"kind": "bit-exact int32 accumulators vs the numpy reference", "windows": len(instret),
                      "mismatched": len(instret) - exact, "ok": exact == len(instret)},
            "layers": rows, "by_op": by_op(rows, mean)}
