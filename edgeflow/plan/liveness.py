"""Liveness of the activations: one arena Buffer per tensor (first / last step), flip views, reshape aliases,
per-node scratch."""

from __future__ import annotations

import numpy as np

from edgeflow.ir import opdefs
from edgeflow.ir.graph import DTYPES, Graph, Node
from edgeflow.plan.arena import Buffer

#: ops whose output may be a reversed view of their input (no copy) when every consumer reads through strides.
FLIP_OPS = ("flip_time",)
#: ops that can read an input through a negative row stride.
STRIDED_READERS = frozenset({"add_requant"})


def _n(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


def nbytes(graph: Graph, name: str) -> int:
    """Bytes of tensor `name` as stored (elements x dtype width)."""
    t = graph.tensors[name]
    return _n(t.shape) * DTYPES[t.dtype] // 8


def _is_flip_view(graph: Graph, n: Node) -> bool:
    """A time flip whose output only feeds strided readers (and is not a graph output) needs no buffer."""
    if n.op not in FLIP_OPS or int(n.attrs.get("axis", 0)) != 0 or len(n.outputs) != 1:
        return False
    out = n.outputs[0]
    users = graph.consumers(out)
    return out not in graph.outputs and bool(users) and all(u.op in STRIDED_READERS for u in users)


def flip_views(graph: Graph) -> dict[str, str]:
    """Flipped tensor -> the tensor it reverses, for every flip rendered as a negative-stride view."""
    return {n.outputs[0]: n.inputs[0] for n in graph.nodes if _is_flip_view(graph, n)}


#: ops whose output is the same bytes as their input (a view: no buffer, no copy).
ALIAS_OPS = ("reshape",)


def aliases(graph: Graph) -> dict[str, str]:
    """View tensor -> the tensor whose buffer it is (a reshape reads its input's bytes in order: zero-copy),
    followed to the end of a chain of views; the base may be the graph input (the caller's window)."""
    out: dict[str, str] = {}
    for n in graph.nodes:
        if n.op in ALIAS_OPS and len(n.inputs) == 1 and len(n.outputs) == 1:
            src = n.inputs[0]
            if graph.tensors[src].data is None and graph.tensors[src].dtype == graph.tensors[n.outputs[0]].dtype:
                out[n.outputs[0]] = out.get(src, src)
    return out


def scratch_bytes(graph: Graph, n: Node) -> int:
    """Per-node scratch bytes in the arena (the scan state h: d_inner x d_state int32), from the op registry."""
    return opdefs.scratch_bytes(n.op, [tuple(graph.tensors[t].shape) for t in n.inputs], n.attrs)


def scratch_name(n: Node) -> str:
    """The arena buffer name of node n's scratch."""
    return f"{n.name}#scratch"


#: producers whose int8 output a multi-core build passes through a following lookup table itself (plan.fused_luts)
LUT_PRODUCERS = ("linear", "dwconv1d_causal")


def fused_luts(graph: Graph) -> dict[str, str]:
    """lut node -> the node producing its input, for every lut whose input is a `linear` or `dwconv1d_causal`
    node's int8 output that nothing else reads (and no graph output): the tiled runner (the conv's L1 stage)
    applies the table to each tile (block) in L1 before it leaves, so the lut's output is the producer's buffer
    (an alias, see activation_buffers)."""
    out: dict[str, str] = {}
    for n in graph.nodes:
        if n.op != "lut" or len(n.inputs) != 2 or len(n.outputs) != 1:
            continue
        src, table = n.inputs
        p = graph.producer(src)
        t = graph.tensors[table]
        if (p is None or p.op not in LUT_PRODUCERS or src in graph.outputs or len(graph.consumers(src)) != 1
                or t.data is None or t.dtype != "int8" or _n(tuple(t.shape)) != 256
                or graph.tensors[src].dtype != "int8" or graph.tensors[n.outputs[0]].dtype != "int8"):
            continue
        out[n.name] = p.name
    return out


def lut_aliases(graph: Graph, fused: dict[str, str]) -> dict[str, str]:
    """The outputs of fused luts -> their inputs (the producer's buffer, which holds the looked-up bytes)."""
    nodes = {n.name: n for n in graph.nodes}
    return {nodes[k].outputs[0]: nodes[k].inputs[0] for k in fused}


def merge_aliases(*maps: dict[str, str]) -> dict[str, str]:
    """The union of alias maps with every chain followed to its base (a reshape of a fused lut's output reads the
    lut's producer's buffer)."""
    out: dict[str, str] = {}
    for m in maps:
        out.update(m)
    for k in out:
        base, seen = out[k], {k}
        while base in out and base not in seen:
            seen.add(base)
            base = out[base]
        out[k] = base
    return out


def activation_buffers(graph: Graph, extra_aliases: dict[str, str] | None = None) -> list[Buffer]:
    """One Buffer per non-constant tensor (graph inputs excluded: the caller owns the window), live from its
    producer's step to its last reader's step (graph outputs to the last step), plus per-node scratch;
    extra_aliases (fused luts' outputs) read their base's buffer, which lives to their last reader."""
    views = flip_views(graph)
    alias = merge_aliases(aliases(graph), extra_aliases or {})
    last_step = len(graph.nodes) - 1
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, n in enumerate(graph.nodes):
        for t in n.inputs:
            src = alias.get(views.get(t, t), views.get(t, t))
            if src in first:
                last[src] = max(last.get(src, i), i)
        for t in n.outputs:
            if t not in views and t not in alias:
                first[t] = i
    kept = {alias.get(t, t) for t in graph.outputs}     # a graph output (or the buffer it views) lives to the end
    bufs = [Buffer(t, nbytes(graph, t), i, last_step if t in kept else last.get(t, i))
            for t, i in first.items()]
    bufs += [Buffer(scratch_name(n), scratch_bytes(graph, n), i, i)
             for i, n in enumerate(graph.nodes) if scratch_bytes(graph, n)]
    return bufs
