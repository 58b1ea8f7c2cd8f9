"""Node names a user can map back to the PyTorch module: `blocks.0.fwd.in_proj.0`, not the next quantizer's name."""

from __future__ import annotations

from edgeflow.ir.graph import Graph
from edgeflow.ir.patterns import OnnxView

#: Ops looked through on the way back from a quantizer to the module that computed its input.
_LAYOUT = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Cast", "Flatten"})
#: Ops that are the body of an nn.Module (Linear, Conv): their ONNX node name carries the module path.
_MODULE_OPS = frozenset({"MatMul", "Gemm", "Conv"})
_MAX_STEPS = 12


def _is_weight(view: OnnxView, value: str, steps: int = _MAX_STEPS) -> bool:
    """True when `value` is a constant seen through its QCDQ chain (Quantize/Clip/Dequantize) and layout ops."""
    while steps > 0:
        if value in view.init or view.is_const(value):
            return True
        n = view.prod.get(value)
        if n is None or n.op_type not in _LAYOUT | {"QuantizeLinear", "DequantizeLinear", "Clip"}:
            return False
        value, steps = n.input[0], steps - 1
    return False


def module_of(view: OnnxView, value: str, steps: int = _MAX_STEPS) -> str | None:
    """Module path of the Linear/Conv whose result reaches `value` through layout ops, a bias or constant Add and
    Split (part index appended), e.g. '/blocks.0/fwd/in_proj/MatMul' -> 'blocks.0.fwd.in_proj'; None otherwise.

    >>> import onnx
    >>> from onnx import helper as h
    >>> import numpy as np
    >>> w = onnx.numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    >>> g = h.make_graph([h.make_node("MatMul", ["x", "w"], ["m"], name="/enc/in_proj/MatMul"),
    ...                   h.make_node("Split", ["m"], ["a", "b"], name="/enc/Split", num_outputs=2)],
    ...                  "g", [h.make_tensor_value_info("x", 1, [2, 4])], [h.make_tensor_value_info("b", 1, [2, 2])],
    ...                  [w])
    >>> module_of(OnnxView(h.make_model(g), "m.onnx"), "b")
    'enc.in_proj.1'
    """
    part = ""
    while steps > 0 and value in view.prod:
        steps -= 1
        n = view.prod[value]
        if n.op_type in _LAYOUT:
            value = n.input[0]
        elif n.op_type == "Split":
            part = f".{list(n.output).index(value)}{part}"
            value = n.input[0]
        elif n.op_type == "Add":
            found = [m for i in n.input if i and not view.is_const(i) and (m := module_of(view, i, steps))]
            return found[0] + part if len(found) == 1 else None
        elif n.op_type in _MODULE_OPS and any(i and _is_weight(view, i) for i in n.input[1:]):
            path = [s for s in n.name.split("/") if s][:-1]
            return ".".join(path) + part if path else None
        else:
            return None
    return None


def name_nodes_by_module(graph: Graph, view: OnnxView, onnx_value: dict[str, str]) -> None:
    """Rename (in place) each linear/conv node after the module that computes it; tensor names stay. A name
    that would repeat another node's is left as it was."""
    taken = {n.name for n in graph.nodes}
    for n in graph.nodes:
        ql_out = onnx_value.get(n.outputs[0])
        if ql_out is None and n.outputs[0] in graph.outputs:
            start = next((o.name for o in view.graph.output), None)
        elif ql_out is not None and ql_out in view.prod:
            start = view.prod[ql_out].input[0]
        else:
            continue
        name = module_of(view, start) if start else None
        if name and name != n.name and name not in taken:
            taken.discard(n.name)
            taken.add(name)
            n.name = name
