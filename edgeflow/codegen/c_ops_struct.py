"""C statements of the data movement ops: reshape (a planned view), transpose and slice (strided gather), gather
(rows at constant offsets), concat."""

from __future__ import annotations

from collections.abc import Callable

from edgeflow.codegen.calls import call
from edgeflow.codegen.emitter import CodegenError, Emitter, need
from edgeflow.codegen.emitter import n_elems as _n
from edgeflow.ir.graph import DTYPES, Node
from edgeflow.ir.opdefs.structural import MAX_DIMS, c_strides
from edgeflow.plan.liveness import nbytes


def _gather(e: Emitter, n: Node, x: str, shape: list[int], strides: list[int]) -> list[str]:
    """One ef_gather_strided_i8 call with its shape and strides as static arrays."""
    if e.graph.tensors[n.inputs[0]].dtype != "int8" or len(shape) > MAX_DIMS:
        raise CodegenError(f"node '{n.name}' ({n.op}): only int8 tensors of up to {MAX_DIMS} axes, got "
                           f"{e.graph.tensors[n.inputs[0]].dtype} {e.shape(n.inputs[0])}")
    k = max(len(shape), 1)
    dims = ", ".join(map(str, shape)) or "1"
    steps = ", ".join(map(str, strides)) or "0"
    return ["{",
            f"    static const int32_t shape[{k}] = {{{dims}}};",
            f"    static const int32_t strides[{k}] = {{{steps}}};",
            "    " + call("ef_gather_strided_i8", x, len(shape), "shape", "strides", e.act(n.outputs[0])),
            "}"]


def _transpose(e: Emitter, n: Node) -> list[str]:
    need(n, 1)
    shp, perm = list(e.shape(n.inputs[0])), [int(p) for p in n.attrs["perm"]]
    st = c_strides(shp)
    return _gather(e, n, e.act(n.inputs[0]), [shp[p] for p in perm], [st[p] for p in perm])


def _slice(e: Emitter, n: Node) -> list[str]:
    need(n, 1)
    off = int(n.attrs["offset"])
    x = e.act(n.inputs[0]) + (f" + {off}" if off else "")
    return _gather(e, n, x, [int(d) for d in n.attrs["shape"]], [int(s) for s in n.attrs["strides"]])


def _gather_rows(e: Emitter, n: Node) -> list[str]:
    """One ef_gather_rows_i8 call with the row offsets as a static array (16 a line)."""
    need(n, 1)
    if e.graph.tensors[n.inputs[0]].dtype != "int8":
        raise CodegenError(f"node '{n.name}' (gather): only int8 tensors, got {e.graph.tensors[n.inputs[0]].dtype}")
    offs = [int(o) for o in n.attrs["offsets"]]
    rows = [", ".join(map(str, offs[k:k + 16])) for k in range(0, len(offs), 16)]
    table = [f"    static const int32_t offsets[{len(offs)}] = {{"] + [f"        {r}," for r in rows] + ["    };"]
    return ["{", *table,
            "    " + call("ef_gather_rows_i8", e.act(n.inputs[0]), "offsets", len(offs), int(n.attrs["row_len"]),
                          int(n.attrs["step"]), e.act(n.outputs[0])),
            "}"]


def _reshape(e: Emitter, n: Node) -> list[str]:
    need(n, 1)
    if n.outputs[0] in e.plan.aliases:
        return [f"/* {n.outputs[0]}: a view of {e.plan.aliases[n.outputs[0]]} (same bytes, no copy) */"]
    return [f"memcpy({e.act(n.outputs[0])}, {e.act(n.inputs[0])}, {nbytes(e.graph, n.outputs[0])});"]


def _concat(e: Emitter, n: Node) -> list[str]:
    """Each input is a block of rows: outer = prod(shape[:axis]) rows of prod(shape[axis:]) elements."""
    y = n.outputs[0]
    shp = e.shape(y)
    axis = int(n.attrs.get("axis", -1)) % max(len(shp), 1)
    outer, size = _n(shp[:axis]), DTYPES[e.graph.tensors[y].dtype] // 8
    width, col, lines = _n(shp[axis:]), 0, []
    for p in n.inputs:
        w = _n(e.shape(p)[axis:])
        lines.append(f"copy_rows((const uint8_t *)(const void *){e.act(p)}, {w * size}, "
                     f"(uint8_t *)(void *){e.act(y)} + {col * size}, {width * size}, {outer}, {w * size});")
        col += w
    return lines


#: data movement op -> renderer (merged into c_ops.EMITTERS).
STRUCT_EMITTERS: dict[str, Callable[[Emitter, Node], list[str]]] = {
    "reshape": _reshape, "transpose": _transpose, "slice": _slice, "gather": _gather_rows, "concat": _concat,
}
