"""Transformer regions of the ONNX frontend: multi-head attention (per-head matmul / softmax) and the GELU table."""

from __future__ import annotations

import math

import numpy as np
from onnx import NodeProto

from edgeflow.ir import ops
from edgeflow.ir.graph import Node
from edgeflow.ir.patterns import OnnxView, attrs
from edgeflow.quant.intmath import quantize_multiplier

# Attention lowering (every IR tensor stays 2-d, heads are column slices of the (L, D) projections):
#   q_q, q_k, q_v (L, D) --split (last axis, H parts of d_head)--> q.h{i}, k.h{i}, v.h{i} (L, d_head)
#   q_scores.h{i} = matmul(q.h{i}, transpose(k.h{i}))   (L, L), the Mul by d_head^-0.5 folded into (m, sh)
#   q_probs.h{i}  = softmax_rows(q_scores.h{i})          (L, L)
#   q_ctx.h{i}    = matmul(q_probs.h{i}, v.h{i})         (L, d_head), requantized to q_ctx's scale
#   q_ctx         = concat(q_ctx.h*, last axis)          (L, D)
# An ONNX int8 tensor of shape (1, H, L, L) (scores, probs) is thus a list of H per-head IR tensors ("parts").
# The head layout (Reshape/Transpose chains) is checked numerically: the chain is applied to an index array.

_VALUE_OPS = ("Cast", "Identity")   # float64 regions are exported as Cast -> ops -> Cast


def _apply_layout(view: OnnxView, chain: list[NodeProto], idx: np.ndarray) -> np.ndarray | None:
    """Apply layout nodes (in forward order) to an index array; None if one is not understood."""
    for n in chain:
        a = attrs(n)
        if n.op_type in _VALUE_OPS:
            continue
        if n.op_type == "Transpose":
            idx = idx.transpose(a.get("perm", list(range(idx.ndim))[::-1]))
        elif n.op_type == "Reshape":
            shp = [int(s) for s in view.const(n.input[1]).reshape(-1)]
            shp = [idx.shape[i] if s == 0 and not a.get("allowzero", 0) else s for i, s in enumerate(shp)]
            if -1 not in shp and int(np.prod(shp)) != idx.size:
                return None
            idx = idx.reshape(shp)
        elif n.op_type in ("Unsqueeze", "Squeeze"):
            axes = a.get("axes") or (view.const(n.input[1]).reshape(-1).tolist() if len(n.input) > 1 else None)
            if n.op_type == "Unsqueeze":
                for ax in sorted(int(x) % (idx.ndim + len(axes)) for x in axes):
                    idx = np.expand_dims(idx, ax)
            else:
                idx = np.squeeze(idx, axis=None if axes is None else tuple(int(x) for x in axes))
        else:
            return None
    return idx


def gelu_source(view: OnnxView, v: str) -> str | None:
    """x if v is the exact-erf GELU 0.5 * x * (1 + Erf(x / sqrt 2)) in any factor order, else None."""
    factors, consts, todo = [], 1.0, [v]
    while todo:
        cur = todo.pop()
        p = view.producer(cur, "Mul")
        if view.is_const(cur):
            consts *= view.scalar(cur)
        elif p is not None and len(factors) + len(todo) < 4:
            todo += list(p.input)
        else:
            factors.append(cur)
    if len(factors) != 2 or not math.isclose(consts, 0.5, rel_tol=1e-6):
        return None
    for x, y in (factors, factors[::-1]):
        add = view.producer(y, "Add")
        if add is None:
            continue
        one = [i for i in add.input if view.is_const(i)]
        erf = next((view.producer(i, "Erf") for i in add.input if view.producer(i, "Erf")), None)
        if len(one) != 1 or erf is None or not math.isclose(view.scalar(one[0]), 1.0, rel_tol=1e-6):
            continue
        inner = view.producer(erf.input[0], ("Div", "Mul"))
        if inner is None or inner.input[0] != x or not view.is_const(inner.input[1]):
            continue
        c = view.scalar(inner.input[1])
        if math.isclose(c if inner.op_type == "Div" else 1.0 / c, math.sqrt(2.0), rel_tol=1e-5):
            return x
    return None


