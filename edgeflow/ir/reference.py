"""Numpy reference interpreter of the integer IR: runs nodes in order through the op registry's references."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeflow.ir.graph import Graph, IRError
from edgeflow.ir.opdefs import OPDEFS

# Each node calls OPDEFS[op].reference(inputs in node order, attrs) (edgeflow/ir/opdefs/). Each result is stored
# in its output tensor's declared shape (same element order); a size or dtype mismatch raises IRError.


def _call(op: str, inputs: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    """The outputs of one node of `op` (the registry's numpy reference)."""
    d = OPDEFS.get(op)
    if d is None:
        raise IRError(f"reference: unknown op '{op}'")
    return d.reference(inputs, attrs)


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
    rows, shape = [], graph.tensors[graph.inputs[0]].shape
    for x in xs:
        acc = run(graph, quantize_input(x, graph).reshape(shape))[graph.outputs[0]]
        rows.append(acc.astype(np.float64).reshape(-1) * scale)
    return np.stack(rows)
