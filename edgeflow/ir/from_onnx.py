"""ONNX frontend: a QCDQ file (edgeflow.export.onnx) -> the integer IR, one integer op per float region."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
from numpy.typing import ArrayLike, NDArray
from onnx import NodeProto

from edgeflow.export.scan_op import ScanNodeError, check_scan_nodes
from edgeflow.ir import frontend_cnn, ops, qdq_ort, qdq_ort_ops
from edgeflow.ir.fold_shapes import fold_shapes
from edgeflow.ir.graph import Graph, IRError, Node, Tensor, verify
from edgeflow.ir.naming import name_nodes_by_module
from edgeflow.ir.patterns import FrontendError, OnnxView, attrs
from edgeflow.ir.patterns_attn import AttentionMixin, gelu_source
from edgeflow.ir.patterns_femba import FembaMixin
from edgeflow.ir.patterns_gemm import GemmMixin
from edgeflow.ir.patterns_layout import LayoutMixin, drop_dead_views
from edgeflow.ir.patterns_struct import check_ops, not_an_activation, unmatched_region
from edgeflow.quant.intmath import build_lut, gelu, quantize_multiplier, silu, softplus
from edgeflow.quant.intscan import ScanQuant

# Shape of a static value and the arithmetic on it are folded to constants first (ir/fold_shapes.py).
# Op mapping (ONNX float region between int8 tensors -> IR op of the registry, ir/opdefs):
#   MatMul(x, W^T) [+ int32 bias], also one Split part of it -> linear (per-part weight rows; no split node)
#     (a feature Slice of it too: q / k / v of a packed in_proj; a Mul / Div by a constant folded into its multiplier)
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
#   Relu of a region or an activation                                     -> lut (relu table), after the region
#   Transpose/Reshape/Flatten/Squeeze/Unsqueeze/Slice/Gather of constants -> nothing (the bytes are in order),
#     a reshape view, or one transpose / slice copy (patterns_layout: proven on index arrays, never dropped)
# An IR activation holds its ONNX value's elements in C order (batch 1 dropped) unless a region lays it out
# otherwise (the causal conv's token layout); Gemm / MatMul in any transpose (patterns_gemm).
# onnxruntime QDQ (ir/qdq_ort.py): uint8 codes held as int8 (zero point - 128); input zero points folded into the
#   int32 bias (conv/pool: attrs zp_in, padding reads it); an asymmetric linear output -> linear_acc + requant (zp);
#   the logits' quantizer is left out (int32 accumulator); ops that cannot carry a zero point are refused.
# Conv 1-D/2-D (pads, strides, dilations, groups; BatchNorm folded, ReLU/Clip as the clamp), Max/Average/
#   GlobalAverage pooling, Elu/Tanh/Sigmoid tables                       -> conv / pool / lut (ir/frontend_cnn.py)

__all__ = ["FrontendError", "load_onnx", "quantize_input"]


def _ir_name(ql: NodeProto) -> str:
    s = ql.name.replace("/export_handler/QuantizeLinear", "").replace("/act_quant", "")
    s = re.sub(r"/input_quant$", ".in", s)
    return s.strip("/").replace("/", ".") or ql.output[0]


class _Builder(AttentionMixin, LayoutMixin, GemmMixin, FembaMixin):
    def __init__(self, view: OnnxView, name: str):
        self.v = view
        self.g = Graph(name)
        self.acts: dict[str, str] = {}   # ONNX value (DQ output / flipped value) -> IR tensor
        self.parts: dict[str, list[str]] = {}  # ONNX value of a (1, H, L, L) tensor -> per-head IR tensors
        self.onnx_names: dict[str, str] = {}
        self.onnx_heads: dict[str, list] = {}   # per-head IR tensor -> [ONNX value, head index]
        self.layout: dict[str, np.ndarray] = {}   # ONNX activation value -> index array (when not C order)
        self.anchor_idx: dict[str, np.ndarray] = {}   # region output -> index array of its ONNX value
        self.copies: set[str] = set()             # region outputs in their quantizer's element order
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

    def act(self, v: str, perm: tuple[int, ...] | None = None) -> str:
        """IR tensor of an ONNX value that must be an int8 activation, read through layout ops (a view or a
        proven copy, patterns_layout) and time flips; `perm` permutes the value's axes first (batch included)."""
        src, chain = self.layout_chain(v)
        return self.read(v, self._base(src), src, chain, perm)

    def _base(self, v: str) -> str:
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
        raise self.v.err(not_an_activation(self.v, v))

    def _input_layout(self, v: str, v0: str) -> NodeProto | None:
        """The layout ops between graph input v0 and its quantizer (at v) keep the window's element order: unit
        axes only (None: the input's own shape), or one Flatten on axis 1 (that node: one row); anything else (a
        Transpose, a Reshape) is refused in one line rather than dropped."""
        nodes = self._nodes_between(v0, v)
        flats = [n for n in nodes if n.op_type == "Flatten"]
        other = [n for n in nodes if n.op_type not in ("Flatten", "Unsqueeze", "Squeeze", "Identity", "Cast")]
        if other or len(flats) > 1:
            n = (other or flats)[0]
            raise self.v.err(f"node '{n.name}' ({n.op_type}) between graph input '{v0}' and its quantizer: quantize "
                             "the input first (a QuantIdentity / QuantizeLinear right after the input), then reshape")
        return flats[0] if flats else None

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
            v0, pre = ql.input[0], []
            if out not in self.copies:                  # the region's IR output holds v0; layout nodes follow
                v0 = self.v.skip_layout(ql.input[0])
                pre = self._nodes_between(v0, ql.input[0])
            idx = self.region_index(v0, out, pre)
        else:
            self.onnx_heads.update({t: [ql.output[0], i] for i, t in enumerate(heads)})
        for dq in self.v.cons.get(ql.output[0], []):
            if dq.op_type == "DequantizeLinear" and heads is None:
                self.acts[dq.output[0]] = out
                self.record_layout(dq.output[0], idx)
            elif dq.op_type == "DequantizeLinear":
                self.parts[dq.output[0]] = heads

    def _nodes_between(self, v0: str, v: str) -> list[NodeProto]:
        """The layout nodes from v0 forward to v (v = skip_layout(...) chain end)."""
        chain: list[NodeProto] = []
        while v != v0:
            p = self.v.producer(v)
            chain.insert(0, p)
            v = p.input[0]
        return chain

    def lower(self, v: str, s_out: float | None, out: str) -> None:
        if s_out is not None and self.copy_region(v, s_out, out):
            self.copies.add(out)
            return None
        v0 = self.v.skip_layout(v)
        if v0 in self.v.inputs:
            flat = self._input_layout(v, v0)
            if flat is not None:
                return qdq_ort.flat_input(self, flat, s_out, out)
            shp = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
                   for i in self.v.graph.input if i.name == v0 for d in i.type.tensor_type.shape.dim]
            if not shp or shp[0] != 1 or not all(isinstance(d, int) and d > 0 for d in shp):
                raise self.v.err(f"graph input '{v0}' must have batch dimension 1 and fixed sizes, got {shp} "
                                 "(export with a (1, ...) example input and no dynamic_axes)")
            self.act_out(out, tuple(shp[1:]), s_out)
            self.g.inputs.append(out)
            self.g.meta["input_scale"] = s_out
            if self.zp_out:
                self.g.meta["input_zero_point"] = self.zp_out
            return
        if frontend_cnn.lower_region(self, v, s_out, out):
            return None
        if self.v.asym and qdq_ort_ops.lower_region(self, v0, s_out, out):   # onnxruntime regions, zero points
            return None
        p = self.v.producer(v0)
        if p is None:
            raise self.v.err(f"tensor '{v0}' has no producer (missing initializer?)")
        if self.v.layernorm(v0) is not None:
            return self.layernorm(v0, s_out, out)
        if self.attention(v, s_out, out):
            self.copies.add(out)                          # written in the quantizer's order (heads merged)
            return None
        op = p.op_type
        if op in ("MatMul", "Gemm", "Split") or (op == "Add" and any(self.v.is_bias(i) for i in p.input)):
            return self.linear(v0, s_out, out)
        if op == "Add" and any(self.v.is_const(i) for i in p.input):
            other = next(i for i in p.input if not self.v.is_const(i))
            if self.v.producer(other, ("MatMul", "Gemm")) is not None:
                return self.linear(v0, s_out, out)
            return self.patch(other, next(i for i in p.input if self.v.is_const(i)), s_out, out)
        if op == "Conv":
            return self.patch(v0, None, s_out, out)
        if op == "Slice" and self.is_linear_value(p.input[0]):   # one chunk of a packed in_proj (q, k, v)
            return self.linear(v0, s_out, out)
        if op == "Slice" and self.v.producer(p.input[0], "Conv") is not None:
            return self.dwconv(p, s_out, out)
        if s_out is None:
            raise self.v.err(f"node '{p.name}' ({op}): only a linear layer (Gemm / MatMul) may feed a float graph "
                             "output; end the model with a QuantLinear")
        if op == "Relu":
            return self.relu(p, s_out, out)
        if op == "Concat":
            return self.concat(p, s_out, out)
        if op == "Add":
            return self.add(v0, s_out, out)
        if op == "Softplus":
            return self.lut(p.input[0], softplus, s_out, out)
        if op == "Mul" and (x := gelu_source(self.v, v0)) is not None:
            return self.lut(x, gelu, s_out, out)
        if self.scaled_linear(p, s_out, out) or self.scaled_region(p, s_out, out):
            return None
        if op == "Mul":
            sig = [i for i in p.input if self.v.producer(i, "Sigmoid") is not None]
            if sig and self.v.producer(sig[0]).input[0] in p.input:
                return self.lut(self.v.producer(sig[0]).input[0], silu, s_out, out)
            a, b = self.act(p.input[0]), self.act(p.input[1])
            b = self.view(b, self.shape(a), exact=True)
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
        raise self.v.err(unmatched_region(self.v, p))

    def lut(self, v: str, fn: object, s_out: float, out: str) -> None:
        x = self.act(v)
        table = build_lut(fn, self.scale(x), self.zp(x), s_out, self.zp_out)  # type: ignore[arg-type]
        self.act_out(out, self.shape(x), s_out)
        self.emit("lut", [x, self.const(out, "table", table, "int8")], out, {"fn": fn.__name__})  # type: ignore[attr-defined]
        self.zp_done.update((f"{out}:in", f"{out}:out"))     # the table reads and writes both zero points

    def add(self, v: str, s_out: float, out: str) -> None:
        leaves, todo = [], [v]
        while todo:
            raw = todo.pop(0)
            cur = self.v.skip_layout(raw)
            p = self.v.producer(cur, "Add")
            if p is not None and cur not in self.acts and self.v.activation_ql(cur) is None:
                if cur != raw:
                    raise self.v.err(f"node '{p.name}' (Add): its sum is read through a layout node; quantize it "
                                     "first (a QuantIdentity after the Add)")
                todo = list(p.input) + todo
            else:
                leaves.append(self.act(raw))
        leaves = [self.view(x, self.shape(leaves[0]), exact=True) if x != leaves[0] else x for x in leaves]
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
    proto = fold_shapes(proto)   # Shape -> Gather -> ... of static shapes: constants before any pattern
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
    # every unsupported op in one line, each with a hint
    check_ops(proto, view, frontend_cnn.CNN_OPS + (qdq_ort_ops.ORT_OPS if ort else ()))
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
                b.check_output_order(o.name, "logits_acc")
                b.g.outputs.append("logits_acc")
    except (ValueError, IndexError, KeyError, TypeError) as e:  # arrays whose shapes do not fit the pattern
        raise view.err(f"{where}: cannot lower its region ({type(e).__name__}: {e})") from None
    b.g.meta["onnx_names"] = b.onnx_names
    if b.onnx_heads:
        b.g.meta["onnx_heads"] = b.onnx_heads
    if not b.g.inputs:
        raise view.err("no quantized graph input found")
    drop_dead_views(b.g)
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
