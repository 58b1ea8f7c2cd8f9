"""Elementwise ops: lut (256-entry table), mul_requant (a * b), add_requant (the N-input requantized sum)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeflow.ir import ops
from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, Shape, ShapeError, TensorType, same_shapes, size


def infer_lut(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    if size(ins[1].shape) != 256:
        raise ShapeError(f"table has {size(ins[1].shape)} entries, expected 256 (one per int8 code; table shape "
                         f"{ins[1].shape})")
    return [(ins[0].shape, "int8")]


def infer_mul(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    return [(same_shapes(ins, ("a", "b")), "int8")]


def infer_add(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    shape = same_shapes(ins, [f"x{i}" for i in range(len(ins))])
    n_m = np.asarray(attrs["M"]).size
    if n_m != len(ins):
        raise ShapeError(f"{len(ins)} inputs but attribute M has {n_m} multipliers")
    return [(shape, "int8")]


def per_element(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    """One MAC per element of the first input."""
    return size(ins[0])


def add_macs(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    return size(outs[0]) * len(ins)


_X = Arg("x", dtypes=("int8",))

DEFS = (
    OpDef("lut", "elementwise", (_X, Arg("table", const=True, dtypes=("int8",))), infer_lut,
          lambda ins, a: [ops.lut(*ins)], optional_attrs=("fn",), kernel="ef_lut_i8"),
    OpDef("mul_requant", "elementwise", (Arg("a", dtypes=("int8",)), Arg("b", dtypes=("int8",))), infer_mul,
          lambda ins, a: [ops.mul_requant(ins[0], ins[1], a["m"], a["sh"])], attrs=("m", "sh"),
          macs=per_element, kernel="ef_mul_requant_i8"),
    OpDef("add_requant", "elementwise", (Arg("x", variadic=True, dtypes=("int8",)),), infer_add,
          lambda ins, a: [ops.add_requant(list(ins), a["M"], int(a["S"]))], attrs=("M", "S"), macs=add_macs,
          kernel="ef_add_requant_i8"),
)
