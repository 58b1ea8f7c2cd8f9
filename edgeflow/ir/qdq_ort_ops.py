"""onnxruntime QDQ regions beyond the linear layers (ir/qdq_ort.py): LayerNormalization, Softmax, MatMul of two
activations, Add / Mul of two activations, Mul / Div by a constant, Concat and ReduceMean over tokens, each with
every zero point carried exactly (the zero-point ops of ir/ops_zp.py, a table, or a fold into a constant)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from onnx import NodeProto

from edgeflow.ir import ops, ops_cnn, ops_zp, qdq_ort
from edgeflow.ir.ops_norm import LN_B_FRAC, softmax_params
from edgeflow.ir.patterns import attrs
from edgeflow.quant.intmath import INT32_MAX, INT32_MIN, build_lut, quantize_multiplier

if TYPE_CHECKING:
    from edgeflow.ir.from_onnx import _Builder

#: ONNX ops only onnxruntime models reach the frontend with (added to the supported list for them).
ORT_OPS = ("LayerNormalization",)


def lower_region(b: _Builder, v0: str, s_out: float | None, out: str) -> bool:
    """Lower the float region ending at v0 when it is one of this module's; False to let the other patterns try
    (a symmetric model's Add / Mul / Concat / ReduceMean keep their own lowerings)."""
    p = b.v.producer(v0)
    if s_out is None or p is None:
        return False
    op, acts = p.op_type, [_is_act(b, i) for i in p.input]
    if op == "LayerNormalization":
        at = attrs(p)
        if int(at.get("axis", -1)) not in (-1, len(b.onnx_shape(p.input[0], b.act(p.input[0]))) - 1):
            raise b.v.err(f"node '{p.name}' (LayerNormalization): must normalize the last axis, got axis {at['axis']}")
        beta = _float_const(b, p.input[2]) if len(p.input) > 2 and p.input[2] else np.zeros(1)
        return _layernorm(b, p.name, p.input[0], _float_const(b, p.input[1]), beta, float(at.get("epsilon", 1e-5)),
                          s_out, out)
    if op == "Softmax":
        return _softmax(b, p, s_out, out)
    if op == "MatMul" and all(acts):
        return _matmul(b, p, s_out, out)
    if op == "Split" and acts[0]:
        return _split(b, p, v0, s_out, out)
    if op == "Add" and len(acts) == 2 and sum(acts) == 1 and _is_float_const(b, p.input[acts.index(False)]):
        return _bias_add(b, p, acts.index(True), s_out, out)
    if op == "ReduceMean":
        return _reduce_mean(b, p, s_out, out)
    if not b.zp_out and not any(_zp_of(b, i) for i, a in zip(p.input, acts, strict=True) if a):
        return False
    if op in ("Add", "Mul") and len(acts) == 2 and all(acts):
        return (_add if op == "Add" else _mul)(b, p, s_out, out)
    if op in ("Mul", "Div") and acts[0] and len(p.input) == 2 and b.v.is_const(p.input[1]):
        return _scaled(b, p, s_out, out)
    if op == "Mul" and acts[1] and b.v.is_const(p.input[0]):
        return _scaled(b, p, s_out, out)
    if op == "Concat" and all(acts):
        return _concat(b, p, s_out, out)
    return False


def _is_act(b: _Builder, v: str) -> bool:
    src = b.v.skip_layout(v)
    return bool(v) and not b.v.is_const(src) and (src in b.acts or b.v.activation_ql(src) is not None)


def _zp_of(b: _Builder, v: str) -> int:
    """Zero point of the activation behind v (its quantizer's), without lowering anything."""
    src = b.v.skip_layout(v)
    if src in b.acts:
        return b.zp(b.acts[src])
    ql = b.v.activation_ql(src)
    return qdq_ort.zero_point(b.v, ql) if ql is not None else 0


def _done(b: _Builder, out: str) -> None:
    b.zp_done.update((f"{out}:in", f"{out}:out"))


def _is_float_const(b: _Builder, v: str) -> bool:
    dq = b.v.producer(v, "DequantizeLinear")
    return b.v.is_const(v) or (dq is not None and all(b.v.is_const(i) for i in dq.input if i))


def _float_const(b: _Builder, v: str) -> np.ndarray:
    """A float constant, or the dequantized value of DequantizeLinear(constant codes) (onnxruntime's weights)."""
    if b.v.is_const(v):
        return np.asarray(b.v.const(v), np.float64)
    dq = b.v.producer(v, "DequantizeLinear")
    if dq is None or not all(b.v.is_const(i) for i in dq.input if i):
        raise b.v.err(f"tensor '{v}' must be a constant (or DequantizeLinear of constant codes)")
    codes = np.asarray(b.v.const(dq.input[0]), np.float64)
    scale = np.asarray(b.v.const(dq.input[1]), np.float64)
    zp = np.asarray(b.v.const(dq.input[2]), np.float64) if len(dq.input) > 2 and dq.input[2] else 0.0
    if scale.size > 1:
        shape = [1] * codes.ndim
        shape[int(attrs(dq).get("axis", 1))] = -1
        scale, zp = scale.reshape(shape), np.reshape(zp, shape) if np.size(zp) > 1 else zp
    return (codes - zp) * scale


def _layernorm(b: _Builder, name: str, xv: str, gamma: np.ndarray, beta: np.ndarray, eps: float, s_out: float,
               out: str) -> bool:
    """LayerNorm over the last axis: the input's zero point cancels (n x_i - sum x), the output's joins the folded
    beta (Q16 output codes: + zp 2^16 is + zp after the rounding)."""
    x = b.view2d(b.act(xv))
    n = b.shape(x)[1]
    gamma, beta = (np.broadcast_to(np.reshape(a, -1), (n,)) for a in (gamma, beta))
    c = ops.layernorm_params(gamma, beta, eps, b.scale(x), s_out, n)
    beta_q = c.b.astype(np.int64) + (int(b.zp_out) << LN_B_FRAC)
    if beta_q.min() < INT32_MIN or beta_q.max() > INT32_MAX:
        raise b.v.err(f"node '{name}' (LayerNorm): beta with the output zero point does not fit int32")
    b.act_out(out, b.shape(x), s_out)
    b.emit("layernorm", [x, b.const(out, "g", c.g, "int32"), b.const(out, "beta", beta_q, "int32")], out,
           {"eps_q": int(c.eps_q), "g_frac": int(c.g_frac)})
    _done(b, out)
    return True


def _softmax(b: _Builder, p: NodeProto, s_out: float, out: str) -> bool:
    """Softmax over the last axis; the input's zero point cancels in max - x, the output's is added (softmax_zp)."""
    x = b.view2d(b.act(p.input[0]))
    if int(attrs(p).get("axis", -1)) not in (-1, len(b.onnx_shape(p.input[0], x)) - 1):
        raise b.v.err(f"node '{p.name}' (Softmax): must be over the last axis")
    ke, frac, m, sh = softmax_params(b.scale(x), s_out)
    b.act_out(out, b.shape(x), s_out)
    a = {"ke": ke, "frac": frac, "m": m, "sh": sh}
    b.emit("softmax_zp", [x], out, {**a, "zy": int(b.zp_out)}) if b.zp_out else b.emit("softmax_rows", [x], out, a)
    _done(b, out)
    return True


def _matmul(b: _Builder, p: NodeProto, s_out: float, out: str) -> bool:
    """MatMul of two activations (q.kᵀ, p.v), batch 1: (a - za)(b - zb) in int32 (matmul_zp); over H heads
    ((1, H, M, K) @ (1, H, K, N)) one node per head on strided slices, the heads concatenated in the value's order."""
    x, y = b.act(p.input[0]), b.act(p.input[1])
    sa, sb = b.onnx_shape(p.input[0], x), b.onnx_shape(p.input[1], y)
    if len(sa) < 2 or sa[:-2] != sb[:-2] or (len(sa) > 2 and sa[0] != 1) or sa[-1] != sb[-2]:
        raise b.v.err(f"node '{p.name}' (MatMul): activations of shapes {list(sa)} and {list(sb)} do not multiply "
                      "as batch 1 with the same head axes")
    (mm, k), n, heads = sa[-2:], sb[-1], int(np.prod(sa[1:-2])) if len(sa) > 3 else 1
    m, sh = quantize_multiplier(b.scale(x) * b.scale(y) / s_out)
    zps = {"za": b.zp(x), "zb": b.zp(y), "zy": int(b.zp_out)}
    outs = []
    for h in range(heads):
        xh, yh = (x, y) if heads == 1 else (_slice(b, x, h * mm * k, [mm, k]), _slice(b, y, h * k * n, [k, n]))
        xh, yh = b.view(xh, (mm, k), exact=True), b.view(yh, (k, n), exact=True)
        outs.append(out if heads == 1 else f"{out}.h{h}")
        b.act_out(outs[-1], (mm, n), s_out)
        b.g.tensors[outs[-1]].zero_point = b.zp_out
        if any(zps.values()):
            b.emit("matmul_zp", [xh, yh], outs[-1], {"m": int(m), "sh": int(sh), **zps})
        else:
            b.emit("matmul", [xh, yh], outs[-1], {"m": int(m), "sh": int(sh)})
        _done(b, outs[-1])
    if heads > 1:
        b.act_out(f"{out}.heads", (heads * mm, n), s_out)
        b.g.tensors[f"{out}.heads"].zero_point = b.zp_out
        b.emit("concat", outs, f"{out}.heads", {"axis": 0})
        _done(b, f"{out}.heads")
        b.act_out(out, (*sa[1:-2], mm, n), s_out)
        b.emit("reshape", [f"{out}.heads"], out, {"shape": [*sa[1:-2], mm, n]})
    return True


def _slice(b: _Builder, x: str, offset: int, shape: list[int]) -> str:
    """Rows of `shape` read from x's elements at offset (C order): one head of a (H, M, K) value."""
    out = f"{x}.at{offset}"
    if out not in b.g.tensors:
        strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
        b.act_out(out, tuple(shape), b.scale(x))
        b.emit("slice", [x], out, {"offset": int(offset), "shape": list(shape), "strides": strides})
    return out


def _split(b: _Builder, p: NodeProto, v0: str, s_out: float, out: str) -> bool:
    """One output of a Split of an activation along its last axis (packed q / k / v): its columns as a strided
    slice, requantized through a table when its quantizer's scale or zero point differ."""
    x = b.view2d(b.act(p.input[0]))
    rows, width = b.shape(x)
    at = attrs(p)
    if int(at.get("axis", 0)) not in (-1, len(b.onnx_shape(p.input[0], x)) - 1):
        raise b.v.err(f"node '{p.name}' (Split): only the last axis of an activation, got axis {at.get('axis', 0)}")
    sizes = ([int(v) for v in b.v.const(p.input[1]).reshape(-1)] if len(p.input) > 1 and p.input[1]
             else [int(v) for v in at.get("split", [])] or [width // len(p.output)] * len(p.output))
    i = list(p.output).index(v0)
    part = f"{out}.cols" if not np.isclose(b.scale(x), s_out, rtol=1e-6, atol=0) or b.zp(x) != b.zp_out else out
    b.act_out(part, (rows, sizes[i]), b.scale(x))
    b.emit("slice", [x], part, {"offset": int(sum(sizes[:i])), "shape": [rows, sizes[i]], "strides": [width, 1]})
    if part != out:
        table(b, part, lambda t: t, s_out, out, "requant")
    return True


def _bias_add(b: _Builder, p: NodeProto, xi: int, s_out: float, out: str) -> bool:
    """Activation + a constant row (onnxruntime without quant_pre_process: MatMul, its quantizer, then the bias Add
    with the bias quantized as an activation): a linear layer of weight 64 I, the bias in its int32 accumulator
    (steps of s_x / 64) and the input zero point folded in, then requantized to the output's scale and zero point."""
    x = b.view2d(b.act(p.input[xi]))
    rows, n = b.shape(x)
    c = _float_const(b, p.input[1 - xi]).reshape(-1)
    if c.size not in (1, n):
        raise b.v.err(f"node '{p.name}' (Add): the constant must be one value per column ({n}), got {c.size}")
    s_w = np.full(n, 1.0 / 64)
    w = (64 * np.eye(n)).astype(np.int8)
    bias = np.floor(np.broadcast_to(c, (n,)) / (b.scale(x) * s_w) + 0.5)
    if bias.min() < INT32_MIN or bias.max() > INT32_MAX:
        raise b.v.err(f"node '{p.name}' (Add): the constant does not fit the int32 accumulator at s_x / 64")
    bias = qdq_ort.fold_input_zp(b.v, p.name, bias.astype(np.int32), w, b.zp(x))
    m, sh = ops.requant_params(b.scale(x), s_w, s_out)
    ins = [x, b.const(out, "w", w, "int8", 8, s_w), b.const(out, "b", bias, "int32")]
    b.zp_done.update((f"{out}:in", f"{out}.acc:in"))
    if b.zp_out:
        qdq_ort.requant_output(b, ins, (rows, n), b.scale(x) * s_w, s_out, m, sh, out)
    else:
        b.act_out(out, (rows, n), s_out)
        b.emit("linear", ins + [b.const(out, "m", m, "int32"), b.const(out, "sh", sh, "int32")], out)
    return True


def _pair(b: _Builder, p: NodeProto) -> tuple[str, str]:
    x, y = b.act(p.input[0]), b.act(p.input[1])
    return x, b.view(y, b.shape(x), exact=True)


def _add(b: _Builder, p: NodeProto, s_out: float, out: str) -> bool:
    x, y = _pair(b, p)
    mm, s, c = ops_zp.add_zp_params([b.scale(x), b.scale(y)], [b.zp(x), b.zp(y)], s_out, b.zp_out)
    b.act_out(out, b.shape(x), s_out)
    b.emit("add_zp", [x, y], out, {"M": mm, "S": s, "C": c})
    _done(b, out)
    return True


def _mul(b: _Builder, p: NodeProto, s_out: float, out: str) -> bool:
    x, y = _pair(b, p)
    m, sh = quantize_multiplier(b.scale(x) * b.scale(y) / s_out)
    b.act_out(out, b.shape(x), s_out)
    b.emit("mul_zp", [x, y], out, {"m": int(m), "sh": int(sh), "za": b.zp(x), "zb": b.zp(y), "zy": int(b.zp_out)})
    _done(b, out)
    return True


def table(b: _Builder, x: str, fn: object, s_out: float, out: str, name: str) -> str:
    """out = fn(x) as a 256-entry table from x's (scale, zero point) to (s_out, b.zp_out)."""
    table = build_lut(fn, b.scale(x), b.zp(x), s_out, b.zp_out)  # type: ignore[arg-type]
    b.act_out(out, b.shape(x), s_out)
    b.emit("lut", [x, b.const(out, "table", table, "int8")], out, {"fn": name})
    b.g.tensors[out].zero_point = b.zp_out
    _done(b, out)
    return out


def _scaled(b: _Builder, p: NodeProto, s_out: float, out: str) -> bool:
    """An activation times / divided by a constant scalar (1 / sqrt(d)): a table (any sign, both zero points)."""
    xi, ci = (0, 1) if b.v.is_const(p.input[1]) else (1, 0)
    c = b.v.const(p.input[ci])
    if c.size != 1 or (p.op_type == "Div" and float(c.reshape(-1)[0]) == 0.0):
        raise b.v.err(f"node '{p.name}' ({p.op_type}): only a constant scalar (non-zero divisor) is supported")
    k = float(c.reshape(-1)[0])
    table(b, b.act(p.input[xi]), (lambda t: t / k) if p.op_type == "Div" else (lambda t: t * k), s_out, out,
           p.op_type.lower())
    return True


def _concat(b: _Builder, p: NodeProto, s_out: float, out: str) -> bool:
    """Concat: each input whose scale or zero point is not the output's through an identity table, then copied."""
    parts = []
    for i, v in enumerate(p.input):
        x = b.act(v)
        x = b.view(x, tuple(b.onnx_shape(v, x)[1:]) or (1,), exact=True)
        if not np.isclose(b.scale(x), s_out, rtol=1e-6, atol=0) or b.zp(x) != b.zp_out:
            x = table(b, x, lambda t: t, s_out, f"{out}.in{i}", "requant")
        parts.append(x)
    rank = len(b.shape(parts[0])) + 1
    axis = int(attrs(p).get("axis", 0)) % rank
    if axis == 0:
        raise b.v.err(f"node '{p.name}' (Concat): concatenates along the batch axis (batch must be 1)")
    shape = list(b.shape(parts[0]))
    shape[axis - 1] = sum(b.shape(x)[axis - 1] for x in parts)
    b.act_out(out, tuple(shape), s_out)
    b.emit("concat", parts, out, {"axis": axis - 1})
    _done(b, out)
    return True


def _reduce_mean(b: _Builder, p: NodeProto, s_out: float, out: str) -> bool:
    """ReduceMean over tokens (axes [1], keepdims 0) of (1, T, C): transpose to (C, T), an average pool of T taps
    with both zero points (pool op), viewed as (1, C)."""
    at = attrs(p)
    axes = list(at.get("axes", [])) or (list(b.v.const(p.input[1]).reshape(-1)) if len(p.input) > 1 else [])
    if [int(a) for a in axes] != [1] or at.get("keepdims", 1) != 0:
        hint = (" (a LayerNorm decomposed by an export with opset < 17, which onnxruntime quantizes piece by piece: "
                "export with opset_version >= 17 for one LayerNormalization)" if at.get("keepdims", 1) else "")
        raise b.v.err(f"node '{p.name}': ReduceMean must average tokens (axes [1], keepdims 0){hint}")
    x = b.view2d(b.act(p.input[0]))
    t, c = b.shape(x)
    if not b.zp(x) and not b.zp_out:
        m, sh = ops.meanpool_params(b.scale(x), s_out, t)
        b.act_out(out, (1, c), s_out)
        b.emit("meanpool_tokens", [x], out, {"m": m, "sh": sh})
        return True
    xt = f"{out}.tokens_last"
    b.act_out(xt, (c, t), b.scale(x))
    b.emit("transpose", [x], xt, {"perm": [1, 0]})
    m, sh = ops_cnn.pool_params("avg", b.scale(x), s_out, t)
    pooled = f"{out}.pool"
    b.act_out(pooled, (c, 1), s_out)
    a = {"mode": "avg", "kernel": [t], "strides": [1], "pads": [0, 0], "count_include_pad": 0}
    zps = {k: int(v) for k, v in (("zp_in", b.zp(x)), ("zp_out", b.zp_out)) if v}
    b.emit("pool", [xt, b.const(pooled, "m", m, "int32"), b.const(pooled, "sh", sh, "int32")], pooled, {**a, **zps})
    b.g.tensors[pooled].zero_point = b.zp_out
    _done(b, pooled)
    b.act_out(out, (1, c), s_out)
    b.emit("reshape", [pooled], out, {"shape": [1, c]})
    return True
