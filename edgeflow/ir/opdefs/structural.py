"""Data movement ops (no arithmetic): identity, reshape (a view), transpose, slice (strided), gather (rows at
constant offsets), split, concat, flip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeflow.ir import ops
from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, ShapeError, TensorType, axis_of, int_list, size

#: Axes the strided gather kernel takes (EF_MAX_DIMS in ef_kernels.h).
MAX_DIMS = 8


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
    if sorted(perm) != list(range(len(shape))) or len(shape) > MAX_DIMS:
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


def c_strides(shape: Sequence[int]) -> list[int]:
    """Element strides of a C-contiguous array of `shape`."""
    out, acc = [], 1
    for d in reversed(list(shape)):
        out.insert(0, acc)
        acc *= int(d)
    return out


def strided(x: np.ndarray, offset: int, shape: Sequence[int], strides: Sequence[int]) -> np.ndarray:
    """y[i_0.., i_n] = x.flat[offset + sum_k i_k strides[k]] (C: ef_gather_strided_i8 on x + offset)."""
    idx = np.full(tuple(int(d) for d in shape), int(offset), dtype=np.int64)
    for k, (n, st) in enumerate(zip(shape, strides, strict=True)):
        idx += (np.arange(int(n), dtype=np.int64) * int(st)).reshape((1,) * k + (-1,) + (1,) * (len(shape) - k - 1))
    return np.ascontiguousarray(np.asarray(x).reshape(-1)[idx]).reshape(idx.shape)


def infer_slice(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """x (any shape) read as flat elements at offset + sum_k i_k strides[k], i_k < shape[k], every one inside x."""
    off, shape, strides = int(attrs["offset"]), int_list(attrs, "shape"), int_list(attrs, "strides")
    n = size(ins[0].shape)
    if len(shape) != len(strides) or len(shape) > MAX_DIMS or any(d < 1 for d in shape):
        raise ShapeError(f"attributes shape {shape} and strides {strides} must be 1..{MAX_DIMS} positive sizes and "
                         "as many strides")
    lo = off + sum(min(0, (d - 1) * st) for d, st in zip(shape, strides, strict=True))
    hi = off + sum(max(0, (d - 1) * st) for d, st in zip(shape, strides, strict=True))
    if lo < 0 or hi >= n:
        raise ShapeError(f"slice reads elements {lo}..{hi} of input x {ins[0].shape} ({n} elements)")
    return [(tuple(shape), ins[0].dtype)]


def gather_index(offsets: Sequence[int], row_len: int, step: int) -> np.ndarray:
    """Flat x index of every y element: y.flat[r * row_len + i] = x.flat[offsets[r] + i * step]."""
    return (np.asarray(offsets, dtype=np.int64)[:, None] + np.arange(int(row_len), dtype=np.int64) * int(step)
            ).reshape(-1)


def gather_rows(x: np.ndarray, offsets: Sequence[int], row_len: int, step: int, shape: Sequence[int]) -> np.ndarray:
    """y (shape) = x.flat at gather_index (C: ef_gather_rows_i8)."""
    return np.ascontiguousarray(np.asarray(x).reshape(-1)[gather_index(offsets, row_len, step)]).reshape(
        tuple(int(d) for d in shape))


def infer_gather(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """len(offsets) rows of row_len elements (row_len >= 1), read as `shape`; every index inside x."""
    offs, shape = int_list(attrs, "offsets"), int_list(attrs, "shape")
    row, step, n = int(attrs["row_len"]), int(attrs["step"]), size(ins[0].shape)
    if not offs or row < 1 or any(d < 1 for d in shape) or size(shape) != len(offs) * row:
        raise ShapeError(f"attributes offsets ({len(offs)} rows) x row_len {row} do not fill shape {shape}")
    lo = min(offs) + min(0, (row - 1) * step)
    hi = max(offs) + max(0, (row - 1) * step)
    if lo < 0 or hi >= n:
        raise ShapeError(f"gather reads elements {lo}..{hi} of input x {ins[0].shape} ({n} elements)")
    return [(tuple(shape), ins[0].dtype)]


def _split_ref(ins: Sequence[np.ndarray], a: Mapping[str, Any]) -> list[np.ndarray]:
    cuts = np.cumsum(a["sizes"])[:-1]
    return list(np.split(ins[0], cuts, axis=int(a.get("axis", -1))))


_X = (Arg("x"),)

DEFS = (
    OpDef("identity", "structural", _X, infer_same, lambda ins, a: [ins[0]]),
    OpDef("reshape", "structural", _X, infer_reshape, lambda ins, a: [ins[0].reshape(tuple(a["shape"]))],
          attrs=("shape",)),
    OpDef("transpose", "structural", _X, infer_transpose,
          lambda ins, a: [np.ascontiguousarray(ins[0].transpose(tuple(a["perm"])))], attrs=("perm",),
          kernel="ef_gather_strided_i8"),
    OpDef("slice", "structural", _X, infer_slice,
          lambda ins, a: [strided(ins[0], a["offset"], a["shape"], a["strides"])], attrs=("offset", "shape", "strides"),
          kernel="ef_gather_strided_i8"),
    OpDef("gather", "structural", _X, infer_gather,
          lambda ins, a: [gather_rows(ins[0], a["offsets"], a["row_len"], a["step"], a["shape"])],
          attrs=("offsets", "row_len", "step", "shape"), kernel="ef_gather_rows_i8"),
    OpDef("split", "structural", _X, infer_split, _split_ref, attrs=("sizes",), optional_attrs=("axis",)),
    OpDef("concat", "structural", (Arg("x", variadic=True),), infer_concat,
          lambda ins, a: [np.concatenate(list(ins), axis=int(a.get("axis", -1)))], optional_attrs=("axis",)),
    OpDef("flip_time", "structural", _X, infer_same, lambda ins, a: [ops.flip_time(ins[0])],
          kernel="ef_flip_rows_i8"),
)
