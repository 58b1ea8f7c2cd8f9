"""Static shape folding before pattern matching: `Shape` of a value whose shape is static, and the integer
arithmetic on it (Gather, Unsqueeze, Concat, ConstantOfShape, Add, Div, Mul, ...), become Constant nodes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import NodeProto, helper, numpy_helper

#: Ops that may compute on a shape (folded when every input is a constant and one comes from a Shape, or all are
#: int64 / int32 / bool: index arithmetic, e.g. torch's head_dim checks). A QuantizeLinear / DequantizeLinear folds
#: only on a shape-derived value (onnxruntime quantizes torch's sqrt(head_dim) scale); weights never.
SHAPE_ARITH = ("Gather", "Unsqueeze", "Squeeze", "Concat", "ConstantOfShape", "Cast", "Identity", "Reshape", "Slice",
               "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Floor", "Ceil", "Min", "Max", "Equal", "Less", "Greater",
               "Where", "Expand", "Range", "ReduceProd", "Sqrt", "Mod", "Not", "And", "Or", "QuantizeLinear",
               "DequantizeLinear")
#: Element types of index arithmetic (a computation on constants of these types only is a shape computation).
_INDEX = (np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.bool_))
#: Largest tensor a folded shape computation may produce (shapes are tiny; a bigger result is left alone).
MAX_FOLDED = 1 << 16


def _static_shapes(proto: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    try:
        g = onnx.shape_inference.infer_shapes(proto).graph
    except Exception:  # a model shape inference cannot follow: nothing is folded, check_ops names the Shape
        return {}
    return {vi.name: tuple(int(d.dim_value) for d in vi.type.tensor_type.shape.dim)
            for vi in list(g.value_info) + list(g.input) + list(g.output)
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")
            and all(d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim)}


def _small(t: onnx.TensorProto) -> np.ndarray | None:
    """The values of a constant small enough to be a shape computation's operand (None: big or unreadable)."""
    if int(np.prod([max(int(d), 0) for d in t.dims])) > MAX_FOLDED:
        return None
    try:
        return numpy_helper.to_array(t)
    except Exception:  # data that does not match its dims: OnnxView names it in one line
        return None


def _shape_value(n: NodeProto, shapes: dict[str, tuple[int, ...]]) -> np.ndarray | None:
    shp = shapes.get(n.input[0])
    if shp is None:
        return None
    a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
    return np.asarray(shp, np.int64)[slice(a.get("start", 0), a.get("end"))]


def _evaluate(n: NodeProto, known: dict[str, np.ndarray], opset: int) -> list[np.ndarray] | None:
    """Outputs of node n on constant inputs (onnx's reference implementation), None if it cannot run."""
    from onnx.reference import ReferenceEvaluator

    ins = [i for i in n.input if i]
    graph = helper.make_graph([n], "fold", [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(
        known[i].dtype), known[i].shape) for i in dict.fromkeys(ins)],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in n.output if o])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        return list(ReferenceEvaluator(model).run(None, {i: known[i] for i in ins}))
    except Exception:  # an op the reference cannot run on these inputs: left for check_ops to name
        return None


def fold_shapes(proto: onnx.ModelProto, rounds: int = 8) -> onnx.ModelProto:
    """A copy of proto in which every shape computation on static shapes is a Constant (same node and value
    names, same order); proto itself when there is none. Activations and weights are never folded here. Folding
    repeats (at most `rounds` times) while it makes shapes static that shape inference could not see before (a
    Slice whose ends were a shape computation)."""
    for _ in range(rounds):
        new = _fold_once(proto)
        if new is proto:
            break
        proto = new
    return proto


def _fold_once(proto: onnx.ModelProto) -> onnx.ModelProto:
    shapes: dict[str, tuple[int, ...]] | None = None   # shape inference only when a Shape / Size is met
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
    known = {i.name: a for i in proto.graph.initializer if (a := _small(i)) is not None}
    derived: set[str] = set()
    folded: dict[int, list[np.ndarray]] = {}
    for k, n in enumerate(proto.graph.node):
        if n.op_type == "Constant":
            t = next((a.t for a in n.attribute if a.name == "value"), None)
            if t is not None and n.output and (a := _small(t)) is not None:
                known[n.output[0]] = a
            continue
        out: list[np.ndarray] | None = None
        if not n.input or not n.output:   # malformed: left for the frontend's checks to name
            continue
        if n.op_type in ("Shape", "Size") and shapes is None:
            shapes = _static_shapes(proto)
        if n.op_type == "Shape":
            v = _shape_value(n, shapes or {})
            out = None if v is None else [v]
        elif n.op_type == "Size" and n.input[0] in (shapes or {}):
            out = [np.asarray(int(np.prod((shapes or {})[n.input[0]])), np.int64)]
        elif n.op_type in SHAPE_ARITH and all(i in known for i in n.input if i) \
                and (any(i in derived for i in n.input) or all(known[i].dtype in _INDEX for i in n.input if i)):
            out = _evaluate(n, known, opset)
        if out is None or any(np.asarray(o).size > MAX_FOLDED for o in out):
            continue
        folded[k] = [np.asarray(o) for o in out]
        for o, val in zip(n.output, folded[k], strict=False):
            known[o] = val
            derived.add(o)
    if not folded:
        return proto
    new = onnx.ModelProto()
    new.CopyFrom(proto)
    nodes = []
    for k, n in enumerate(proto.graph.node):
        if k not in folded:
            nodes.append(n)
            continue
        for o, val in zip(n.output, folded[k], strict=False):
            nodes.append(helper.make_node("Constant", [], [o], name=n.name if len(n.output) == 1 else f"{n.name}:{o}",
                                          value=numpy_helper.from_array(val, o)))
    del new.graph.node[:]
    new.graph.node.extend(nodes)
    return new
