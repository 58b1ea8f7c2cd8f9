"""C statements of each IR op: one whole-tensor kernel call per node on the plan's arena offsets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeflow.codegen import c_tiled
from edgeflow.codegen.c_ops_cnn import CNN_EMITTERS
from edgeflow.codegen.c_ops_struct import STRUCT_EMITTERS
from edgeflow.codegen.c_ops_zp import ZP_EMITTERS
from edgeflow.codegen.c_tiled_scan import emit_tiled_scan
from edgeflow.codegen.c_weights import c_literal
from edgeflow.codegen.calls import call
from edgeflow.codegen.emitter import CodegenError, Emitter, need, rows_cols
from edgeflow.codegen.emitter import n_elems as _n
from edgeflow.ir.graph import DTYPES, Graph, Node
from edgeflow.plan.liveness import nbytes


def _linear(e: Emitter, n: Node) -> list[str]:
    need(n, 5)
    lp = e.plan.linears.get(n.name)
    if lp is not None:  # the plan runs this layer as L1 tiles, DMA double-buffered
        return c_tiled.emit_tiled_linear(e, n, lp)
    t, k = rows_cols(e.shape(n.inputs[0]))
    o = e.shape(n.inputs[1])[0]
    x, w, b, m, sh = n.inputs
    return [call("ef_linear_i8", e.act(x), k, k, e.const(w, "packed"), e.bits(w), e.const(b), e.const(m), e.const(sh),
                 e.act(n.outputs[0]), o, 0, t, 0, o)]


def _linear_acc(e: Emitter, n: Node) -> list[str]:
    need(n, 2, 3)
    t, k = rows_cols(e.shape(n.inputs[0]))
    w = n.inputs[1]
    o = e.shape(w)[0]
    return [call("ef_linear_acc_i32", e.act(n.inputs[0]), k, k, e.const(w, "packed"), e.bits(w), e.opt_const(n, 2),
                 e.act(n.outputs[0]), o, 0, t, 0, o)]


def _requant(e: Emitter, n: Node) -> list[str]:
    need(n, 3)
    t, o = rows_cols(e.shape(n.inputs[0]))
    acc, m, sh = n.inputs
    return [call("ef_requant_zp_i8", e.act(acc), t, o, e.const(m), e.const(sh), int(n.attrs["zp"]),
                 e.act(n.outputs[0]))]


def _conv2d_patch(e: Emitter, n: Node) -> list[str]:
    need(n, 5, 6)
    kh, kw = (int(v) for v in n.attrs["kernel"])
    h, wd = e.shape(n.inputs[0])
    x, w, b, m, sh = n.inputs[:5]
    rows, n_tok, n_e = h // kh, wd // kw, e.shape(w)[0]
    f = n_e * rows
    addend = ["NULL", "NULL"]               # (addend16, addend32): the addend is stored int16 when it fits
    if len(n.inputs) > 5:
        a = n.inputs[5]
        addend[e.graph.tensors[a].dtype != "int16"] = e.const(a)
    return [call("ef_conv2d_patch_i8", e.act(x), wd, rows, kh, kw, e.const(w, "packed"), e.bits(w), e.const(b),
                 *addend, f, e.const(m), e.const(sh), e.act(n.outputs[0]), f, 0, n_tok, 0, n_e)]


def _dwconv(e: Emitter, n: Node) -> list[str]:
    need(n, 5)
    t, c = e.shape(n.inputs[0])
    x, w, b, m, sh = n.inputs
    k = e.shape(w)[1]
    if e.graph.tensors[w].dtype != "int8":
        raise CodegenError(f"node '{n.name}' (dwconv1d_causal): taps must be int8, got {e.graph.tensors[w].dtype}")
    lut = e.plan.lut_after(n.name)
    if lut is not None:  # the plan fused the lut after it (multi-core targets)
        return [call("ef_dwconv1d_causal_lut_i8", e.act(x), c, e.const(w), k, e.const(b), e.const(m), e.const(sh),
                     e.act(n.outputs[0]), c, 0, t, 0, c, e.const(e.graph.node(lut).inputs[1]))]
    return [call("ef_dwconv1d_causal_i8", e.act(x), c, e.const(w), k, e.const(b), e.const(m), e.const(sh),
                 e.act(n.outputs[0]), c, 0, t, 0, c)]


def _lut(e: Emitter, n: Node) -> list[str]:
    need(n, 2)
    if n.name in e.plan.fused_luts:
        return [f"/* {n.outputs[0]}: the table applied by {e.plan.fused_luts[n.name]} in L1 (no call) */"]
    size = _n(e.shape(n.inputs[0]))
    return [call("ef_lut_i8", e.act(n.inputs[0]), e.act(n.outputs[0]), size, e.const(n.inputs[1]))]


def _mul_requant(e: Emitter, n: Node) -> list[str]:
    need(n, 2)
    a, b = n.inputs
    return [call("ef_mul_requant_i8", e.act(a), e.act(b), e.act(n.outputs[0]), _n(e.shape(a)), int(n.attrs["m"]),
                 int(n.attrs["sh"]))]


def _add_requant(e: Emitter, n: Node) -> list[str]:
    rows, cols = rows_cols(e.shape(n.outputs[0]))
    ptrs, strides = [], []
    for t in n.inputs:
        if t in e.views:  # flip(src) read bottom-up: pointer to the last row, negative stride
            ptrs.append(f"{e.act(e.views[t])} + {(rows - 1) * cols}")
            strides.append(-cols)
        else:
            ptrs.append(e.act(t))
            strides.append(cols)
    mm = [int(v) for v in np.asarray(n.attrs["M"]).reshape(-1)]
    k = len(n.inputs)
    return ["{",
            f"    const int8_t *const xs[{k}] = {{{', '.join(ptrs)}}};",
            f"    static const int32_t strides[{k}] = {{{', '.join(map(str, strides))}}};",
            f"    static const int32_t mult[{k}] = {{{', '.join(map(str, mm))}}};",
            *("    " + line for line in call("ef_add_requant_i8", "xs", "strides", "mult", k, int(n.attrs["S"]),
                                              e.act(n.outputs[0]), cols, rows, cols).split("\n")),
            "}"]


def _layernorm(e: Emitter, n: Node) -> list[str]:
    need(n, 3)
    rows, c = rows_cols(e.shape(n.inputs[0]))
    x, g, b = n.inputs
    eps = c_literal(int(n.attrs["eps_q"]), "int64_t")
    return [call("ef_layernorm_i8", e.act(x), c, e.act(n.outputs[0]), c, c, eps, e.const(g), e.const(b),
                 int(n.attrs["g_frac"]), 0, rows)]


def _meanpool(e: Emitter, n: Node) -> list[str]:
    need(n, 1)
    t, c = rows_cols(e.shape(n.inputs[0]))
    return [call("ef_meanpool_tokens_i8", e.act(n.inputs[0]), c, t, e.act(n.outputs[0]), int(n.attrs["m"]),
                 int(n.attrs["sh"]), 0, c)]


def _scan(e: Emitter, n: Node) -> list[str]:
    need(n, 11)
    u, dl, bb, cc = n.inputs[:4]
    t, d_in = e.shape(u)
    d_in2, d_st = e.shape(n.inputs[4])
    if e.shape(bb) != e.shape(cc) or e.shape(bb)[1] != d_st or d_in2 != d_in or e.shape(dl) != (t, d_in):
        raise CodegenError(f"node '{n.name}' (scan): shapes u {e.shape(u)}, delta {e.shape(dl)}, B {e.shape(bb)}, "
                           f"C {e.shape(cc)}, ka {(d_in2, d_st)} do not fit")
    consts = e.weights.scan_consts(n.name, list(n.inputs[4:]), int(n.attrs["ka_frac"]), d_in, d_st)
    for name in n.inputs[4:]:
        e.const(name)
    h = e.scratch(n)
    if n.name in e.plan.scans:
        return emit_tiled_scan(e, n, e.plan.scans[n.name], consts)
    return [f"memset({h}, 0, {4 * d_in * d_st});",
            call("ef_scan_i8", f"&{consts}", e.act(u), d_in, e.act(dl), d_in, e.act(bb), e.act(cc), d_st,
                 e.act(n.outputs[0]), d_in, h, 0, t, 0, d_in, int(n.attrs.get("direction", 0)))]


def _matmul(e: Emitter, n: Node) -> list[str]:
    need(n, 2)
    (m_rows, k), (_, n_cols) = e.shape(n.inputs[0]), e.shape(n.inputs[1])
    return [call("ef_matmul_i8", e.act(n.inputs[0]), k, e.act(n.inputs[1]), n_cols, 1, k, int(n.attrs["m"]),
                 int(n.attrs["sh"]), e.act(n.outputs[0]), n_cols, 0, m_rows, 0, n_cols)]


def _softmax(e: Emitter, n: Node) -> list[str]:
    need(n, 1)
    r, c = rows_cols(e.shape(n.inputs[0]))
    a = n.attrs
    return [call("ef_softmax_rows_i8", e.act(n.inputs[0]), c, e.act(n.outputs[0]), c, c, int(a["ke"]), int(a["frac"]),
                 int(a["m"]), int(a["sh"]), 0, r)]


def _flip(e: Emitter, n: Node) -> list[str]:
    need(n, 1)
    if n.outputs[0] in e.views:
        return [f"/* {n.outputs[0]}: read reversed through a negative row stride (no copy) */"]
    if int(n.attrs.get("axis", 0)) != 0:
        raise CodegenError(f"node '{n.name}' ({n.op}): only axis 0 is supported, got {n.attrs['axis']}")
    t = e.graph.tensors[n.inputs[0]]
    rows, cols = rows_cols(t.shape)
    if t.dtype != "int8":
        raise CodegenError(f"node '{n.name}' ({n.op}): only int8 tensors, got {t.dtype}")
    return [call("ef_flip_rows_i8", e.act(n.inputs[0]), e.act(n.outputs[0]), rows, cols)]


def _copy(e: Emitter, n: Node) -> list[str]:
    need(n, 1)
    return [f"memcpy({e.act(n.outputs[0])}, {e.act(n.inputs[0])}, {nbytes(e.graph, n.outputs[0])});"]


def _last_axis_parts(e: Emitter, n: Node, whole: str, parts: list[str]) -> list[tuple[str, int, int, int]]:
    """(part, column offset, part width, element size) of a split/concat along the last axis of 2-d tensors."""
    shp = e.shape(whole)
    axis = int(n.attrs.get("axis", -1)) % max(len(shp), 1)
    if len(shp) != 2 or axis != 1:
        raise CodegenError(f"node '{n.name}' ({n.op}): only the last axis of 2-d tensors, got {shp} axis {axis}")
    size = DTYPES[e.graph.tensors[whole].dtype] // 8
    out, col = [], 0
    for p in parts:
        w = e.shape(p)[1]
        out.append((p, col, w, size))
        col += w
    return out


def _split(e: Emitter, n: Node) -> list[str]:
    need(n, 1)
    x = n.inputs[0]
    rows, width = e.shape(x)
    return [f"copy_rows((const uint8_t *)(const void *){e.act(x)} + {col * sz}, {width * sz}, "
            f"(uint8_t *)(void *){e.act(p)}, {w * sz}, {rows}, {w * sz});"
            for p, col, w, sz in _last_axis_parts(e, n, x, n.outputs)]


#: IR op -> renderer of its C statements.
EMITTERS: dict[str, Callable[[Emitter, Node], list[str]]] = {
    "linear": _linear, "linear_acc": _linear_acc, "requant": _requant, "conv2d_patch": _conv2d_patch,
    "dwconv1d_causal": _dwconv,
    "lut": _lut, "mul_requant": _mul_requant, "add_requant": _add_requant, "layernorm": _layernorm,
    "meanpool_tokens": _meanpool, "scan": _scan, "matmul": _matmul, "softmax_rows": _softmax,
    "flip_time": _flip, "identity": _copy, "split": _split, **STRUCT_EMITTERS, **CNN_EMITTERS,
    **ZP_EMITTERS,
}


def check_supported(graph: Graph) -> None:
    """CodegenError naming the first node whose op has no C renderer."""
    for n in graph.nodes:
        if n.op not in EMITTERS:
            raise CodegenError(f"node '{n.name}': op '{n.op}' is not supported by the C backend")
