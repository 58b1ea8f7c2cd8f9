"""Fully connected ops: linear (int8 out, per-channel requant) and linear_acc (int32 accumulator, the logits)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeflow.ir import ops
from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, Shape, ShapeError, TensorType, entries, rank, size

# Weights are stored in the IR as plain integer values w (O, I), one row per output (the C renderer packs them);
# a tensor with layout "packed" holds the packed rows (O, row_bytes(I, bits)) instead.


def weight_features(x: TensorType, w: TensorType) -> None:
    """The rows of w must take the features of x (plain (O, I) or packed (O, row_bytes(I, bits)))."""
    x_feat, cols = x.shape[-1], w.shape[1]
    if w.layout == "packed":
        want = ops.row_bytes(x_feat, w.bits)  # bits 1 = ternary (ops.TERNARY)
        if cols != want:
            raise ShapeError(f"input x has {x_feat} features (x shape {x.shape}), packed weight w has {cols} bytes "
                             f"a row, {want} expected (w shape {w.shape})")
    elif cols != x_feat:
        raise ShapeError(f"input x has {x_feat} features (x shape {x.shape}), weight w expects {cols} "
                         f"(w shape {w.shape})")


def _infer(ins: Sequence[TensorType], dtype: str) -> list[OutType]:
    t = rank(ins[0], 2, "input x")[0]
    o = rank(ins[1], 2, "weight w")[0]
    weight_features(ins[0], ins[1])
    for k, name in ((2, "bias b"), (3, "multiplier m"), (4, "shift sh")):
        if len(ins) > k:
            entries(ins[k], o, name, "output row of w")
    return [((t, o), dtype)]


def infer_linear(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    return _infer(ins, "int8")


def infer_linear_acc(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    return _infer(ins, "int32")


def linear_macs(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    """One MAC per output element and input feature."""
    return size(outs[0]) * size(ins[0][1:])


_W = (Arg("x", dtypes=("int8",)), Arg("w", const=True, dtypes=("int8", "uint8")))

DEFS = (
    OpDef("linear", "linear", (*_W, Arg("b", const=True), Arg("m", const=True), Arg("sh", const=True)),
          infer_linear, lambda ins, a: [ops.linear(*ins)], macs=linear_macs, kernel="ef_linear_i8"),
    OpDef("linear_acc", "linear", (*_W, Arg("b", optional=True, const=True)),
          infer_linear_acc, lambda ins, a: [ops.linear_acc(*ins)], macs=linear_macs, kernel="ef_linear_acc_i32"),
)
