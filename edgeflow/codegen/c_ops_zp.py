"""C statements of the zero-point ops (onnxruntime QDQ, ir/opdefs/zp.py): one whole-tensor call of ef_zp.c each."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeflow.codegen.c_weights import c_literal
from edgeflow.codegen.calls import call
from edgeflow.codegen.emitter import Emitter, need, rows_cols
from edgeflow.codegen.emitter import n_elems as _n
from edgeflow.ir.graph import Node


def _zps(n: Node) -> list[int]:
    return [int(n.attrs[k]) for k in ("za", "zb", "zy")]


def _add(e: Emitter, n: Node) -> list[str]:
    rows, cols = rows_cols(e.shape(n.outputs[0]))
    k = len(n.inputs)
    mm = [int(v) for v in np.asarray(n.attrs["M"]).reshape(-1)]
    stmt = call("ef_add_requant_zp_i8", "xs", "strides", "mult", k, int(n.attrs["S"]),
                c_literal(int(n.attrs["C"]), "int64_t"), e.act(n.outputs[0]), cols, rows, cols)
    return ["{",
            f"    const int8_t *const xs[{k}] = {{{', '.join(e.act(t) for t in n.inputs)}}};",
            f"    static const int32_t strides[{k}] = {{{', '.join([str(cols)] * k)}}};",
            f"    static const int32_t mult[{k}] = {{{', '.join(map(str, mm))}}};",
            *("    " + line for line in stmt.split("\n")), "}"]


def _mul(e: Emitter, n: Node) -> list[str]:
    need(n, 2)
    a, b = n.inputs
    return [call("ef_mul_requant_zp_i8", e.act(a), e.act(b), e.act(n.outputs[0]), _n(e.shape(a)), int(n.attrs["m"]),
                 int(n.attrs["sh"]), *_zps(n))]


def _matmul(e: Emitter, n: Node) -> list[str]:
    need(n, 2)
    (m_rows, k), (_, n_cols) = e.shape(n.inputs[0]), e.shape(n.inputs[1])
    return [call("ef_matmul_zp_i8", e.act(n.inputs[0]), k, e.act(n.inputs[1]), n_cols, 1, k, int(n.attrs["m"]),
                 int(n.attrs["sh"]), *_zps(n), e.act(n.outputs[0]), n_cols, 0, m_rows, 0, n_cols)]


def _softmax(e: Emitter, n: Node) -> list[str]:
    need(n, 1)
    r, c = rows_cols(e.shape(n.inputs[0]))
    a = n.attrs
    return [call("ef_softmax_rows_zp_i8", e.act(n.inputs[0]), c, e.act(n.outputs[0]), c, c, int(a["ke"]),
                 int(a["frac"]), int(a["m"]), int(a["sh"]), int(a["zy"]), 0, r)]


#: zero-point op -> renderer (merged into codegen.c_ops.EMITTERS).
ZP_EMITTERS: dict[str, Callable[[Emitter, Node], list[str]]] = {"add_zp": _add, "mul_zp": _mul,
                                                                "matmul_zp": _matmul, "softmax_zp": _softmax}
