"""Pass: drop nodes whose outputs nobody reads (and constants no node reads any more)."""

from __future__ import annotations

from edgeflow.ir.graph import Graph


def dead_code(graph: Graph) -> Graph:
    """Remove nodes that do not contribute to a graph output, then unreferenced constant tensors."""
    g = graph.copy()
    live = set(g.outputs)
    keep = []
    for n in reversed(g.nodes):
        if any(o in live for o in n.outputs):
            keep.append(n)
            live.update(n.inputs)
    g.nodes = list(reversed(keep))
    used = {t for n in g.nodes for t in (*n.inputs, *n.outputs)} | set(g.inputs) | set(g.outputs)
    g.tensors = {k: t for k, t in g.tensors.items() if k in used}
    return g
