"""Pass: remove data-movement nodes that move nothing (identity, same-shape reshape, identity transpose,
one-piece split/concat); their readers read the source tensor instead."""

from __future__ import annotations

from edgeflow.ir.graph import Graph, Node


def _is_noop(g: Graph, n: Node) -> bool:
    if len(n.inputs) != 1 or len(n.outputs) != 1:
        return False
    src, dst = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    if (src.dtype, src.bits, src.zero_point) != (dst.dtype, dst.bits, dst.zero_point):
        return False
    if n.op == "identity":
        return True
    if n.op == "reshape":
        return tuple(src.shape) == tuple(dst.shape)
    if n.op == "transpose":
        return list(n.attrs.get("perm", [])) == list(range(len(src.shape)))
    if n.op in ("split", "concat"):
        return tuple(src.shape) == tuple(dst.shape)
    return False


def fold_identity(graph: Graph) -> Graph:
    """Readers of a no-op node's output read its input; a no-op whose output is a graph output stays."""
    g = graph.copy()
    for n in list(g.nodes):
        if not _is_noop(g, n) or n.outputs[0] in g.outputs:
            continue
        src, dst = n.inputs[0], n.outputs[0]
        for m in g.nodes:
            m.inputs = [src if t == dst else t for t in m.inputs]
        g.nodes.remove(n)
        del g.tensors[dst]
    return g
