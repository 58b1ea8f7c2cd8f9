"""C statements of the CNN ops (conv, pool): one whole-tensor kernel call with a static geometry record."""

from __future__ import annotations

from collections.abc import Callable

from edgeflow.codegen.calls import call
from edgeflow.codegen.emitter import Emitter, need
from edgeflow.ir import ops_cnn
from edgeflow.ir.graph import Node

#: Fields of the geometry records (firmware/kernels/ef_kernels.h), in order: rendered as designated initializers.
CONV_GEOM = ("c_in", "h", "w", "c_out", "h_out", "w_out", "kh", "kw", "stride_h", "stride_w", "dil_h", "dil_w",
             "pad_t", "pad_l", "groups", "zp_in", "zp_out")
POOL_GEOM = ("c", "h", "w", "h_out", "w_out", "kh", "kw", "stride_h", "stride_w", "pad_t", "pad_l", "mode",
             "count_include_pad", "zp_in", "zp_out")


def _call(geom_type: str, fields: tuple[str, ...], geom: list[int], stmt: str) -> list[str]:
    init = ", ".join(f".{f} = {int(v)}" for f, v in zip(fields, geom, strict=True))
    return ["{", f"    static const {geom_type} geom = {{{init}}};",
            *("    " + ln for ln in stmt.splitlines()), "}"]


def _zero_points(a: dict) -> list[int]:
    """The geometry's trailing (zp_in, zp_out): 0 but for onnxruntime QDQ activations."""
    return [int(a.get("zp_in", 0)), int(a.get("zp_out", 0))]


def _conv(e: Emitter, n: Node) -> list[str]:
    need(n, 5)
    x, w, b, m, sh = n.inputs
    xs, ws, a = e.shape(x), e.shape(w), n.attrs
    g = ops_cnn.geometry(xs, ws[2:], list(a["strides"]), list(a["pads"]), list(a["dilations"]))
    geom = [xs[0], g["h"], g["w"], ws[0], g["ho"], g["wo"], g["kh"], g["kw"], g["sh"], g["sw"], g["dh"], g["dw"],
            g["pt"], g["pl"], a["group"], *_zero_points(a)]
    return _call("ef_conv_geom_t", CONV_GEOM, geom,
                 call("ef_conv_i8", "&geom", e.act(x), e.const(w, "packed"), e.bits(w), e.const(b), e.const(m),
                      e.const(sh), int(a.get("lo", -128)), int(a.get("hi", 127)), e.act(n.outputs[0]), 0, ws[0]))


def _pool(e: Emitter, n: Node) -> list[str]:
    need(n, 3)
    x, m, sh = n.inputs
    xs, a = e.shape(x), n.attrs
    k = list(a["kernel"])
    g = ops_cnn.geometry(xs, k, list(a["strides"]), list(a["pads"]), [1] * len(k))
    geom = [xs[0], g["h"], g["w"], g["ho"], g["wo"], g["kh"], g["kw"], g["sh"], g["sw"], g["pt"], g["pl"],
            0 if a["mode"] == "max" else 1, int(a.get("count_include_pad", 0)), *_zero_points(a)]
    return _call("ef_pool_geom_t", POOL_GEOM, geom,
                 call("ef_pool_i8", "&geom", e.act(x), e.const(m), e.const(sh), e.act(n.outputs[0]), 0, xs[0]))


#: CNN op -> renderer (merged into codegen.c_ops.EMITTERS).
CNN_EMITTERS: dict[str, Callable[[Emitter, Node], list[str]]] = {"conv": _conv, "pool": _pool}
