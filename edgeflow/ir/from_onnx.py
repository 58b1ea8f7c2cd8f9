"""ONNX frontend: a QCDQ file (edgeflow.export.onnx) -> the integer IR, one integer op per float region."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
from numpy.typing import ArrayLike, NDArray
from onnx import NodeProto

from edgeflow.export.scan_op import SCAN_DOMAIN, ScanNodeError, check_scan_nodes
from edgeflow.ir import frontend_cnn, ops, qdq_ort
from edgeflow.ir.graph import Graph, IRError, Node, Tensor, verify
from edgeflow.ir.naming import name_nodes_by_module
from edgeflow.ir.patterns import SUPPORTED_OPS, FrontendError, OnnxView, attrs
from edgeflow.ir.patterns_attn import AttentionMixin, gelu_source
from edgeflow.quant.intmath import build_lut, gelu, quantize_multiplier, silu, softplus
from edgeflow.quant.intscan import ScanQuant

# Op mapping (ONNX float region between int8 tensors -> IR op of the registry, ir/opdefs):
#   MatMul(x, W^T) [+ int32 bias], also one Split part of it -> linear (per-part weight rows; no split node)
#   Conv 2-D kernel = stride [+ pos-embed Add, folded as int32 addend]    -> conv2d_patch
#   depthwise Conv 1-D pads (K-1) + Slice [0, L)                          -> dwconv1d_causal
#   x * Sigmoid(x) / Softplus(x)                                          -> lut (silu / softplus table)
#   Mul of two int8 tensors                                               -> mul_requant
#   edgeflow.SelectiveScan                                                -> scan (constants as tensors)
#   Slice step -1 over time of an int8 tensor                             -> flip_time
#   Add tree of int8 tensors (the residual of three)                      -> add_requant
#   LayerNorm decomposition                                               -> layernorm
#   ReduceMean over tokens                                                -> meanpool_tokens
#   0.5 x (1 + Erf(x / sqrt 2))                                           -> lut (gelu table)
#   attention: Q.Kᵀ (* scale), Softmax, P.V over per-head views           -> split / matmul / softmax_rows / concat
#     (patterns_attn; LayerNorm and Softmax float64 Casts are looked through)
#   Gemm / MatMul (+bias) feeding the graph output                        -> linear_acc (int32 logits accumulator)
# onnxruntime QDQ (ir/qdq_ort.py): uint8 codes held as int8 (zero point - 128); input zero points folded into the
#   int32 bias (conv/pool: attrs zp_in, padding reads it); an asymmetric linear output -> linear_acc + requant (zp);
#   the logits' quantizer is left out (int32 accumulator); ops that cannot carry a zero point are refused.
# Transpose/Reshape/Unsqueeze/Squeeze are folded: every IR activation is one sample in token layout (L, C),
# the input window is (channels, samples). Batch must be 1.

__all__ = ["FrontendError", "load_onnx", "quantize_input"]


def _ir_name(ql: NodeProto) -> str:
    s = ql.name.replace("/export_handler/QuantizeLinear", "").replace("/act_quant", "")
    s = re.sub(r"/input_quant$", ".in", s)
    return s.strip("/").replace("/", ".") or ql.output[0]


class _Builder(AttentionMixin):
    def __init__(self, view: OnnxView, name: str):
        self.v = view
        self.g = Graph(name)
        self.acts: dict[str, str] = {}   # ONNX value (DQ output / flipped value) -> IR tensor
        self.parts: dict[str, list[str]] = {}  # ONNX value of a (1, H, L, L) tensor -> per-head IR tensors
        self.onnx_names: dict[str, str] = {}
        self.onnx_heads: dict[str, list] = {}   # per-head IR tensor -> [ONNX value, head index]
        self.clamp_lo = -128                    # lowest code of the region's quantizer (0: uint8, frontend_cnn)
        self.zp_out = 0                         # zero point of the region's quantizer (onnxruntime QDQ)
        self.zp_done: set[str] = set()          # nodes that folded or applied their zero points (qdq_ort)

    # ---- tensors ----------------------------------------------------------------------------------------
    def const(self, owner: str, key: str, data: ArrayLike, dtype: str, bits: int | None = None,
              scale: float | NDArray | None = None) -> str:
        a = np.ascontiguousarray(np.asarray(data).astype(dtype))
        name = f"{owner}.{key}"
        self.g.add_tensor(Tensor(name, tuple(a.shape), dtype, bits or ops_bits(dtype), scale, 0, a))
        return name

    def act_out(self, name: str, shape: tuple[int, ...], scale: float, dtype: str = "int8") -> None:
        self.g.add_tensor(Tensor(name, tuple(int(d) for d in shape), dtype, 8 if dtype == "int8" else 32, scale))

    def emit(self, op: str, inputs: list[str], out: str, a: dict | None = None) -> None:
        self.g.add_node(Node(out, op, inputs, [out], a or {}))
        if op in qdq_ort.PASS_THROUGH and inputs:
            self.g.tensors[out].zero_point = self.g.tensors[inputs[0]].zero_point

    def zp(self, name: str) -> int:
        return int(self.g.tensors[name].zero_point)

    def act(self, v: str) -> str:
        """IR tensor of an ONNX value that must be an int8 activation (through layout ops and time flips)."""
        v = self.v.skip_layout(v)
        if v in self.acts:
            return self.acts[v]
        src = self.v.flip_source(v)
        if src is not None:
            x = self.act(src)
            out = f"{x}.flip"
            t = self.g.tensors[x]
            self.act_out(out, t.shape, t.scale)
            self.emit("flip_time", [x], out)
            self.acts[v] = out
            return out
        if (flat := frontend_cnn.flatten(self, v)) is not None:
            return flat
        raise self.v.err(f"value '{v}' must be an int8 activation (DequantizeLinear(QuantizeLinear(x)))")

    def shape(self, name: str) -> tuple[int, ...]:
        return self.g.tensors[name].shape

    def scale(self, name: str) -> float:
        return float(self.g.tensors[name].scale)  # type: ignore[arg-type]

    # ---- regions ----------------------------------------------------------------------------------------
    def quantizer(self, ql: NodeProto) -> None:
        s_out, self.clamp_lo = frontend_cnn.qparams(self.v, ql)
        out = _ir_name(ql)
        while out in self.g.tensors:
            out += "_"
        self.zp_out = qdq_ort.zero_point(self.v, ql) if self.v.asym else 0
        try:
            self.lower(ql.input[0], s_out, out)
        finally:
            zp, self.zp_out = self.zp_out, 0
        if zp:   # per-head outputs of attention (self.parts) never have one: brevitas only
            self.g.tensors[out].zero_point = zp
        heads = self.parts.get(out)
        if heads is None:
            self.onnx_names[out] = ql.output[0]
        else:
            self.onnx_heads.update({t: [ql.output[0], i] for i, t in enumerate(heads)})
        for dq in self.v.cons.get(ql.output[0], []):
            if dq.op_type == "DequantizeLinear" and heads is None:
                self.acts[dq.output[0]] = out
            elif dq.op_type == "DequantizeLinear":
                self.parts[dq.output[0]] = heads

    def lower(self, v: str, s_out: float | None, out: str) -> None:
        v0 = self.v.skip_layout(v)
        if v0 in self.v.inputs:
            shp = [d.dim_value for i in self.v.graph.input if i.name == v0 for d in i.type.tensor_type.shape.dim]
            if not shp or shp[0] != 1:
                raise self.v.err(f"graph input '{v0}' must have batch dimension 1, got {shp}")
            self.act_out(out, tuple(shp[1:]), s_out)
            self.g.inputs.append(out)
            self.g.meta["input_scale"] = s_out
            if self.zp_out:
                self.g.meta["input_zero_point"] = self.zp_out
            return
        if self.v.asym and (flat := self.v.producer(v0, "Flatten")) is not None and flat.input[0] in self.v.inputs:
            return qdq_ort.flat_input(self, flat, s_out, out)
        if frontend_cnn.lower_region(self, v, s_out, out):
            return None
        p = self.v.producer(v0)
        if p is None:
            raise self.v.err(f"tensor '{v0}' has no producer (missing initializer?)")
        if self.v.layernorm(v0) is not None:
            return self.layernorm(v0, s_out, out)
        if self.attention(v, s_out, out):
            return None
        op = p.op_type
        if op in ("MatMul", "Gemm", "Split") or (op == "Add" and any(self.v.is_bias(i) for i in p.input)):
            return self.linear(v0, s_out, out)
        if op == "Add" and any(self.v.is_const(i) for i in p.input):
            other = next(i for i in p.input if not self.v.is_const(i))
            return self.patch(other, next(i for i in p.input if self.v.is_const(i)), s_out, out)
        if op == "Conv":
            return self.patch(v0, None, s_out, out)
        if op == "Slice":
            return self.dwconv(p, s_out, out)
        if s_out is None:
            raise self.v.err(f"node '{p.name}' ({op}): only a linear layer may feed a float graph output")
        if op == "Add":
            return self.add(v0, s_out, out)
        if op == "Softplus":
            return self.lut(p.input[0], softplus, s_out, out)
        if op == "Mul" and (x := gelu_source(self.v, v0)) is not None:
            return self.lut(x, gelu, s_out, out)
        if op == "Mul":
            sig = [i for i in p.input if self.v.producer(i, "Sigmoid") is not None]
            if sig and self.v.producer(sig[0]).input[0] in p.input:
                return self.lut(self.v.producer(sig[0]).input[0], silu, s_out, out)
            a, b = self.act(p.input[0]), self.act(p.input[1])
            m, sh = quantize_multiplier(self.scale(a) * self.scale(b) / s_out)
            self.act_out(out, self.shape(a), s_out)
            return self.emit("mul_requant", [a, b], out, {"m": m, "sh": sh})
        if op == "SelectiveScan":
            return self.scan(p, s_out, out)
        if op == "ReduceMean":
            at = attrs(p)
            if list(at.get("axes", [])) != [1] or at.get("keepdims", 1) != 0:
                raise self.v.err(f"node '{p.name}': ReduceMean must average tokens (axes [1], keepdims 0)")
            x = self.act(p.input[0])
            m, sh = ops.meanpool_params(self.scale(x), s_out, self.shape(x)[0])
            self.act_out(out, (1, self.shape(x)[1]), s_out)
            return self.emit("meanpool_tokens", [x], out, {"m": m, "sh": sh})
        raise self.v.err(f"node '{p.name}' ({op}): float region does not match a supported pattern")

    def linear(self, v: str, s_out: float | None, out: str) -> None:
        p = self.v.producer(v)
        rows = None
        if p.op_type == "Split":
            k = list(p.output).index(v)
            sizes = (self.v.const(p.input[1]) if len(p.input) > 1 else np.asarray(attrs(p)["split"])).reshape(-1)
            if attrs(p).get("axis", 0) not in (-1, 2):
                raise self.v.err(f"node '{p.name}': Split must be over features (last axis)")
            rows = slice(int(sizes[:k].sum()), int(sizes[:k + 1].sum()))
            p = self.v.producer(p.input[0])
        bias_v = None
        if p.op_type == "Add":
            bias_v = next(i for i in p.input if self.v.is_bias(i))
            p = self.v.producer(next(i for i in p.input if i != bias_v), ("MatMul", "Gemm"))
            if p is None:
                raise self.v.err(f"bias add of '{v}' does not follow a MatMul")
        if p.op_type == "Gemm":
            at = attrs(p)
            if at.get("transA", 0) or not at.get("transB", 0) or at.get("alpha", 1.0) != 1 or at.get("beta", 1.0) != 1:
                raise self.v.err(f"node '{p.name}': Gemm must be x @ W^T + b (transB 1, alpha = beta = 1)")
            w, s_w, bits, _ = self.v.weight(p.input[1])
            bias_v = p.input[2] if len(p.input) > 2 else None
        else:
            w, s_w, bits, transposed = self.v.weight(p.input[1])
            if not transposed:
                raise self.v.err(f"node '{p.name}': MatMul weight must be Transpose(DequantizeLinear(W))")
        x = self.act(p.input[0])
        s_in = self.scale(x)
        bias = np.zeros(w.shape[0], np.int32) if bias_v is None else self.v.bias(bias_v, s_in * s_w)
        if self.zp(x):
            bias = qdq_ort.fold_input_zp(self.v, p.name, bias, w, self.zp(x))
            self.zp_done.update((f"{out}:in", f"{out}.acc:in"))
        if rows is not None:
            w, s_w, bias = w[rows], s_w[rows], bias[rows]
        ins = [x, self.const(out, "w", w, "int8", bits, s_w), self.const(out, "b", bias, "int32")]
        shape = (self.shape(x)[0], w.shape[0])
        if s_out is None:
            self.act_out(out, shape, s_in * s_w, "int32")
            self.g.meta["output_scale"] = [float(s) for s in s_in * s_w]
            return self.emit("linear_acc", ins, out)
        m, sh = ops.requant_params(s_in, s_w, s_out)
        if self.zp_out:   # asymmetric output: the int32 accumulator, then requantized with the output zero point
            return qdq_ort.requant_output(self, ins, shape, s_in * s_w, s_out, m, sh, out)
        self.act_out(out, shape, s_out)
        self.emit("linear", ins + [self.const(out, "m", m, "int32"), self.const(out, "sh", sh, "int32")], out)

    def patch(self, v: str, addend_v: str | None, s_out: float, out: str) -> None:
        v = self.v.skip_layout(v)
        conv = self.v.producer(v, "Conv")
        at = attrs(conv) if conv is not None else {}
        k = list(at.get("kernel_shape", []))
        if conv is None or len(k) != 2 or list(at.get("strides", [])) != k or any(at.get("pads", [0])) \
                or at.get("group", 1) != 1:
            raise self.v.err(f"'{v}': a 2-D Conv must have kernel = stride, no padding, 1 group (patch embedding)")
        x = self.act(conv.input[0])
        w, s_w, bits, _ = self.v.weight(conv.input[1])
        s_in = self.scale(x)
        bias = self.v.bias(conv.input[2], s_in * s_w) if len(conv.input) > 2 else np.zeros(w.shape[0], np.int32)
        h, wd = self.shape(x)
        rows, n_tok = h // k[0], wd // k[1]
        m, sh = ops.requant_params(s_in, s_w, s_out)
        ins = [x, self.const(out, "w", w.reshape(w.shape[0], -1), "int8", bits, s_w),
               self.const(out, "b", bias, "int32"), self.const(out, "m", m, "int16"),
               self.const(out, "sh", sh, "int8")]
        if addend_v is not None:
            add = ops.fold_addend(self.v.const(addend_v).reshape(n_tok, w.shape[0] * rows), s_in, s_w, rows)
            narrow = add.size and -(1 << 15) <= add.min() and add.max() < 1 << 15  # stored int16 when it fits
            ins.append(self.const(out, "addend", add, "int16" if narrow else "int32"))
        self.act_out(out, (n_tok, w.shape[0] * rows), s_out)
        self.emit("conv2d_patch", ins, out, {"kernel": (int(k[0]), int(k[1]))})

    def dwconv(self, sl: NodeProto, s_out: float, out: str) -> None:
        conv = self.v.producer(sl.input[0], "Conv")
        at = attrs(conv) if conv is not None else {}
        if conv is None or len(at.get("kernel_shape", [])) != 1:
            raise self.v.err(f"node '{sl.name}': Slice must cut a depthwise causal Conv1d")
        x = self.act(conv.input[0])
        n_t, n_c = self.shape(x)
        kk = int(at["kernel_shape"][0])
        starts, ends = self.v.const(sl.input[1]).reshape(-1), self.v.const(sl.input[2]).reshape(-1)
        axes = self.v.const(sl.input[3]).reshape(-1) if len(sl.input) > 3 else np.asarray([0])
        if (at.get("group", 1) != n_c or list(at.get("pads", [])) != [kk - 1, kk - 1] or list(axes) not in ([2], [-1])
                or int(starts[0]) != 0 or int(ends[0]) != n_t or any(s != 1 for s in at.get("strides", [1]))):
            raise self.v.err(f"node '{conv.name}': Conv1d must be depthwise, padding K-1, cut to the first L steps")
        w, s_w, bits, _ = self.v.weight(conv.input[1])
        s_in = self.scale(x)
        bias = self.v.bias(conv.input[2], s_in * s_w) if len(conv.input) > 2 else np.zeros(n_c, np.int32)
        m, sh = ops.requant_params(s_in, s_w, s_out)
        ins = [x, self.const(out, "w", w.reshape(n_c, kk), "int8", bits, s_w), self.const(out, "b", bias, "int32"),
               self.const(out, "m", m, "int16"), self.const(out, "sh", sh, "int8")]
        self.act_out(out, (n_t, n_c), s_out)
        self.emit("dwconv1d_causal", ins, out)

    def lut(self, v: str, fn: object, s_out: float, out: str) -> None:
        x = self.act(v)
        table = build_lut(fn, self.scale(x), 0, s_out, 0)  # type: ignore[arg-type]
        self.act_out(out, self.shape(x), s_out)
        self.emit("lut", [x, self.const(out, "table", table, "int8")], out, {"fn": fn.__name__})  # type: ignore[attr-defined]

    def add(self, v: str, s_out: float, out: str) -> None:
        leaves, todo = [], [v]
        while todo:
            cur = self.v.skip_layout(todo.pop(0))
            p = self.v.producer(cur, "Add")
            if p is not None and cur not in self.acts and self.v.activation_ql(cur) is None:
                todo = list(p.input) + todo
            else:
                leaves.append(self.act(cur))
        big_m, big_s = ops.add_requant_params([self.scale(x) for x in leaves], s_out)
        self.act_out(out, self.shape(leaves[0]), s_out)
        self.emit("add_requant", leaves, out, {"M": big_m, "S": int(big_s)})

    def layernorm(self, v: str, s_out: float, out: str) -> None:
        xv, gamma, beta, eps = self.v.layernorm(v)
        x = self.act(xv)
        c = ops.layernorm_params(gamma, beta, eps, self.scale(x), s_out, self.shape(x)[1])
        ins = [x, self.const(out, "g", c.g, "int32"), self.const(out, "beta", c.b, "int32")]
        self.act_out(out, self.shape(x), s_out)
        self.emit("layernorm", ins, out, {"eps_q": int(c.eps_q), "g_frac": int(c.g_frac)})

    def scan(self, p: NodeProto, s_out: float, out: str) -> None:
        u, dl, b, c = (self.act(p.input[i]) for i in (0, 1, 3, 4))
        at = attrs(p)
        try:
            quant = json.loads(at.get("quant", b"{}") or b"{}")
        except (ValueError, UnicodeDecodeError) as e:
            raise self.v.err(f"node '{p.name}': SelectiveScan's 'quant' attribute is not valid JSON "
                             f"({type(e).__name__}: {str(e)[:60]})") from None
        if not isinstance(quant, dict) or "state_scale" not in quant:
            raise self.v.err(f"node '{p.name}': SelectiveScan has no calibrated 'state_scale' in its quant attribute")
        try:
            sq = ScanQuant.build(self.scale(u), self.scale(dl), self.scale(b), self.scale(c), self.v.const(p.input[2]),
                                 self.v.const(p.input[5]), quant["state_scale"], s_out)
            k = sq.constants()
        except ValueError as e:
            raise self.v.err(f"node '{p.name}': {e}") from None
        ins = [u, dl, b, c] + [self.const(out, n, getattr(k, n), d) for n, d in
                               (("ka", "uint16"), ("m_in", "int32"), ("sh_in", "int8"), ("m_y", "int16"),
                                ("m_D", "int16"), ("sh_D", "int8"), ("sh_y", "int8"))]
        self.act_out(out, self.shape(u), s_out)
        self.emit("scan", ins, out, {"ka_frac": int(k.ka_frac), "direction": int(at.get("direction", 0))})


def ops_bits(dtype: str) -> int:
    return {"int8": 8, "int16": 16, "uint16": 16, "int32": 32, "int64": 64}[dtype]


def load_onnx(path: str | Path) -> Graph:
    """Read a QCDQ ONNX file and build the integer IR (FrontendError, one line, on anything unsupported)."""
    path = Path(path)
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf DecodeError, truncated file, missing file
        raise FrontendError(f"{path}: not a readable ONNX file ({type(e).__name__})") from None
    ort = qdq_ort.prepare(proto, path)   # onnxruntime QDQ: int8 codes with zero points, brevitas weight layouts
    view = OnnxView(proto, str(path))
    view.asym = ort
    known = set(view.init) | view.inputs | set(view.prod)
    for n in proto.graph.node:
        for i in n.input:
            if i and i not in known:
                raise view.err(f"node '{n.name}' reads '{i}', which is no initializer, input or node output "
                               "(missing initializer)")
    try:
        check_scan_nodes(proto)
    except ScanNodeError as e:
        raise view.err(str(e)) from None
    supported = SUPPORTED_OPS + frontend_cnn.CNN_OPS
    for n in proto.graph.node:
        if n.op_type not in supported or (n.domain not in ("", "ai.onnx") and n.domain != SCAN_DOMAIN):
            raise view.err(f"unsupported op '{n.op_type}' (node '{n.name}'); supported: {', '.join(supported)}")
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise view.err(f"ONNX checker: {str(e).splitlines()[0][:200]}") from None
    b = _Builder(view, path.stem)
    where = ""
    logits_q = qdq_ort.output_quantizers(view) if ort else set()
    try:
        for n in proto.graph.node:
            if n.op_type == "QuantizeLinear" and not view.is_const(n.input[0]) and n.name not in logits_q:
                where = f"node '{n.name}'"
                b.quantizer(n)
        for o in proto.graph.output:
            where = f"graph output '{o.name}'"
            if (ql := view.activation_ql(o.name)) is not None and ql.name in logits_q:
                b.lower(ql.input[0], None, "logits_acc")   # the logits' dequantizer: the int32 accumulator
                b.g.outputs.append("logits_acc")
            elif view.activation_ql(o.name) is not None:
                b.g.outputs.append(b.acts[o.name])
            else:
                b.lower(o.name, None, "logits_acc")
                b.g.outputs.append("logits_acc")
    except (ValueError, IndexError, KeyError, TypeError) as e:  # arrays whose shapes do not fit the pattern
        raise view.err(f"{where}: cannot lower its region ({type(e).__name__}: {e})") from None
    b.g.meta["onnx_names"] = b.onnx_names
    if b.onnx_heads:
        b.g.meta["onnx_heads"] = b.onnx_heads
    if not b.g.inputs:
        raise view.err("no quantized graph input found")
    qdq_ort.check_zero_points(b.g, b.zp_done, view.err)
    name_nodes_by_module(b.g, view, b.onnx_names)
    try:
        verify(b.g)  # every node's shapes against its OpDef: a bad model is refused here, before any code exists
    except IRError as e:
        raise view.err(str(e)) from None
    return b.g


def quantize_input(x: ArrayLike, graph: Graph) -> NDArray[np.int8]:
    """Float window(s) -> int8 codes as ONNX QuantizeLinear: float32 x / scale, round half to even, plus the input
    zero point (onnxruntime QDQ; uint8 inputs are held as int8, zero point - 128), saturate."""
    s = np.float32(graph.meta["input_scale"])
    q = np.rint(np.asarray(x, dtype=np.float32) / s) + int(graph.meta.get("input_zero_point", 0))
    return np.clip(q, -128, 127).astype(np.int8)
