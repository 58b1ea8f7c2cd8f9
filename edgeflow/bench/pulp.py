"""pulp-open (GVSoC) row: cycles per window, MAC/cycle, per layer compute vs exposed DMA at 8 cores (hook).

The row is reported "not available" with the reason until the pulp-open backend and GVSoC exist here. To wire
it: the backend registers "pulp-open" in edgeflow.backends.BACKENDS and a runner in RUNNERS; a cycle profiler
`profile_windows(build_dir, xq) -> list[dict]` (per window: "outputs" int32, "cycles", "layers": [{"cycles",
"dma_exposed_cycles"}] in IR node order) in edgeflow.backends.pulp_open; bench_pulp below turns it into the row.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np

TARGET = "pulp-open"
CORES = 8


def available() -> str | None:
    """None when the pulp-open row can run, else why not (one line)."""
    from edgeflow.backends import BACKENDS

    if shutil.which("gvsoc") is None:
        return "not available: GVSoC not installed (gvsoc not on PATH)"
    if TARGET not in BACKENDS:
        return "not available: pulp-open backend missing (edgeflow.backends has no 'pulp-open')"
    try:
        mod = importlib.import_module("edgeflow.backends.pulp_open")
    except ImportError:
        return "not available: edgeflow.backends.pulp_open not importable"
    if not hasattr(mod, "profile_windows"):
        return "not available: the pulp-open backend has no cycle profiler (profile_windows) yet"
    return None


def bench_pulp(onnx_path: Path, card: str, build_dir: Path, xq: np.ndarray) -> dict[str, Any]:
    """Build for pulp-open, run the windows on GVSoC, check them against the reference, per-layer cycles."""
    from edgeflow.build import build
    from edgeflow.ir.graph import Graph
    from edgeflow.ir.reference import run

    mod = importlib.import_module("edgeflow.backends.pulp_open")
    report = build(onnx_path, TARGET, build_dir, name=card)
    graph = Graph.load(build_dir)
    runs = mod.profile_windows(build_dir, xq)
    exact = sum(int(np.array_equal(np.asarray(r["outputs"]).reshape(-1),
                                   np.asarray(run(graph, w)[graph.outputs[0]]).reshape(-1)))
                for r, w in zip(runs, xq, strict=True))
    cycles = float(np.mean([r["cycles"] for r in runs]))
    layers = [{"name": n["name"], "op": n["op"], "macs": n["macs"], "cycles": int(lay["cycles"]),
               "dma_exposed_cycles": int(lay.get("dma_exposed_cycles", 0))}
              for n, lay in zip(report["nodes"], runs[-1]["layers"], strict=False)]
    return {"available": True, "cores": CORES, "windows": len(runs), "cycles_per_window": int(cycles),
            "macs": report["macs"], "mac_per_cycle": report["macs"] / cycles,
            "check": {"kind": "bit-exact int32 accumulators vs the numpy reference", "windows": len(runs),
                      "mismatched": len(runs) - exact, "ok": exact == len(runs)}, "layers": layers}
