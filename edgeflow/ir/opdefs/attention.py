"""Attention ops: the int8 matmul (Q.Kᵀ, P.V per head) and the integer row softmax."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeflow.ir import ops
from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, Shape, ShapeError, TensorType, rank, size
from edgeflow.ir.opdefs.elementwise import per_element


def infer_matmul(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """a (M, K), b (K, N) -> (M, N) int8."""
    m, k = rank(ins[0], 2, "input a")
    k2, n = rank(ins[1], 2, "input b")
    if k2 != k:
        raise ShapeError(f"input a has {k} columns, input b {k2} rows (a shape {ins[0].shape}, b shape {ins[1].shape})")
    return [((m, n), "int8")]


def infer_softmax(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """x (R, n) -> (R, n) int8, 1 <= n < 65536."""
    r, n = rank(ins[0], 2, "input x")
    if n >= 1 << 16:
        raise ShapeError(f"input x has rows of {n} values, at most 65535 (x shape {ins[0].shape})")
    return [((r, n), "int8")]


def matmul_macs(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    return size(outs[0]) * ins[0][1]


DEFS = (
    OpDef("matmul", "attention", (Arg("a", dtypes=("int8",)), Arg("b", dtypes=("int8",))), infer_matmul,
          lambda ins, a: [ops.matmul(ins[0], ins[1], a["m"], a["sh"])], attrs=("m", "sh"), macs=matmul_macs,
          kernel="ef_matmul_i8"),
    OpDef("softmax_rows", "attention", (Arg("x", dtypes=("int8",)),), infer_softmax,
          lambda ins, a: [ops.softmax_rows(ins[0], a["ke"], a["frac"], a["m"], a["sh"])],
          attrs=("ke", "frac", "m", "sh"), macs=per_element, kernel="ef_softmax_rows_i8"),
)
