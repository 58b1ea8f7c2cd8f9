"""Host backend: the C pipeline against targets/host (L1 tiles over the memcpy DMA HAL), a native gcc binary."""

from __future__ import annotations

from pathlib import Path

from edgeflow.backends.base import Artifact, Backend
from edgeflow.backends.c_pipeline import build_host_binary, render_build
from edgeflow.ir.graph import Graph
from edgeflow.runners.native import run_binary
from edgeflow.target import Target


def compile_host(graph: Graph, out_dir: str | Path, compile_binary: bool = True,
                 l1_bytes: int | None = None, target: Target | None = None) -> Artifact:
    """Plan, render and (optionally) build the host firmware of `graph` into out_dir (src/, plan.json,
    report.json, graph.json + weights.npz, firmware). The MemoryPlan decides everything: without a target and
    l1_bytes whole tensors per kernel call; with l1_bytes or a target every linear node runs as L1 tiles
    DMA-double-buffered, and with a target the blobs stream from an external image (weights.bin,
    src/ef_l3_image.c) when they do not fit L2 beside the arena."""
    r = render_build(graph, target, out_dir, "host", l1_bytes=l1_bytes)
    binary = build_host_binary(r.out_dir, r.sources, hal=r.plan.has_runner) if compile_binary else None
    return Artifact(r.out_dir, r.sources, binary, r.plan.to_dict(), r.report)


def compile(graph: Graph, target: Target, out_dir: str | Path) -> Artifact:  # noqa: A001 - the backend contract
    """Backend contract entry: planned against the host target's memory levels (targets/host/target.toml)."""
    return compile_host(graph, out_dir, target=target)


BACKEND = Backend("host", compile, run_windows=run_binary, tolerance=0.0, binary="firmware",
                  description="native gcc binary over the memcpy DMA HAL; windows on stdin, accumulators on stdout")
