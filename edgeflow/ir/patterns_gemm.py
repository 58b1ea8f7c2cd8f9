"""Fully connected regions of the ONNX frontend: Gemm in all its transposes (alpha, beta), MatMul with a constant
quantized weight (with or without a Transpose), per-channel weight scales on either axis, bias or none; ReLU."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from edgeflow.ir import ops, qdq_ort
from edgeflow.ir.patterns import OnnxView, attrs
from edgeflow.ir.patterns_layout import _slice
from edgeflow.quant.intmath import build_lut


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def quant_codes(view: OnnxView, v: str) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """(int8 codes (2-d), scale (1 or per-channel), scale axis, bits, transposes passed) of a QCDQ weight value."""
    flips = 0
    while (t := view.producer(v, "Transpose")) is not None:
        if list(attrs(t).get("perm", [1, 0])) != [1, 0]:
            raise view.err(f"node '{t.name}': a weight transpose must be perm [1, 0], got {attrs(t)['perm']}")
        v, flips = t.input[0], flips + 1
    dq = view.producer(v, "DequantizeLinear")
    if dq is None or not view.is_const(dq.input[0]) and view.producer(dq.input[0], "Clip") is None:
        raise view.err(f"tensor '{v}' is not a quantized weight (DequantizeLinear of constant int8 codes); quantize "
                       "the layer's weights (brevitas QuantLinear, or onnxruntime quantize_static)")
    clip = view.producer(dq.input[0], "Clip")
    if clip is not None:
        codes = np.clip(view.const(clip.input[0]), int(view.scalar(clip.input[1])), int(view.scalar(clip.input[2])))
        hi = int(view.scalar(clip.input[2]))
    else:
        codes, hi = view.const(dq.input[0]), 127
    if codes.dtype != np.int8 or codes.ndim != 2:
        raise view.err(f"weight '{dq.input[0]}' must be 2-d int8 codes, got {codes.dtype} {codes.shape}")
    zp = view.const(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else np.zeros(1)
    if np.any(zp != 0):
        raise view.err(f"node '{dq.name}': weight zero point must be 0 (symmetric weights)")
    scale = np.asarray(view.const(dq.input[1]), dtype=np.float64).reshape(-1)
    return codes, scale, int(attrs(dq).get("axis", 1)) % 2, max(2, int(hi).bit_length() + 1), flips


def out_major(view: OnnxView, v: str, transposed: bool, where: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(codes (O, I), per-output scale (O,), bits) of weight value v that the layer reads as (I, O) unless
    `transposed` (Gemm transB = 1: (O, I)); a per-channel scale must run along the output axis."""
    codes, scale, axis, bits, flips = quant_codes(view, v)
    o_axis = 0 if (transposed != bool(flips % 2)) else 1        # the codes' axis that indexes outputs
    if scale.size not in (1, codes.shape[axis]) or (scale.size > 1 and axis != o_axis):
        raise view.err(f"{where}: weight scales ({scale.size}) must be per tensor or per output channel "
                       f"(axis {o_axis} of the codes {codes.shape}, got axis {axis}); quantize weights per "
                       "output channel")
    w = codes if o_axis == 0 else codes.T
    return np.ascontiguousarray(w), np.broadcast_to(scale, (w.shape[0],)).copy(), bits


