"""verify(graph): the invariants of the IR (tensors, graph wiring, order) and every node against its OpDef."""

from __future__ import annotations

import numpy as np

from edgeflow.ir.graph import DTYPES, UNSCALED_DTYPES, Graph, IRError, Node, Tensor, known_ops
from edgeflow.ir.opdefs import ShapeError, TensorType, check_node


def _code_range(dtype: str, bits: int) -> tuple[int, int]:
    return (0, (1 << bits) - 1) if dtype.startswith("uint") else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _verify_tensor(key: str, t: Tensor) -> None:
    w = f"tensor '{key}'"
    if t.name != key:
        raise IRError(f"{w}: is stored under a different name ('{t.name}')")
    if not isinstance(t.shape, tuple) or not all(type(d) is int and d >= 1 for d in t.shape):
        raise IRError(f"{w}: shape {t.shape!r} must be a tuple of positive ints")
    if t.dtype not in DTYPES:
        raise IRError(f"{w}: dtype '{t.dtype}' is not one of {', '.join(DTYPES)}")
    width = DTYPES[t.dtype]
    if t.dtype == "float32":
        if t.bits != 32 or t.scale is not None or t.zero_point != 0:
            raise IRError(f"{w}: float32 needs bits 32, scale None, zero_point 0 (got {t.bits}, {t.scale}, "
                          f"{t.zero_point})")
    else:
        if isinstance(t.bits, bool) or not isinstance(t.bits, int) or not 1 <= t.bits <= width:
            raise IRError(f"{w}: bits {t.bits!r} outside 1..{width} for {t.dtype}")
        lo, hi = _code_range(t.dtype, t.bits)
        if not lo <= t.zero_point <= hi:
            raise IRError(f"{w}: zero_point {t.zero_point} outside [{lo}, {hi}] for {t.bits}-bit {t.dtype}")
        if t.scale is None:
            if t.dtype not in UNSCALED_DTYPES and t.data is None:
                raise IRError(f"{w}: {t.dtype} activation needs a scale (None only for int32/int64 or constants)")
        else:
            s = np.asarray(t.scale, dtype=np.float64)
            if s.ndim > 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
                raise IRError(f"{w}: scale must be a finite float > 0 or a 1-d array of them, got {t.scale!r}")
    if t.data is not None:
        d = t.data
        if not isinstance(d, np.ndarray) or d.dtype != np.dtype(t.dtype) or d.shape != t.shape:
            got = f"{d.dtype} {d.shape}" if isinstance(d, np.ndarray) else type(d).__name__
            raise IRError(f"{w}: constant data is {got}, declared {t.dtype} {t.shape}")
        if t.dtype != "float32" and d.size:
            lo, hi = _code_range(t.dtype, t.bits)
            if int(d.min()) < lo or int(d.max()) > hi:
                raise IRError(f"{w}: constant values [{d.min()}, {d.max()}] outside {t.bits}-bit [{lo}, {hi}]")
        elif d.size and not np.all(np.isfinite(d)):
            raise IRError(f"{w}: constant data is not finite")


def verify_graph(graph: Graph) -> None:
    """Check the invariants every pass keeps; IRError (one line naming the node or tensor) on the first problem.

    Scale rule: integer tensors carry a scale > 0 (float, or 1-d per-channel array) except int32/int64 tensors
    (accumulators, biases, requant multipliers and shifts) and constants (tables, packed data), which may have
    scale None; float32 tensors have scale None, bits 32 and zero point 0.
    """
    g = f"graph '{graph.name}'"
    for key, t in graph.tensors.items():
        _verify_tensor(key, t)
    for name in graph.inputs:
        if name not in graph.tensors:
            raise IRError(f"{g}: graph input '{name}' is not a tensor of the graph")
        if graph.tensors[name].data is not None:
            raise IRError(f"{g}: graph input '{name}' is a constant")
    ops = known_ops()
    producer: dict[str, str] = {}
    seen_nodes: set[str] = set()
    for n in graph.nodes:
        w = f"node '{n.name}' ({n.op})"
        if n.name in seen_nodes:
            raise IRError(f"{w}: node name used twice")
        seen_nodes.add(n.name)
        if n.op not in ops:
            raise IRError(f"{w}: unknown op '{n.op}'")
        if not n.outputs:
            raise IRError(f"{w}: has no outputs")
        for t in n.inputs:
            if t not in graph.tensors:
                raise IRError(f"{w}: input '{t}' is not a tensor of the graph")
        for t in n.outputs:
            if t not in graph.tensors:
                raise IRError(f"{w}: output '{t}' is not a tensor of the graph")
            if t in producer:
                raise IRError(f"{w}: tensor '{t}' already produced by node '{producer[t]}'")
            if t in graph.inputs:
                raise IRError(f"{w}: writes graph input '{t}'")
            if graph.tensors[t].data is not None:
                raise IRError(f"{w}: writes constant tensor '{t}'")
            producer[t] = n.name
    graph.topo_sort()  # raises on a cycle
    available = set(graph.inputs) | {k for k, t in graph.tensors.items() if t.data is not None}
    for n in graph.nodes:
        for t in n.inputs:
            if t not in available:
                if t in producer:
                    raise IRError(f"node '{n.name}' ({n.op}): nodes not in topological order: input '{t}' is "
                                  f"produced later by node '{producer[t]}'")
                raise IRError(f"node '{n.name}' ({n.op}): input '{t}' is never produced (not an input or constant)")
        available.update(n.outputs)
    for name in graph.outputs:
        if name not in graph.tensors:
            raise IRError(f"{g}: graph output '{name}' is not a tensor of the graph")
        if name not in producer:
            raise IRError(f"{g}: graph output '{name}' is never produced by a node")
    for n in graph.nodes:
        _verify_op(graph, n)


def _verify_op(graph: Graph, n: Node) -> None:
    """The node against its OpDef: arity, constants, attributes, input shapes that fit each other and declared
    output shapes equal to the inferred ones (IRError naming the node and both shapes)."""
    def typ(name: str) -> TensorType:
        t = graph.tensors[name]
        return TensorType(tuple(t.shape), t.dtype, t.bits, t.layout, t.data is not None)

    outs = [(tuple(graph.tensors[o].shape), graph.tensors[o].dtype) for o in n.outputs]
    try:
        check_node(n.op, [typ(i) for i in n.inputs], n.inputs, outs, n.outputs, n.attrs)
    except ShapeError as e:
        raise IRError(f"node '{n.name}' ({n.op}): {e}") from None
