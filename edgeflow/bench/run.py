"""The bench run: for every (model, weight bits) the host peers, rv32, pulp-open and memory rows; results.json."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.bench import host, memory, pulp, rv32
from edgeflow.bench.models import BenchError, Subject, export_int8, prepare

SECTIONS = ("rv32", "pulp-open", "memory")
ALL_PEERS = (*host.HOST_PEERS, *SECTIONS)
RESULTS = "results.json"


@dataclass
class BenchConfig:
    """What to run; the defaults finish in a few minutes on two cores."""

    models: list[str] = field(default_factory=lambda: ["femba-mini"])
    weights: list[int] = field(default_factory=lambda: [2])
    peers: list[str] = field(default_factory=lambda: list(ALL_PEERS))
    windows: int = 20
    rv32_windows: int = 2
    out: Path = Path("build/bench")
    command: str = ""

    def __post_init__(self) -> None:
        bad = [p for p in self.peers if p not in ALL_PEERS]
        if bad:
            raise BenchError(f"unknown peer '{bad[0]}' (known: {', '.join(ALL_PEERS)})")
        bad_w = [w for w in self.weights if w not in (2, 4, 8)]
        if bad_w:
            raise BenchError(f"--weights {bad_w[0]}: weight bits must be 2, 4 or 8")


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    cpu = platform.processor()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}  # a busy machine inflates wall time


def _int8_levels(cfg: BenchConfig, s: Subject, cache: dict) -> tuple[dict | None, str | None]:
    """Memory levels of the same card built with 8-bit weights (built once per card)."""
    if s.card not in cache:
        if s.bits == 8:
            cache[s.card] = (memory.build_levels(s.onnx, s.card, s.folder / memory.MEMORY_TARGET), s.quant_source)
        else:
            path, src = export_int8(s.card, cfg.out)
            cache[s.card] = (memory.build_levels(path, s.card, path.parent / memory.MEMORY_TARGET), src)
    return cache[s.card]


def bench_subject(cfg: BenchConfig, card: str, bits: int, log: Callable[[str], None], cache: dict) -> dict:
    """Every requested row of one (card, bits)."""
    want_host = [p for p in host.HOST_PEERS if p in cfg.peers]
    t0 = time.monotonic()
    log(f"{card} {bits}-bit: preparing (export, host build, reference answers) ...")
    s = prepare(card, bits, cfg.windows, cfg.out, chunked="tvm" in cfg.peers and host.available("tvm") is None,
                host="edgeflow-c" in cfg.peers)
    row: dict[str, Any] = {"card": card, "bits": bits, "quant_source": s.quant_source, "float_source": s.float_source,
                           "n_params": s.n_params, "macs": s.macs, "prepare_s": time.monotonic() - t0}
    if want_host:
        log(f"{card} {bits}-bit: host peers {', '.join(want_host)}, {cfg.windows} windows interleaved ...")
        row["host"] = host.run_host(s, want_host, cfg.windows, log)
    xq = np.load(s.windows)["xq"][1:]
    if "rv32" in cfg.peers:
        why = rv32.available()
        if why:
            row["rv32"] = {"available": False, "reason": why}
        else:
            log(f"{card} {bits}-bit: rv32 on QEMU, {min(cfg.rv32_windows, len(xq))} windows ...")
            row["rv32"] = rv32.bench_rv32(s.onnx, card, s.folder / "rv32-virt", xq[:cfg.rv32_windows])
    if "pulp-open" in cfg.peers:
        why = pulp.available()
        row["pulp-open"] = ({"available": False, "reason": why} if why else
                            pulp.bench_pulp(s.onnx, card, s.folder / pulp.TARGET, xq[:cfg.rv32_windows]))
    if "memory" in cfg.peers:
        log(f"{card} {bits}-bit: memory ({memory.MEMORY_TARGET} build, and with 8-bit weights) ...")
        int8, src = _int8_levels(cfg, s, cache)
        rv32_report = row.get("rv32") if row.get("rv32", {}).get("available") else None
        row["memory"] = memory.memory_row(s, int8, src, rv32_report)
    if not row["macs"]:  # no host build: the MACs of whichever build ran
        row["macs"] = int(next((row[k]["macs"] for k in ("rv32", "pulp-open", "memory") if row.get(k, {}).get("macs")),
                               0))
    return row


def checks(row: dict[str, Any]) -> list[tuple[str, bool]]:
    """(peer, ok) of every correctness check in a row."""
    out = [(p, r["check"]["ok"]) for p, r in row.get("host", {}).get("peers", {}).items() if "check" in r]
    out += [(k, row[k]["check"]["ok"]) for k in ("rv32", "pulp-open") if "check" in row.get(k, {})]
    return out


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every (model, bits) of cfg; write <out>/results.json; return the results."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    cache: dict = {}
    rows = [bench_subject(cfg, card, bits, log, cache) for card in cfg.models for bits in cfg.weights]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results = {"edgeflow_bench": 1, "command": cfg.command, "created": created,
               "machine": machine(), "config": {**asdict(cfg), "out": str(cfg.out)}, "rows": rows,
               "timing": "per window: CPU time of the peer's own process (the stable figure on a shared machine) and "
                         "wall time; median and min over the timed windows; one untimed warm-up window first",
               "ok": all(ok for r in rows for _, ok in checks(r)), "elapsed_s": time.monotonic() - t0}
    (cfg.out / RESULTS).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return results
