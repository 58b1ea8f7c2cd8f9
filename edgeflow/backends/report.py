"""report.json of a C build: per-node MACs, constant bytes, outputs and tiles, the arena and memory by level."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeflow.ir import opdefs
from edgeflow.ir.graph import DTYPES, Graph
from edgeflow.plan.memory import MemoryPlan

TILE_FACTS = ("n_tiles", "rows_per_tile", "tokens_per_tile", "l1_bytes_used", "dma_bytes")


def _macs(graph: Graph, op: str, ins: list[tuple[int, ...]], out: tuple[int, ...], attrs: dict[str, Any]) -> int:
    """Multiply-accumulates of one node (0 for data movement; an estimate for the scan), from the op registry."""
    return opdefs.macs(op, ins, [out], attrs)


def build_report(graph: Graph, plan: MemoryPlan, weight_bytes: int, backend: str) -> dict[str, Any]:
    """The report of a rendered build (weight_bytes: every constant byte, resident and streamed)."""
    nodes = []
    for i, n in enumerate(graph.nodes):
        ins = [tuple(graph.tensors[t].shape) for t in n.inputs]
        out = tuple(graph.tensors[n.outputs[0]].shape)
        act = sum(int(np.prod(graph.tensors[o].shape)) * DTYPES[graph.tensors[o].dtype] // 8
                  for o in n.outputs if o not in plan.flip_views and o not in plan.aliases)
        node: dict[str, Any] = {"index": i, "name": n.name, "op": n.op, "macs": _macs(graph, n.op, ins, out, n.attrs),
                                "weight_bytes": plan.node_weight_bytes.get(n.name, 0), "output_bytes": act}
        if n.name in plan.linears:
            info = plan.linears[n.name].to_dict()
            node["tiling"] = {k: info[k] for k in TILE_FACTS}
        nodes.append(node)
    report: dict[str, Any] = {
        "model": graph.name, "backend": backend,
        "tiling": (f"linear nodes in L1 tiles of <= {plan.l1_bytes} bytes, DMA double-buffered" if plan.tiled
                   else "none (whole tensors per kernel call)"),
        "arena_bytes": plan.arena.size, "arena_lower_bound": plan.arena.lower_bound, "weight_bytes": weight_bytes,
        "macs": sum(n["macs"] for n in nodes), "nodes": nodes}
    if plan.placement is not None:
        report["memory"] = plan.to_dict()["memory"]
    return report
