"""ONNX (QCDQ) helpers of the frontend: constants, weights, biases, activation tracing and float-region patterns."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import NodeProto, numpy_helper

from edgeflow.errors import EdgeflowError

#: ONNX op types the frontend maps (each float region between int8 tensors becomes one integer op).
SUPPORTED_OPS = ("QuantizeLinear", "DequantizeLinear", "Clip", "Constant", "Identity", "Conv", "Transpose",
                 "Reshape", "Unsqueeze", "Squeeze", "Add", "MatMul", "Gemm", "Split", "Sigmoid", "Mul", "Softplus",
                 "Neg", "Exp", "Slice", "ReduceMean", "Sub", "Pow", "Sqrt", "Div", "SelectiveScan", "Cast", "Softmax",
                 "Erf")
LAYOUT_OPS = ("Transpose", "Reshape", "Flatten", "Unsqueeze", "Squeeze", "Identity", "Cast")
_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE)  # a Cast between them is looked through
_FOLDABLE = {"Identity": lambda a: a, "Neg": np.negative, "Exp": np.exp}
#: Elements one constant may declare (64 M: 64 MB at int8, far beyond an MCU's memory, far below a host's).
MAX_CONSTANT_ELEMENTS = 1 << 26


class FrontendError(EdgeflowError):
    """An ONNX file the frontend cannot turn into the integer IR (one line naming file, node or tensor)."""


def attrs(node: NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxView:
    """Producers, consumers and constants of an ONNX graph (constants folded through Identity/Neg/Exp)."""

    def __init__(self, proto: onnx.ModelProto, path: str):
        self.path = path
        self.proto = proto
        self.asym = False   # activations may have non-zero zero points (onnxruntime QDQ, ir/qdq_ort.py)
        g = proto.graph
        self.graph = g
        self.init = {i.name: self._array(i, f"initializer '{i.name}'") for i in g.initializer}
        self.inputs = {i.name for i in g.input if i.name not in self.init}
        self.prod: dict[str, NodeProto] = {}
        self.cons: dict[str, list[NodeProto]] = {}
        for n in g.node:
            for o in n.output:
                self.prod[o] = n
            for i in n.input:
                self.cons.setdefault(i, []).append(n)
            if n.op_type == "Constant":
                value = next((a for a in n.attribute if a.name == "value"), None)
                if value is None:
                    raise self.err(f"Constant node '{n.name}' has no tensor 'value' attribute "
                                   f"(got: {', '.join(a.name for a in n.attribute) or 'none'})")
                self.init[n.output[0]] = self._array(value.t, f"Constant node '{n.name}'")
        for name in sorted(self.inputs):
            if name not in self.cons:
                raise self.err(f"graph input '{name}' is not read by any node (an edgeflow model takes one input "
                               "window; remove the extra input)")

    def _array(self, t: onnx.TensorProto, what: str) -> np.ndarray:
        """The tensor's values; refused in one line when it declares more elements than any edge model holds or
        holds fewer bytes than it declares (never allocated first)."""
        n = 1
        for d in t.dims:
            n *= max(int(d), 0)
        if n > MAX_CONSTANT_ELEMENTS:
            raise self.err(f"{what} declares {n:,} elements (dims {list(t.dims)}), more than the "
                           f"{MAX_CONSTANT_ELEMENTS:,} any edge model holds")
        try:
            return numpy_helper.to_array(t)
        except (ValueError, TypeError) as e:
            raise self.err(f"{what} (dims {list(t.dims)}): its data does not match its shape "
                           f"({type(e).__name__}: {str(e)[:80]})") from None

    def err(self, msg: str) -> FrontendError:
        return FrontendError(f"{self.path}: {msg}")

    def is_const(self, v: str) -> bool:
        if v in self.init:
            return True
        p = self.prod.get(v)
        return p is not None and p.op_type in _FOLDABLE and self.is_const(p.input[0])

    def const(self, v: str) -> np.ndarray:
        if v in self.init:
            return self.init[v]
        p = self.prod.get(v)
        if p is not None and p.op_type in _FOLDABLE:
            return _FOLDABLE[p.op_type](self.const(p.input[0]))
        raise self.err(f"tensor '{v}' is not a constant (initializer, Constant or folded Identity/Neg/Exp)")

    def scalar(self, v: str) -> float:
        a = self.const(v)
        if a.size != 1:
            raise self.err(f"tensor '{v}' must be a scalar, has shape {a.shape}")
        return float(a.reshape(-1)[0])

    def producer(self, v: str, op: str | tuple[str, ...] | None = None) -> NodeProto | None:
        p = self.prod.get(v)
        if p is None or (op is not None and p.op_type not in ((op,) if isinstance(op, str) else op)):
            return None
        return p

    def skip_layout(self, v: str) -> str:
        """Follow Transpose/Reshape/Unsqueeze/Squeeze/Identity and float32/64 Casts back (IR token layout (L, C))."""
        while (p := self.producer(v, LAYOUT_OPS)) is not None and not self.is_const(v):
            if p.op_type == "Cast" and attrs(p).get("to") not in _FLOAT_TYPES:
                break
            v = p.input[0]
        return v

    def activation_ql(self, v: str) -> NodeProto | None:
        """The QuantizeLinear behind a DequantizeLinear(QuantizeLinear(x)) value, else None."""
        dq = self.producer(v, "DequantizeLinear")
        return None if dq is None else self.producer(dq.input[0], "QuantizeLinear")

    def qparams(self, node: NodeProto) -> tuple[float, str]:
        """(scale, label) of an activation QuantizeLinear; checks int8 and zero point 0."""
        scale = self.scalar(node.input[1])
        zp = self.const(node.input[2]) if len(node.input) > 2 else np.zeros((), np.uint8)
        if zp.dtype != np.int8 or (np.any(zp != 0) and not self.asym):
            hint = ("an unsigned quantizer (QuantReLU's default): use a signed one, e.g. QuantReLU(act_quant="
                    "Int8ActPerTensorFloat)" if zp.dtype == np.uint8 else "quantize activations symmetrically")
            raise self.err(f"node '{node.name}': activations must be int8 with zero point 0, got {zp.dtype} {zp}; "
                           f"{hint}")
        if not scale > 0:
            raise self.err(f"node '{node.name}': scale {scale} must be > 0")
        return scale, node.name

    def weight(self, v: str) -> tuple[np.ndarray, np.ndarray, int, bool]:
        """(int codes (O, ...), per-channel scale (O,), bits, transposed) of a QCDQ weight, through Transpose."""
        transposed = False
        t = self.producer(v, "Transpose")
        if t is not None:
            if list(attrs(t).get("perm", [1, 0])) != [1, 0]:
                raise self.err(f"node '{t.name}': weight transpose must be perm [1, 0]")
            v, transposed = t.input[0], True
        dq = self.producer(v, "DequantizeLinear")
        if dq is None:
            raise self.err(f"tensor '{v}' is not a quantized weight (DequantizeLinear of int8 codes)")
        src = dq.input[0]
        clip = self.producer(src, "Clip")
        if clip is not None:
            codes = self.const(clip.input[0])
            lo, hi = int(self.scalar(clip.input[1])), int(self.scalar(clip.input[2]))
            codes = np.clip(codes, lo, hi)
        else:
            codes = self.const(src)
            hi = 127
        if codes.dtype != np.int8:
            raise self.err(f"weight '{src}' must be int8 codes, got {codes.dtype}")
        scale = np.asarray(self.const(dq.input[1]), dtype=np.float64).reshape(-1)
        zp = self.const(dq.input[2]) if len(dq.input) > 2 else np.zeros(1)
        if np.any(zp != 0):
            raise self.err(f"node '{dq.name}': weight zero point must be 0 (symmetric weights: brevitas' default, or "
                           "quantize_static(..., weight_type=QuantType.QInt8))")
        if scale.size not in (1, codes.shape[0]) or (scale.size > 1 and attrs(dq).get("axis", 1) != 0):
            raise self.err(f"node '{dq.name}': weight scale must be per-tensor or per output channel (axis 0)")
        scale = np.broadcast_to(scale, (codes.shape[0],)).copy()
        return codes, scale, max(2, int(hi).bit_length() + 1), transposed

    def bias(self, v: str, expect_scale: np.ndarray) -> np.ndarray:
        """int32 codes of a QCDQ bias; its scale must be s_in * s_w (brevitas Int32Bias)."""
        dq = self.producer(v, "DequantizeLinear")
        codes = None if dq is None else self.const(dq.input[0])
        if codes is None or codes.dtype != np.int32:
            raise self.err(f"tensor '{v}' is not an int32 bias (DequantizeLinear of int32 codes)")
        scale = np.broadcast_to(np.asarray(self.const(dq.input[1]), np.float64).reshape(-1), expect_scale.shape)
        if not np.allclose(scale, expect_scale, rtol=1e-5, atol=0):
            raise self.err(f"node '{dq.name}': bias scale is not input scale * weight scale")
        return codes.reshape(-1)

    def is_bias(self, v: str) -> bool:
        dq = self.producer(v, "DequantizeLinear")
        return dq is not None and dq.input[0] in self.init and self.init[dq.input[0]].dtype == np.int32

    def flip_source(self, v: str) -> str | None:
        """x if v = Slice(x, start -1, step -1) over axis 1 (time of (B, L, C)), else None."""
        s = self.producer(v, "Slice")
        if s is None or len(s.input) < 5:
            return None
        axes, steps = self.const(s.input[3]).reshape(-1), self.const(s.input[4]).reshape(-1)
        if list(steps) == [-1] and list(axes) in ([1], [-2]) and int(self.const(s.input[1]).reshape(-1)[0]) == -1:
            return s.input[0]
        return None

    def layernorm(self, v: str) -> tuple[str, np.ndarray, np.ndarray, float] | None:
        """(x, gamma, beta, eps) if v is the decomposed LayerNorm over the last axis, else None."""
        add = self.producer(v, "Add")
        if add is None:
            return None
        pick = [(a, b) for a, b in (add.input, add.input[::-1]) if self.is_const(b) and self.producer(a, "Mul")]
        if not pick:
            return None
        mul = self.producer(pick[0][0], "Mul")
        beta = self.const(pick[0][1])
        got = [(a, b) for a, b in (mul.input, mul.input[::-1]) if self.is_const(b) and self.producer(a, "Div")]
        if not got:
            return None
        gamma = self.const(got[0][1])
        div = self.producer(got[0][0], "Div")
        sub, sqrt = self.producer(div.input[0], "Sub"), self.producer(div.input[1], "Sqrt")
        if sub is None or sqrt is None:
            return None
        rm = self.producer(sub.input[1], "ReduceMean")
        eps_add = self.producer(sqrt.input[0], "Add")
        if rm is None or rm.input[0] != sub.input[0] or eps_add is None:
            return None
        rm2 = next((self.producer(i, "ReduceMean") for i in eps_add.input if self.producer(i, "ReduceMean")), None)
        eps_v = next((i for i in eps_add.input if self.is_const(i)), None)
        pow_ = None if rm2 is None else self.producer(rm2.input[0], "Pow")
        if pow_ is None or eps_v is None or pow_.input[0] != div.input[0] or self.scalar(pow_.input[1]) != 2.0:
            return None
        for r in (rm, rm2):
            if list(attrs(r).get("axes", [-1])) not in ([-1], [2]):
                return None
        return sub.input[0], gamma.reshape(-1), beta.reshape(-1), self.scalar(eps_v)
