"""ONNX frontend for ordinary CNNs: general Conv (+ folded BatchNorm, ReLU/Clip), pooling, LUT activations,
Flatten, unsigned (QuantReLU) activations; from_onnx dispatches a float region here before its FEMBA patterns."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from onnx import NodeProto

from edgeflow.ir import ops, ops_cnn, qdq_ort
from edgeflow.ir.patterns import FrontendError, OnnxView, attrs
from edgeflow.quant.intmath import INT32_MAX, INT32_MIN, build_lut

if TYPE_CHECKING:
    from edgeflow.ir.from_onnx import _Builder

#: ONNX ops this module lowers (added to the frontend's supported list).
CNN_OPS = ("Relu", "Elu", "Tanh", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten")
POOLS = ("MaxPool", "AveragePool", "GlobalAveragePool")


def elu(x: NDArray[np.float64], alpha: float = 1.0) -> NDArray[np.float64]:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))


def _act_fn(p: NodeProto) -> tuple[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]]:
    if p.op_type == "Elu":
        alpha = float(attrs(p).get("alpha", 1.0))
        return "elu", lambda x: elu(x, alpha)
    return ("tanh", np.tanh) if p.op_type == "Tanh" else ("sigmoid", sigmoid)


def qparams(view: OnnxView, ql: NodeProto) -> tuple[float, int]:
    """(IR scale, lowest code) of an activation quantizer: int8 (zero point 0) as it is; uint8 with zero point 0
    (brevitas QuantReLU) as int8 codes at twice the scale, clamped at 0 (the same range, one bit less)."""
    zp = view.const(ql.input[2]) if len(ql.input) > 2 else None
    if zp is None or zp.dtype != np.uint8 or np.any(zp != 0):
        return view.qparams(ql)[0], -128
    scale = view.scalar(ql.input[1])
    if not scale > 0:
        raise view.err(f"node '{ql.name}': scale {scale} must be > 0")
    if ql.input[0] in view.inputs:
        raise view.err(f"node '{ql.name}': the graph input must be quantized to int8 (zero point 0), got uint8")
    return 2.0 * scale, 0


def _ints(at: dict, key: str, default: list[int]) -> list[int]:
    return [int(v) for v in at.get(key, default)]


def _round(v: float) -> int:
    return int(np.clip(np.floor(v + 0.5), -128, 127))


def _clip_bounds(view: OnnxView, p: NodeProto) -> tuple[float | None, float | None]:
    if p.op_type == "Relu":
        return 0.0, None
    at = attrs(p)
    lo = view.scalar(p.input[1]) if len(p.input) > 1 and p.input[1] else at.get("min")
    hi = view.scalar(p.input[2]) if len(p.input) > 2 and p.input[2] else at.get("max")
    return lo, hi


def lower_region(b: _Builder, v: str, s_out: float | None, out: str) -> bool:
    """Lower the float region ending at ONNX value v (the quantizer's input) when it is a CNN region; False
    to let the other patterns try. ReLU / Clip directly before the quantizer become the requant clamp."""
    view, lo, hi, clamped = b.v, b.clamp_lo, 127, False
    p = view.producer(v)
    if s_out is not None and p is not None and p.op_type == "Flatten" and view.producer(p.input[0], POOLS):
        return _flat_pool(b, p, s_out, out)     # onnxruntime: the pool's output is flattened before its quantizer
    while s_out is not None and p is not None and p.op_type in ("Relu", "Clip") and not view.is_const(v):
        flo, fhi = _clip_bounds(view, p)
        lo = lo if flo is None else max(lo, _round(flo / s_out + b.zp_out))   # the code of flo (zero point)
        hi = hi if fhi is None else min(hi, _round(fhi / s_out + b.zp_out))
        v, p, clamped = p.input[0], view.producer(p.input[0]), True
    if s_out is None or p is None:
        return False
    if p.op_type == "Conv" or (p.op_type == "BatchNormalization" and view.producer(p.input[0], "Conv")):
        conv(b, v, s_out, out, lo, hi)
    elif p.op_type == "BatchNormalization" and view.producer(p.input[0], "Gemm"):
        _clamped(b, lambda o: linear_bn(b, p, s_out, o), out, lo, hi)
    elif p.op_type in POOLS:
        _clamped(b, lambda o: pool(b, p, s_out, o), out, lo, hi)
    elif p.op_type in ("Elu", "Tanh", "Sigmoid") and view.activation_ql(view.skip_layout(p.input[0])) is not None:
        act_lut(b, p, s_out, out, lo, hi)
    elif p.op_type == "DequantizeLinear" and view.activation_ql(v) is not None:   # requantize (+ clamp): a LUT
        act_lut(b, p, s_out, out, lo, hi, v)
    elif p.op_type == "BatchNormalization":
        raise view.err(f"node '{p.name}': BatchNormalization must follow a Conv or Gemm (insert a QuantIdentity "
                       "before it, or fold it into the layer before export)")
    elif clamped or (lo > -128 and p.op_type != "Softmax"):   # probabilities (uint8) are never negative
        saved, b.clamp_lo = b.clamp_lo, -128      # the inner region is any other pattern; the LUT clamps
        try:
            _clamped(b, lambda o: b.lower(v, s_out, o), out, lo, hi)
        finally:
            b.clamp_lo = saved
    else:
        return False
    return True


def _flat_pool(b: _Builder, flat: NodeProto, s_out: float, out: str) -> bool:
    """Pool -> Flatten (axis 1) -> quantizer: the pool to out.pool (the quantizer's scale and zero point), then
    the reshape to one row."""
    if int(attrs(flat).get("axis", 1)) != 1:
        raise b.v.err(f"node '{flat.name}': Flatten must keep the batch axis (axis 1), got axis {attrs(flat)['axis']}")
    pre = f"{out}.pool"
    pool(b, b.v.producer(flat.input[0]), s_out, pre)
    b.g.tensors[pre].zero_point = b.zp_out
    n = int(np.prod(b.shape(pre)))
    b.act_out(out, (1, n), s_out)
    b.emit("reshape", [pre], out, {"shape": [1, n]})
    return True


def _clamped(b: _Builder, produce: Callable[[str], None], out: str, lo: int, hi: int) -> None:
    """produce(out); with a clamp narrower than int8, produce(out + '.pre') and clamp it with a LUT (exact:
    a clamp of the quantized value is the quantized clamp)."""
    if (lo, hi) == (-128, 127):
        return produce(out)
    pre = f"{out}.pre"
    produce(pre)
    t = b.g.tensors[pre]
    t.zero_point = b.zp_out                   # the clamp keeps the codes (and their zero point)
    table = np.clip(np.arange(-128, 128), lo, hi)
    b.act_out(out, t.shape, float(t.scale))  # type: ignore[arg-type]
    b.emit("lut", [pre, b.const(out, "table", table, "int8")], out, {"fn": "clamp"})
    b.zp_done.update((f"{out}:in", f"{out}:out"))


def act_lut(b: _Builder, p: NodeProto, s_out: float, out: str, lo: int, hi: int, src: str | None = None) -> None:
    """Elementwise fn of an int8 activation as a 256-entry table, the clamp folded in; src: the activation
    itself (fn = identity: a requantization to s_out)."""
    x = b.act(src or p.input[0])
    name, fn = ("requant", lambda t: t) if src is not None else _act_fn(p)
    table = np.clip(build_lut(fn, b.scale(x), b.zp(x), s_out, b.zp_out), lo, hi)   # zero points: ORT QDQ
    b.act_out(out, b.shape(x), s_out)
    b.emit("lut", [x, b.const(out, "table", table, "int8")], out, {"fn": name})
    b.zp_done.update((f"{out}:in", f"{out}:out"))


def flatten(b: _Builder, v: str) -> str | None:
    """IR tensor of Flatten(x) (axis 1: one sample as a row, ONNX's element order), else None."""
    p = b.v.producer(v, "Flatten")
    if p is None:
        return None
    if int(attrs(p).get("axis", 1)) != 1:
        raise b.v.err(f"node '{p.name}': Flatten must keep the batch axis (axis 1), got axis {attrs(p)['axis']}")
    x = b.act(p.input[0])
    out = f"{x}.flat"
    n = int(np.prod(b.shape(x)))
    b.act_out(out, (1, n), b.scale(x))
    b.emit("reshape", [x], out, {"shape": [1, n]})
    b.acts[v] = out
    return out


def _fold_bn(view: OnnxView, bn: NodeProto, w: np.ndarray, s_w: np.ndarray, bias: np.ndarray, s_in: float,
             bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BatchNorm y = a (x - mean) + beta, a = gamma / sqrt(var + eps), folded into (weights, per-channel scale,
    int32 bias) in float64: scale s_w |a|, a negative a negates the channel's weights and bias, and the shift
    (beta - a mean) / (s_in s_w |a|) joins the bias rounded half up (an accumulator LSB, not an output LSB)."""
    gamma, beta, mean, var = (np.asarray(view.const(i), np.float64).reshape(-1) for i in bn.input[1:5])
    a = gamma / np.sqrt(var + float(attrs(bn).get("epsilon", 1e-5)))
    if np.any(a == 0) or a.size != w.shape[0]:
        raise view.err(f"node '{bn.name}': BatchNormalization needs one non-zero gamma per output channel")
    sign = np.where(a < 0, -1, 1)
    if np.any((sign < 0)[:, None] & (w.reshape(w.shape[0], -1) == -(1 << (bits - 1)))):
        raise view.err(f"node '{bn.name}': a negative BatchNorm gamma negates weights of code {-(1 << (bits - 1))}, "
                       f"which do not fit {bits} bits (use narrow-range weights)")
    s_new = s_w * np.abs(a)
    shift = np.floor((beta - a * mean) / (s_in * s_new) + 0.5)
    folded = sign * bias.astype(np.float64) + shift
    if folded.min() < INT32_MIN or folded.max() > INT32_MAX:
        raise view.err(f"node '{bn.name}': the folded BatchNorm bias does not fit int32")
    w_new = (w.astype(np.int32) * sign.reshape(-1, *[1] * (w.ndim - 1))).astype(np.int8)
    return w_new, s_new, folded.astype(np.int32)


def _bias(view: OnnxView, v: str, s_acc: np.ndarray) -> np.ndarray:
    """int32 bias codes at the accumulator scale s_acc: as exported, or halved (rounded half up) when the input is
    a uint8 activation the IR holds at twice its scale (`qparams`)."""
    try:
        return view.bias(v, s_acc)
    except FrontendError:
        codes = view.bias(v, s_acc / 2)
    return np.floor(codes.astype(np.int64) / 2 + 0.5).astype(np.int32)


def conv(b: _Builder, v: str, s_out: float, out: str, lo: int, hi: int) -> None:
    """Conv [+ BatchNormalization] -> the IR conv op, channel-first, requant per output channel, clamp lo..hi."""
    view = b.v
    p = view.producer(v)
    bn, cv = (p, view.producer(p.input[0], "Conv")) if p.op_type == "BatchNormalization" else (None, p)
    at = attrs(cv)
    w, s_w, bits, _ = view.weight(cv.input[1])
    nd = w.ndim - 2
    if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or nd not in (1, 2):
        raise view.err(f"node '{cv.name}': Conv must be 1-D or 2-D with explicit pads (auto_pad NOTSET)")
    x = b.act(cv.input[0])
    if len(b.shape(x)) == nd and w.shape[1] * int(at.get("group", 1)) == 1:   # (H, W) input of a 1-channel conv
        x = _add_channel_axis(b, x)
    s_in = b.scale(x)
    bias = _bias(view, cv.input[2], s_in * s_w) if len(cv.input) > 2 and cv.input[2] else np.zeros(w.shape[0],
                                                                                                    np.int32)
    if bn is not None:
        w, s_w, bias = _fold_bn(view, bn, w, s_w, bias, s_in, bits)
    if b.zp(x):   # onnxruntime QDQ input zero point: - zp sum w in the bias, padding reads the code zp
        bias = qdq_ort.fold_input_zp(view, cv.name, bias, w, b.zp(x))
    m, sh = ops.requant_params(s_in, s_w, s_out)
    a = {"strides": _ints(at, "strides", [1] * nd), "pads": _ints(at, "pads", [0] * 2 * nd),
         "dilations": _ints(at, "dilations", [1] * nd), "group": int(at.get("group", 1)), "lo": int(lo), "hi": int(hi),
         **qdq_ort.zero_point_attrs(b, x, out)}
    g = ops_cnn.geometry(b.shape(x), w.shape[2:], a["strides"], a["pads"], a["dilations"])
    ins = [x, b.const(out, "w", w, "int8", bits, s_w), b.const(out, "b", bias, "int32"),
           b.const(out, "m", m, "int32"), b.const(out, "sh", sh, "int32")]
    b.act_out(out, ops_cnn.out_shape(b.shape(x), w.shape[0], g), s_out)
    b.emit("conv", ins, out, a)


def linear_bn(b: _Builder, bn: NodeProto, s_out: float, out: str) -> None:
    """Gemm / MatMul (any transpose, patterns_gemm) + BatchNormalization -> the IR linear op with the BatchNorm
    folded."""
    view = b.v
    gemm = view.producer(bn.input[0], ("Gemm", "MatMul"))
    x, w, s_w, bits, bias_v, beta = b._gemm(gemm)
    s_in = b.scale(x)
    bias = b._bias(bias_v, s_in * s_w, beta, w.shape[0])
    if b.zp(x):   # onnxruntime QDQ: the input zero point folded into the bias before the BatchNorm scales it
        bias = qdq_ort.fold_input_zp(view, gemm.name, bias, w, b.zp(x))
        b.zp_done.add(f"{out}:in")
    w, s_w, bias = _fold_bn(view, bn, w, s_w, bias, s_in, bits)
    m, sh = ops.requant_params(s_in, s_w, s_out)
    ins = [x, b.const(out, "w", w, "int8", bits, s_w), b.const(out, "b", bias, "int32"),
           b.const(out, "m", m, "int32"), b.const(out, "sh", sh, "int32")]
    b.act_out(out, (b.shape(x)[0], w.shape[0]), s_out)
    b.emit("linear", ins, out)


def _pool_input(b: _Builder, v: str) -> str:
    """The pool's input activation; Elu / Tanh / Sigmoid of an activation left in float before it (onnxruntime
    quantizes neither) as a table to int8 at the scale covering the function's 256 values (zero point 0): one
    rounding of at most half that step before the pool's own."""
    p = b.v.producer(v)
    if p is None or p.op_type not in ("Elu", "Tanh", "Sigmoid") or b.v.activation_ql(p.input[0]) is None:
        return b.act(v)
    x = b.act(p.input[0])
    name, fn = _act_fn(p)
    vals = fn((np.arange(-128, 128, dtype=np.float64) - b.zp(x)) * b.scale(x))
    s_mid = max(float(np.abs(vals).max()), 1e-12) / 127.0
    out = f"{x}.{name}"
    b.act_out(out, b.shape(x), s_mid)
    b.emit("lut", [x, b.const(out, "table", build_lut(fn, b.scale(x), b.zp(x), s_mid, 0), "int8")], out,
           {"fn": name})
    b.zp_done.add(f"{out}:in")
    b.acts[v] = out
    return out


def _add_channel_axis(b: _Builder, x: str) -> str:
    out = f"{x}.c1"
    if out not in b.g.tensors:
        b.act_out(out, (1, *b.shape(x)), b.scale(x))
        b.emit("reshape", [x], out, {"shape": [1, *b.shape(x)]})
    return out


def pool(b: _Builder, p: NodeProto, s_out: float, out: str) -> None:
    """MaxPool / AveragePool / GlobalAveragePool -> the IR pool op with its own output scale."""
    view, at = b.v, attrs(p)
    x = _pool_input(b, p.input[0])
    xs = b.shape(x)
    nd = len(xs) - 1
    if p.op_type == "GlobalAveragePool":
        kernel, strides, pads, mode, cip = list(xs[1:]), [1] * nd, [0] * 2 * nd, "avg", 0
    else:
        kernel = [int(k) for k in at.get("kernel_shape", [])]
        strides, pads = _ints(at, "strides", [1] * nd), _ints(at, "pads", [0] * 2 * nd)
        mode, cip = ("max", 0) if p.op_type == "MaxPool" else ("avg", int(at.get("count_include_pad", 0)))
        if (at.get("ceil_mode", 0) or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
                or any(d != 1 for d in at.get("dilations", [1])) or at.get("storage_order", 0) or len(p.output) > 1):
            raise view.err(f"node '{p.name}': {p.op_type} must have ceil_mode 0, explicit pads, no dilation and "
                           "one output")
    if len(kernel) != nd or nd not in (1, 2):
        raise view.err(f"node '{p.name}': {p.op_type} kernel {kernel} does not fit input {xs} (channel-first 1-D "
                       "or 2-D)")
    m, sh = ops_cnn.pool_params(mode, b.scale(x), s_out, int(np.prod(kernel)))
    g = ops_cnn.geometry(xs, kernel, strides, pads, [1] * nd)
    b.act_out(out, ops_cnn.out_shape(xs, xs[0], g), s_out)
    b.emit("pool", [x, b.const(out, "m", m, "int32"), b.const(out, "sh", sh, "int32")], out,
           {"mode": mode, "kernel": kernel, "strides": strides, "pads": pads, "count_include_pad": cip,
            **qdq_ort.zero_point_attrs(b, x, out)})