class AttentionMixin:
    """Builder methods for the attention regions (mixed into from_onnx._Builder, which provides g, v, acts...)."""

    parts: dict[str, list[str]]        # ONNX value (DQ output) or region name -> per-head IR tensors

    # ---- helpers ---------------------------------------------------------------------------------------
    def _chain(self, v: str) -> tuple[str, list[NodeProto]]:
        """(source value, layout nodes in forward order) of v back through layout ops and value Casts."""
        chain: list[NodeProto] = []
        while (p := self.v.producer(v, ("Transpose", "Reshape", "Unsqueeze", "Squeeze", *_VALUE_OPS))) is not None:
            chain.insert(0, p)
            v = p.input[0]
        return v, chain

    def is_act(self, v: str) -> bool:
        src = self._chain(v)[0]
        return src in self.acts or src in self.parts or self.v.activation_ql(src) is not None

    def _head_operand(self, v: str, kt: bool) -> tuple[str, int, int, int]:
        """(whole IR tensor (L, D), H, d_head, rank) of a per-head MatMul operand: a (1, H, L, dh) or (H, L, dh)
        view of an int8 (L, D) tensor, or (.., H, dh, L) if kt; the element order is proven on index arrays
        (the operand's recorded layout, then its layout nodes)."""
        src, chain = self._chain(v)
        x = self.acts[src] if src in self.acts else self.act(src)
        if len(self.shape(x)) != 2:
            raise self.v.err(f"'{v}': attention operand must be a per-head view of an int8 (L, D) tensor, "
                             f"'{x}' is {self.shape(x)}")
        n_tok, d = self.shape(x)
        idx = _apply_layout(self.v, chain, self.index_of(src, x))
        rank = 0 if idx is None else idx.ndim
        while idx is not None and idx.ndim > 3 and idx.shape[0] == 1:
            idx = idx[0]
        if idx is None or idx.ndim != 3:
            raise self.v.err(f"'{v}': attention operand must be a (1, H, L, d_head) view of an int8 (1, L, D) tensor")
        h, dh = idx.shape[0], idx.shape[1 if kt else 2]
        want = np.arange(n_tok)[None, :, None] * d + np.arange(h)[:, None, None] * dh + np.arange(dh)[None, None, :]
        if h * dh != d or not np.array_equal(idx, want.transpose(0, 2, 1) if kt else want):
            raise self.v.err(f"'{v}': attention operand is not the per-head split of '{x}' ({'Kᵀ' if kt else 'Q/V'})")
        return x, h, dh, rank

    def scaled_linear(self, p: NodeProto, s_out: float, out: str) -> bool:
        """Mul / Div by a positive constant scalar of a linear layer's output, seen through a feature Slice and
        layout nodes (q / sqrt(d_head) in QuantMultiheadAttention): the linear layer with the constant folded
        into its multiplier, its output laid out as the Mul's value. False if p is none."""
        consts = [i for i in p.input if self.v.is_const(i)]
        if p.op_type not in ("Mul", "Div") or len(consts) != 1 or self.v.const(consts[0]).size != 1 \
                or (p.op_type == "Div" and consts[0] != p.input[1]):
            return False
        x = next(i for i in p.input if i != consts[0])
        v0 = self.v.skip_layout(x)
        if not self.is_linear_value(v0):
            return False
        c = self.v.scalar(consts[0])
        c = 1.0 / c if p.op_type == "Div" else c
        if not c > 0:
            raise self.v.err(f"node '{p.name}' ({p.op_type}): the constant must be > 0, got {c}")
        self.linear(v0, s_out, out, factor=c)
        self.anchor_idx[out] = self.region_index(v0, out, self._nodes_between(v0, x))
        return True

    def head_parts(self, x: str, n_heads: int, transpose: bool = False) -> list[str]:
        """Per-head column slices of x (cached split node), optionally each transposed (d_head, L)."""
        key = f"{x}.heads{n_heads}"
        if key not in self.parts:
            n_tok, d = self.shape(x)
            outs = [f"{x}.h{i}" for i in range(n_heads)]
            for o in outs:
                self.act_out(o, (n_tok, d // n_heads), self.scale(x))
            self.g.add_node(Node(f"{x}.split", "split", [x], outs, {"axis": 1, "sizes": [d // n_heads] * n_heads}))
            self.parts[key] = outs
        if not transpose:
            return self.parts[key]
        if key + "T" not in self.parts:
            outs = []
            for p in self.parts[key]:
                self.act_out(f"{p}.T", self.shape(p)[::-1], self.scale(p))
                self.emit("transpose", [p], f"{p}.T", {"perm": [1, 0]})
                outs.append(f"{p}.T")
            self.parts[key + "T"] = outs
        return self.parts[key + "T"]

    # ---- regions ---------------------------------------------------------------------------------------
    def attention(self, v: str, s_out: float | None, out: str) -> bool:
        """Lower v if it is an attention region (scores, softmax, context); False if it is none."""
        v0, chain = self._chain(v)
        p = self.v.producer(v0)
        if p is None or s_out is None:
            return False
        if p.op_type == "Softmax":
            self._softmax(p, chain, s_out, out)
            return True
        alpha = 1.0
        if p.op_type in ("Mul", "Div") and any(self.v.is_const(i) for i in p.input):
            c = next(i for i in p.input if self.v.is_const(i))
            mm = self.v.producer(next(i for i in p.input if i != c), "MatMul")
            if mm is None or not all(self.is_act(i) for i in mm.input):
                return False
            alpha = self.v.scalar(c) if p.op_type == "Mul" else 1.0 / self.v.scalar(c)
            p = mm
        if p.op_type != "MatMul" or not all(self.is_act(i) for i in p.input):
            return False
        if self._chain(p.input[0])[0] in self.parts:
            if alpha != 1.0:
                raise self.v.err(f"node '{p.name}': P.V must not be scaled")
            self._context(p, chain, s_out, out)
        else:
            self._scores(p, alpha, chain, s_out, out)
        return True

    def _scores(self, mm: NodeProto, alpha: float, chain: list[NodeProto], s_out: float, out: str) -> None:
        if any(n.op_type not in _VALUE_OPS for n in chain):
            raise self.v.err(f"node '{mm.name}': Q.Kᵀ must be quantized as (1, H, L, L) without layout ops")
        q, h, dh, _ = self._head_operand(mm.input[0], kt=False)
        k, h2, dh2, _ = self._head_operand(mm.input[1], kt=True)
        if (h, dh) != (h2, dh2) or self.shape(q) != self.shape(k):
            raise self.v.err(f"node '{mm.name}': Q and K head layouts differ ({h}x{dh} vs {h2}x{dh2})")
        if alpha <= 0:
            raise self.v.err(f"node '{mm.name}': attention scale must be > 0, got {alpha}")
        m, sh = quantize_multiplier(self.scale(q) * self.scale(k) * alpha / s_out)
        outs = []
        for i, (qh, kh) in enumerate(zip(self.head_parts(q, h), self.head_parts(k, h, True), strict=True)):
            outs.append(f"{out}.h{i}")
            self.act_out(outs[-1], (self.shape(q)[0], self.shape(q)[0]), s_out)
            self.emit("matmul", [qh, kh], outs[-1], {"m": int(m), "sh": int(sh)})
        self.parts[out] = outs

    def _softmax(self, sm: NodeProto, chain: list[NodeProto], s_out: float, out: str) -> None:
        src, pre = self._chain(sm.input[0])
        if any(n.op_type not in _VALUE_OPS for n in chain + pre) or src not in self.parts:
            raise self.v.err(f"node '{sm.name}': Softmax must read per-head int8 scores, only through Casts; quantize "
                             "Q·Kᵀ first (brevitas: QuantMultiheadAttention(..., softmax_input_quant="
                             "Int8ActPerTensorFloat))")
        ins = self.parts[src]
        rank = len(self.static_shape(sm.input[0]) or (1, 1, 1, 1))
        if int(attrs(sm).get("axis", -1)) % rank != rank - 1:
            raise self.v.err(f"node '{sm.name}': Softmax must be over the last axis (keys)")
        ke, frac, m, sh = ops.softmax_params(self.scale(ins[0]), s_out)
        outs = []
        for i, x in enumerate(ins):
            outs.append(f"{out}.h{i}")
            self.act_out(outs[-1], self.shape(x), s_out)
            self.emit("softmax_rows", [x], outs[-1], {"ke": ke, "frac": frac, "m": m, "sh": sh})
        self.parts[out] = outs

    def _context(self, mm: NodeProto, chain: list[NodeProto], s_out: float, out: str) -> None:
        src, pre = self._chain(mm.input[0])
        if any(n.op_type not in _VALUE_OPS for n in pre):
            raise self.v.err(f"node '{mm.name}': P must be the per-head probabilities without layout ops")
        probs = self.parts[src]
        v, h, dh, rank = self._head_operand(mm.input[1], kt=False)
        n_tok, d = self.shape(v)
        if h != len(probs) or self.shape(probs[0]) != (n_tok, n_tok):
            raise self.v.err(f"node '{mm.name}': {len(probs)} probability heads for {h} value heads")
        idx = _apply_layout(self.v, chain, np.arange(h * n_tok * dh).reshape((1,) * (rank - 3) + (h, n_tok, dh)))
        want = (np.arange(h)[None, :, None] * n_tok * dh + np.arange(n_tok)[:, None, None] * dh
                + np.arange(dh)[None, None, :]).reshape(n_tok, d)
        if idx is None or idx.size != want.size or not np.array_equal(idx.reshape(n_tok, d), want):
            raise self.v.err(f"node '{mm.name}': P.V heads must be merged back to (1, L, H * d_head)")
        m, sh = quantize_multiplier(self.scale(probs[0]) * self.scale(v) / s_out)
        outs = []
        for i, (ph, vh) in enumerate(zip(probs, self.head_parts(v, h), strict=True)):
            outs.append(f"{out}.h{i}")
            self.act_out(outs[-1], (n_tok, dh), s_out)
            self.emit("matmul", [ph, vh], outs[-1], {"m": int(m), "sh": int(sh)})
        self.act_out(out, (n_tok, d), s_out)
        self.g.add_node(Node(out, "concat", outs, [out], {"axis": 1}))
