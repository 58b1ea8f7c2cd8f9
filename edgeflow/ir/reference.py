"""Numpy reference interpreter of the integer IR: runs nodes in order through ops.OPS (defines correct output)."""

from __future__ import annotations

import inspect

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeflow.ir.graph import Graph, IRError
from edgeflow.ir.ops import OPS, LayerNormConsts
from edgeflow.quant.intscan import ScanConsts

# Calling convention of a node: its inputs bind, in order, to the op's parameters that are not given as
# attributes; attributes are keyword arguments. Three ops need an adapter:
#   add_requant  inputs = the summands (variadic), attrs M, S
#   scan         inputs = u, delta, B, C, ka, m_in, sh_in, m_y, m_D, sh_D, sh_y; attrs ka_frac, direction
#   layernorm    inputs = x, g, b; attrs eps_q, g_frac
# Structural ops: identity, reshape (attr shape), transpose (attr perm), flip (attr axis), split (attrs axis,
# sizes), concat (attr axis). Each result is stored in its output tensor's declared shape (same element order,
# e.g. meanpool_tokens' (C,) as (1, C)); a size or dtype mismatch raises IRError.


def _scan(inputs: list[np.ndarray], a: dict) -> np.ndarray:
    u, dl, b, c, ka, m_in, sh_in, m_y, m_d, sh_d, sh_y = inputs
    k = ScanConsts(ka, int(a["ka_frac"]), m_in, sh_in, m_y, m_d, sh_d, sh_y)
    return OPS["scan"](u, dl, b, c, k, int(a.get("direction", 0)))


def _layernorm(inputs: list[np.ndarray], a: dict) -> np.ndarray:
    x, g, b = inputs
    return OPS["layernorm"](x, LayerNormConsts(x.shape[1], int(a["eps_q"]), g, b, int(a["g_frac"])))


def _structural(op: str, inputs: list[np.ndarray], a: dict) -> list[np.ndarray]:
    x = inputs[0]
    if op == "identity":
        return [x]
    if op == "reshape":
        return [x.reshape(tuple(a["shape"]))]
    if op == "transpose":
        return [np.ascontiguousarray(x.transpose(tuple(a["perm"])))]
    if op == "flip":
        return [np.ascontiguousarray(np.flip(x, axis=int(a.get("axis", 0))))]
    if op == "concat":
        return [np.concatenate(inputs, axis=int(a.get("axis", -1)))]
    if op == "split":
        cuts = np.cumsum(a["sizes"])[:-1]
        return list(np.split(x, cuts, axis=int(a.get("axis", -1))))
    raise IRError(f"reference: no structural op '{op}'")


_ADAPTERS = {"scan": _scan, "layernorm": _layernorm,
             "add_requant": lambda ins, a: OPS["add_requant"](ins, a["M"], int(a["S"]))}


def _call(op: str, inputs: list[np.ndarray], a: dict) -> list[np.ndarray]:
    if op in _ADAPTERS:
        return [_ADAPTERS[op](inputs, a)]
    if op not in OPS:
        return _structural(op, inputs, a)
    fn = OPS[op]
    sig = list(inspect.signature(fn).parameters)
    params = [p for p in sig if p not in a]
    if len(inputs) > len(params):
        raise IRError(f"reference: op '{op}' takes {len(params)} tensor inputs, got {len(inputs)}")
    kw = {k: v for k, v in a.items() if k in sig}
    return [fn(**dict(zip(params, inputs, strict=False)), **kw)]


def run(graph: Graph, x_int8: ArrayLike) -> dict[str, NDArray[np.integer]]:
    """Interpret the graph on one int8 input (the graph input's shape); returns every computed tensor by name."""
    env: dict[str, np.ndarray] = {k: t.data for k, t in graph.tensors.items() if t.data is not None}
    x = np.asarray(x_int8)
    inp = graph.tensors[graph.inputs[0]]
    if x.shape != inp.shape or not np.issubdtype(x.dtype, np.integer):
        raise IRError(f"reference: input must be integer {inp.shape}, got {x.dtype} {x.shape}")
    env[inp.name] = x.astype(np.int8)
    out: dict[str, np.ndarray] = {inp.name: env[inp.name]}
    for n in graph.nodes:
        results = _call(n.op, [env[i] for i in n.inputs], n.attrs)
        for name, r in zip(n.outputs, results, strict=True):
            t = graph.tensors[name]
            r = np.asarray(r)
            if r.size != int(np.prod(t.shape)):
                raise IRError(f"reference: node '{n.name}' ({n.op}) made {r.shape}, tensor '{name}' is {t.shape}")
            env[name] = out[name] = r.reshape(t.shape).astype(t.dtype)
    return out


def logits(graph: Graph, x_float_windows: ArrayLike) -> NDArray[np.float64]:
    """Float logits (N, classes) of float windows (N, ...): quantize input, run, acc * graph.meta["output_scale"]."""
    from edgeflow.ir.from_onnx import quantize_input

    xs = np.asarray(x_float_windows, dtype=np.float32)
    scale = np.asarray(graph.meta["output_scale"], dtype=np.float64)
    rows = []
    for x in xs:
        acc = run(graph, quantize_input(x, graph))[graph.outputs[0]]
        rows.append(acc.astype(np.float64).reshape(-1) * scale)
    return np.stack(rows)
