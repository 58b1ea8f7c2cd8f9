"""Data movement ops (no arithmetic): identity, reshape, transpose, split, concat and the time flip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeflow.ir import ops
from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, ShapeError, TensorType, axis_of, int_list, size


def infer_same(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """identity, flip_time: the input's shape and dtype."""
    return [(ins[0].shape, ins[0].dtype)]


def infer_reshape(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    shape = int_list(attrs, "shape")
    n = size(ins[0].shape)
    if shape.count(-1) == 1:
        rest = size([d for d in shape if d != -1])
        if rest <= 0 or n % rest:
            raise ShapeError(f"attribute shape {shape} cannot hold the {n} elements of input x {ins[0].shape}")
        shape[shape.index(-1)] = n // rest
    if any(d < 1 for d in shape) or size(shape) != n:
        raise ShapeError(f"attribute shape {shape} has {size(shape)} elements, input x {ins[0].shape} has {n}")
    return [(tuple(shape), ins[0].dtype)]


def infer_transpose(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    perm, shape = int_list(attrs, "perm"), ins[0].shape
    if sorted(perm) != list(range(len(shape))):
        raise ShapeError(f"attribute perm {perm} is not a permutation of the {len(shape)} axes of x {shape}")
    return [(tuple(shape[p] for p in perm), ins[0].dtype)]


def infer_split(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    shape = ins[0].shape
    ax, sizes = axis_of(attrs, shape, -1), int_list(attrs, "sizes")
    if any(s < 1 for s in sizes) or sum(sizes) != shape[ax]:
        raise ShapeError(f"attribute sizes {sizes} must be positive and sum to {shape[ax]} (axis {ax} of x {shape})")
    return [(shape[:ax] + (s,) + shape[ax + 1:], ins[0].dtype) for s in sizes]


def infer_concat(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    first = ins[0].shape
    ax = axis_of(attrs, first, -1)
    for i, t in enumerate(ins[1:], start=1):
        if len(t.shape) != len(first) or t.shape[:ax] + t.shape[ax + 1:] != first[:ax] + first[ax + 1:]:
            raise ShapeError(f"input x{i} has shape {t.shape}, input x0 {first} (may differ only along axis {ax})")
        if t.dtype != ins[0].dtype:
            raise ShapeError(f"input x{i} is {t.dtype}, input x0 {ins[0].dtype}")
    return [(first[:ax] + (sum(t.shape[ax] for t in ins),) + first[ax + 1:], ins[0].dtype)]


def _split_ref(ins: Sequence[np.ndarray], a: Mapping[str, Any]) -> list[np.ndarray]:
    cuts = np.cumsum(a["sizes"])[:-1]
    return list(np.split(ins[0], cuts, axis=int(a.get("axis", -1))))


_X = (Arg("x"),)

DEFS = (
    OpDef("identity", "structural", _X, infer_same, lambda ins, a: [ins[0]]),
    OpDef("reshape", "structural", _X, infer_reshape, lambda ins, a: [ins[0].reshape(tuple(a["shape"]))],
          attrs=("shape",)),
    OpDef("transpose", "structural", _X, infer_transpose,
          lambda ins, a: [np.ascontiguousarray(ins[0].transpose(tuple(a["perm"])))], attrs=("perm",)),
    OpDef("split", "structural", _X, infer_split, _split_ref, attrs=("sizes",), optional_attrs=("axis",)),
    OpDef("concat", "structural", (Arg("x", variadic=True),), infer_concat,
          lambda ins, a: [np.concatenate(list(ins), axis=int(a.get("axis", -1)))], optional_attrs=("axis",)),
    OpDef("flip_time", "structural", _X, infer_same, lambda ins, a: [ops.flip_time(ins[0])],
          kernel="ef_flip_rows_i8"),
)
