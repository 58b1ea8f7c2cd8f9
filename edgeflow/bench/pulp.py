"""pulp-open (GVSoC) row: cycles per window, MAC/cycle, per layer compute vs exposed DMA at 8 cores (a hook).

Reported "not available" with the reason until the pulp-open backend ("pulp-open" in edgeflow.backends.BACKENDS)
and its GVSoC runner (edgeflow.runners.gvsoc: find_install, run(elf, windows, n_out, cores) -> (int32 outputs, raw
profile), summarize(raw, report nodes, clock_hz) -> per-layer cycles and exposed DMA) are installed here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

TARGET = "pulp-open"
CORES = 8


def _runner():
    return importlib.import_module("edgeflow.runners.gvsoc")


def available() -> str | None:
    """None when the pulp-open row can run, else why not (one line)."""
    from edgeflow.backends import BACKENDS

    if TARGET not in BACKENDS:
        return "not available: pulp-open backend missing (no 'pulp-open' in edgeflow.backends)"
    try:
        gvsoc = _runner()
    except ImportError:
        return "not available: GVSoC runner missing (edgeflow.runners.gvsoc not importable)"
    if gvsoc.find_install() is None:
        return "not available: GVSoC not installed (tools/setup_gvsoc.sh)"
    return None


def bench_pulp(onnx_path: Path, card: str, build_dir: Path, xq: np.ndarray) -> dict[str, Any]:
    """Build for pulp-open, run the windows on GVSoC at 8 cores, check them against the reference, per layer."""
    from edgeflow.build import build
    from edgeflow.ir.graph import Graph
    from edgeflow.ir.reference import run
    from edgeflow.target import load_target

    gvsoc = _runner()
    report = build(onnx_path, TARGET, build_dir, name=card)
    graph = Graph.load(build_dir)
    ref = np.stack([np.asarray(run(graph, w)[graph.outputs[0]]).reshape(-1) for w in xq])
    got, raw = gvsoc.run(build_dir / "firmware.elf", xq, ref.shape[1], cores=CORES)
    summary = gvsoc.summarize(raw, report["nodes"], load_target(TARGET).clock_hz)
    bad = int((np.asarray(got) != ref).any(axis=1).sum())
    cycles = float(np.mean(summary["cycles_per_window"]))
    layers = [{k: x[k] for k in ("name", "op", "macs", "cycles", "dma_exposed_cycles")} for x in summary["layers"]]
    return {"available": True, "cores": CORES, "windows": len(xq), "cycles_per_window": int(cycles),
            "macs": report["macs"], "mac_per_cycle": report["macs"] / cycles, "clock_hz": summary.get("clock_hz"),
            "dma_exposed_cycles": summary.get("dma_exposed_cycles"),
            "check": {"kind": "bit-exact int32 accumulators vs the numpy reference", "windows": len(xq),
                      "mismatched": bad, "ok": bad == 0}, "layers": layers}