class GemmMixin:
    """Builder methods for fully connected regions (mixed into from_onnx._Builder)."""

    def _bias(self, v: str | None, acc_scale: np.ndarray, beta: float, n_out: int) -> np.ndarray:
        """int32 bias at the accumulator scale: the codes when their scale is it (brevitas Int32Bias), else
        beta * dequantized bias rounded (half to even) to it."""
        if v is None or not v:
            return np.zeros(n_out, np.int32)
        dq = self.v.producer(v, "DequantizeLinear")
        if dq is not None and self.v.is_const(dq.input[0]) and self.v.const(dq.input[0]).dtype == np.int32:
            codes = self.v.const(dq.input[0]).reshape(-1)
            s = np.asarray(self.v.const(dq.input[1]), np.float64).reshape(-1) * beta
            if codes.size in (1, n_out) and np.allclose(np.broadcast_to(s, acc_scale.shape), acc_scale, rtol=1e-5,
                                                        atol=0):
                return np.broadcast_to(codes, (n_out,)).astype(np.int32)
            real = codes.astype(np.float64) * np.asarray(self.v.const(dq.input[1]), np.float64).reshape(-1)
        elif self.v.is_const(v):
            real = np.asarray(self.v.const(v), np.float64).reshape(-1)
        else:
            raise self.v.err(f"bias '{v}' is not a constant (DequantizeLinear of int32 codes, or floats)")
        if real.size not in (1, n_out):
            raise self.v.err(f"bias '{v}' has {real.size} entries for {n_out} outputs")
        q = np.rint(np.broadcast_to(real * beta, (n_out,)) / acc_scale)
        if np.any(np.abs(q) >= 2**31):
            raise self.v.err(f"bias '{v}' does not fit int32 at the accumulator scale")
        return q.astype(np.int32)

    def _gemm(self, p: NodeProto) -> tuple[str, np.ndarray, np.ndarray, int, str | None, float]:
        """(x as (rows, features), codes (O, I), scale (O,), bits, bias value, beta) of a Gemm or MatMul node."""
        if p.op_type == "Gemm":
            at = attrs(p)
            alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
            if alpha <= 0:
                raise self.v.err(f"node '{p.name}' (Gemm): alpha must be > 0, got {alpha}")
            x = self.act(p.input[0], perm=(1, 0) if at.get("transA", 0) else None)
            w, s_w, bits = out_major(self.v, p.input[1], bool(at.get("transB", 0)), f"node '{p.name}' (Gemm)")
            return self.view2d(x), w, s_w * alpha, bits, (p.input[2] if len(p.input) > 2 else None), beta
        w, s_w, bits = out_major(self.v, p.input[1], False, f"node '{p.name}' (MatMul)")
        return self.view2d(self.act(p.input[0])), w, s_w, bits, None, 1.0

    def feature_rows(self, p: NodeProto) -> np.ndarray:
        """The output features a Slice of a linear layer's output keeps (it must cut the last axis only)."""
        shp = self.static_shape(p.input[0])
        if not shp:
            raise self.v.err(f"node '{p.name}' (Slice): the shape of its input is not static")
        full = np.arange(int(np.prod(shp))).reshape(shp)
        got = _slice(self.v, p, full)
        cols = got.reshape(-1, got.shape[-1])[0] % shp[-1] if got.size else np.zeros(0, np.int64)
        if got.shape[:-1] != tuple(shp[:-1]) or got.size == 0 or not np.array_equal(got, full[..., cols]):
            raise self.v.err(f"node '{p.name}' (Slice): a slice of a linear layer's output must cut its features "
                             f"(last axis) only, got {tuple(shp)} -> {got.shape}")
        return cols

    def is_linear_value(self, v: str) -> bool:
        """v is a linear layer's float output (MatMul / Gemm, + bias), or a Split / Slice of one."""
        p = self.v.producer(v)
        if p is not None and p.op_type in ("Split", "Slice"):
            p = self.v.producer(p.input[0])
        if p is not None and p.op_type == "Add" and any(self.v.is_bias(i) or self.v.is_const(i) for i in p.input):
            p = self.v.producer(next(i for i in p.input if not (self.v.is_bias(i) or self.v.is_const(i))))
        if p is None or p.op_type not in ("MatMul", "Gemm"):
            return False
        w = p.input[1]
        t = self.v.producer(w, "Transpose")
        w = w if t is None else t.input[0]
        ql = self.v.activation_ql(w)                     # a weight: DequantizeLinear of constant codes
        return self.v.producer(w, "DequantizeLinear") is not None and (ql is None or self.v.is_const(ql.input[0]))

    def linear(self, v: str, s_out: float | None, out: str, factor: float = 1.0) -> None:
        """The linear region ending at v; `factor` (> 0) scales its real output (a folded Mul / Div)."""
        p = self.v.producer(v)
        rows = None
        if p.op_type == "Split":
            k = list(p.output).index(v)
            sizes = (self.v.const(p.input[1]) if len(p.input) > 1 else np.asarray(attrs(p)["split"])).reshape(-1)
            if attrs(p).get("axis", 0) not in (-1, 2):
                raise self.v.err(f"node '{p.name}': Split must be over features (last axis)")
            rows = slice(int(sizes[:k].sum()), int(sizes[:k + 1].sum()))
            p = self.v.producer(p.input[0])
        elif p.op_type == "Slice":                  # one chunk of a packed projection (q / k / v of an in_proj)
            rows = self.feature_rows(p)
            p = self.v.producer(p.input[0])
        bias_v = None
        if p.op_type == "Add":
            bias_v = next(i for i in p.input if self.v.is_bias(i) or self.v.is_const(i))
            p = self.v.producer(next(i for i in p.input if i != bias_v), ("MatMul", "Gemm"))
            if p is None:
                raise self.v.err(f"bias add of '{v}' does not follow a MatMul or Gemm")
        x, w, s_w, bits, gemm_bias, beta = self._gemm(p)
        s_in = self.scale(x)
        if gemm_bias is not None and bias_v is not None:
            raise self.v.err(f"node '{p.name}': a Gemm with a bias followed by another bias Add")
        bias = self._bias(gemm_bias or bias_v, s_in * s_w, beta if gemm_bias else 1.0, w.shape[0])
        if self.zp(x):   # onnxruntime QDQ: the input zero point folded into the bias (-zp sum_i w[o, i])
            bias = qdq_ort.fold_input_zp(self.v, p.name, bias, w, self.zp(x))
            self.zp_done.update((f"{out}:in", f"{out}.acc:in"))
        if rows is not None:
            w, s_w, bias = w[rows], s_w[rows], bias[rows]
        ins = [x, self.const(out, "w", w, "int8", bits, s_w), self.const(out, "b", bias, "int32")]
        shape = (self.shape(x)[0], w.shape[0])
        if s_out is None and factor != 1.0:
            raise self.v.err(f"node '{p.name}': a scaled linear layer cannot feed the float graph output")
        if s_out is None:
            self.act_out(out, shape, s_in * s_w, "int32")
            self.g.meta["output_scale"] = [float(s) for s in s_in * s_w]
            return self.emit("linear_acc", ins, out)
        m, sh = ops.requant_params(s_in, s_w * factor, s_out)
        if self.zp_out and factor != 1.0:
            raise self.v.err(f"node '{p.name}': a scaled linear output with a zero point is not supported")
        if self.zp_out:   # asymmetric output: the int32 accumulator, then requantized with the output zero point
            return qdq_ort.requant_output(self, ins, shape, s_in * s_w, s_out, m, sh, out)
        self.act_out(out, shape, s_out)
        self.emit("linear", ins + [self.const(out, "m", m, "int32"), self.const(out, "sh", sh, "int32")], out)
        return None

    def relu(self, p: NodeProto, s_out: float, out: str) -> None:
        """Relu of an activation: one table; Relu of a region: the region at s_out, then max(code, 0) as a table
        (exact: the quantizer rounds relu(v) / s to max(round(v / s), 0))."""
        src, _ = self.layout_chain(p.input[0])
        if src in self.acts or self.v.flip_source(src) is not None:
            return self.lut(p.input[0], relu, s_out, out)
        pre = f"{out}.pre"
        self.lower(p.input[0], s_out, pre)
        table = build_lut(relu, s_out, 0, s_out, 0)
        self.act_out(out, self.shape(pre), s_out)
        self.emit("lut", [pre, self.const(out, "table", table, "int8")], out, {"fn": "relu"})
        return None
