"""Convolutions: the patch embedding (conv2d_patch, kernel = stride) and the depthwise causal conv1d."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeflow.ir import ops
from edgeflow.ir.opdefs.base import (
    Arg,
    OpDef,
    OutType,
    Shape,
    ShapeError,
    TensorType,
    entries,
    int_list,
    rank,
    size,
)


def _kernel(attrs: Mapping[str, Any]) -> tuple[int, int]:
    k = int_list(attrs, "kernel")
    if len(k) != 2 or min(k) < 1:
        raise ShapeError(f"attribute kernel must be two positive ints (kh, kw), got {attrs['kernel']!r}")
    return k[0], k[1]


def infer_patch(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """x (H, W), w (E, kh*kw) -> (W // kw tokens, E * (H // kh)) int8; addend (L, E * rows) int32/int16."""
    kh, kw = _kernel(attrs)
    h, wd = rank(ins[0], 2, "input x")
    w = ins[1]
    if len(w.shape) < 2 or size(w.shape[1:]) != kh * kw:
        raise ShapeError(f"weight w has {size(w.shape[1:])} taps a row, kernel ({kh}, {kw}) expects {kh * kw} "
                         f"(w shape {w.shape})")
    if h < kh or wd < kw:
        raise ShapeError(f"input x of shape {ins[0].shape} is smaller than the kernel ({kh}, {kw})")
    n_e, rows, n_tok = w.shape[0], h // kh, wd // kw
    for k, name in ((2, "bias b"), (3, "multiplier m"), (4, "shift sh")):
        entries(ins[k], n_e, name, "output channel of w")
    if len(ins) > 5 and ins[5].shape != (n_tok, n_e * rows):
        raise ShapeError(f"addend has shape {ins[5].shape}, expected {(n_tok, n_e * rows)} (tokens, channels)")
    return [((n_tok, n_e * rows), "int8")]


def infer_dwconv(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """x (T, C), w (C, K) -> (T, C) int8."""
    t, c = rank(ins[0], 2, "input x")
    w = rank(ins[1], 2, "taps w")
    if w[0] != c:
        raise ShapeError(f"input x has {c} channels, taps w expect {w[0]} (w shape {w})")
    for k, name in ((2, "bias b"), (3, "multiplier m"), (4, "shift sh")):
        entries(ins[k], c, name, "channel")
    return [((t, c), "int8")]


def patch_macs(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    return size(outs[0]) * size(tuple(int(k) for k in attrs["kernel"]))


def dwconv_macs(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    return size(outs[0]) * ins[1][1]


def _patch_ref(ins: Sequence, a: Mapping[str, Any]) -> list:
    x, w, b, m, sh = ins[:5]
    kernel = (int(a["kernel"][0]), int(a["kernel"][1]))
    return [ops.conv2d_patch(x, w, b, m, sh, kernel, ins[5] if len(ins) > 5 else None)]


_PARAMS = (Arg("b", const=True), Arg("m", const=True), Arg("sh", const=True))

DEFS = (
    OpDef("conv2d_patch", "conv", (Arg("x", dtypes=("int8",)), Arg("w", const=True, dtypes=("int8",)), *_PARAMS,
                                   Arg("addend", optional=True, const=True, dtypes=("int16", "int32"))),
          infer_patch, _patch_ref, attrs=("kernel",), macs=patch_macs, kernel="ef_conv2d_patch_i8"),
    OpDef("dwconv1d_causal", "conv", (Arg("x", dtypes=("int8",)), Arg("w", const=True, dtypes=("int8",)), *_PARAMS),
          infer_dwconv, lambda ins, a: [ops.dwconv1d_causal(*ins)], macs=dwconv_macs,
          kernel="ef_dwconv1d_causal_i8"),
)
