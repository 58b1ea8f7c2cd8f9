"""CNN ops: conv (Conv1d/Conv2d: padding, stride, dilation, groups, per-channel requant, folded clamp) and pool."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeflow.ir import ops_cnn
from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, Shape, ShapeError, TensorType, entries, int_list, size

POOL_MODES = ("max", "avg")


def _geometry(x: Shape, kernel: Sequence[int], attrs: Mapping[str, Any], dil: bool) -> dict[str, int]:
    try:
        return ops_cnn.geometry(x, kernel, int_list(attrs, "strides"), int_list(attrs, "pads"),
                                int_list(attrs, "dilations") if dil else [1] * len(kernel))
    except ValueError as e:
        raise ShapeError(str(e).removeprefix("window op: ")) from None


def infer_conv(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """x (C, [H,] W), w (O, C/group, [kh,] kw) -> (O, [Ho,] Wo) int8; bias, m, sh one per output channel."""
    x, w = ins[0].shape, ins[1].shape
    if len(x) not in (2, 3) or len(w) != len(x) + 1:
        raise ShapeError(f"input x {x} must be (C, W) or (C, H, W) and weight w (O, C/group, kernel...), got w {w}")
    group = int(attrs["group"])
    if group < 1 or x[0] != w[1] * group or w[0] % group:
        raise ShapeError(f"input x has {x[0]} channels, weight w {w} with group {group} expects {w[1] * group} "
                         f"(and O divisible by group)")
    g = _geometry(x, w[2:], attrs, True)
    for k, name in ((2, "bias b"), (3, "multiplier m"), (4, "shift sh")):
        entries(ins[k], w[0], name, "output channel of w")
    return [(ops_cnn.out_shape(x, w[0], g), "int8")]


def infer_pool(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """x (C, [H,] W) -> (C, [Ho,] Wo) int8; m, sh tables: 1 entry (max) or kh*kw + 1 (avg, by counted taps)."""
    x = ins[0].shape
    if attrs["mode"] not in POOL_MODES:
        raise ShapeError(f"attribute mode must be one of {POOL_MODES}, got {attrs['mode']!r}")
    kernel = int_list(attrs, "kernel")
    if len(x) not in (2, 3) or len(kernel) != len(x) - 1:
        raise ShapeError(f"input x {x} must be (C, W) or (C, H, W) with a kernel per spatial axis, got {kernel}")
    g = _geometry(x, kernel, attrs, False)
    n = 1 if attrs["mode"] == "max" else size(kernel) + 1
    for k, name in ((1, "multiplier m"), (2, "shift sh")):
        entries(ins[k], n, name, "counted window size" if n > 1 else "pool")
    return [(ops_cnn.out_shape(x, x[0], g), "int8")]


def conv_macs(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    """One MAC per output element and weight tap of its group."""
    return size(outs[0]) * size(ins[1][1:])


def pool_macs(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    return size(outs[0]) * size(tuple(int(k) for k in attrs["kernel"]))


def _conv_ref(ins: Sequence, a: Mapping[str, Any]) -> list:
    return [ops_cnn.conv(*ins[:5], list(a["strides"]), list(a["pads"]), list(a["dilations"]), int(a["group"]),
                         int(a.get("lo", -128)), int(a.get("hi", 127)), int(a.get("zp_in", 0)),
                         int(a.get("zp_out", 0)))]


def _pool_ref(ins: Sequence, a: Mapping[str, Any]) -> list:
    return [ops_cnn.pool(ins[0], ins[1], ins[2], str(a["mode"]), list(a["kernel"]), list(a["strides"]),
                         list(a["pads"]), int(a.get("count_include_pad", 0)), int(a.get("zp_in", 0)),
                         int(a.get("zp_out", 0)))]


_I32 = ("int32",)

DEFS = (
    OpDef("conv", "conv", (Arg("x", dtypes=("int8",)), Arg("w", const=True, dtypes=("int8",)),
                          Arg("b", const=True, dtypes=_I32), Arg("m", const=True, dtypes=_I32),
                          Arg("sh", const=True, dtypes=_I32)),
          infer_conv, _conv_ref, attrs=("strides", "pads", "dilations", "group"),
          optional_attrs=("lo", "hi", "zp_in", "zp_out"),
          macs=conv_macs, kernel="ef_conv_i8"),
    OpDef("pool", "conv", (Arg("x", dtypes=("int8",)), Arg("m", const=True, dtypes=_I32),
                          Arg("sh", const=True, dtypes=_I32)),
          infer_pool, _pool_ref, attrs=("mode", "kernel", "strides", "pads"),
          optional_attrs=("count_include_pad", "zp_in", "zp_out"),
          macs=pool_macs, kernel="ef_pool_i8"),
)
