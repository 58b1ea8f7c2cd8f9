"""Static shape folding (ir/fold_shapes.py) on hand-built QCDQ graphs: Shape -> Gather -> Div -> Mul chains (as
brevitas' chunk of a packed projection exports them) and Shape -> Gather -> Unsqueeze -> Concat reshape targets
become constants, the model then lowers and agrees with onnxruntime; a dynamic shape is left for check_ops to
name; a Slice of a linear layer that cuts tokens instead of features is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from test_frontend_struct import _c, _check, _model, _weight  # tests/unit is on sys.path (no package)

from edgeflow.ir.fold_shapes import fold_shapes
from edgeflow.ir.from_onnx import FrontendError, load_onnx

pytestmark = pytest.mark.unit


def _chunk_model(tmp_path, in_shape, slice_axis=2, name="m"):
    """x (1, 4, 6) -> q -> MatMul (6 -> 12) -> the first third of its features (ends from Shape arithmetic) -> q ->
    Reshape to (1, -1) (target from Shape -> Gather -> Unsqueeze -> Concat) -> Gemm (16 -> 3)."""
    w1, i1 = _weight("w1", (6, 12), 1, 1)
    w2, i2 = _weight("w2", (3, 16), 0, 1)
    n = helper.make_node
    nodes = [w1, n("MatMul", ["xd", "w1"], ["h"], name="/fc1/MatMul"),
             n("Shape", ["h"], ["hs"], name="/Shape"), n("Gather", ["hs", "ilast"], ["f"], name="/Gather"),
             n("Div", ["f", "three"], ["f3"], name="/Div"), n("Mul", ["f3", "one"], ["end"], name="/Mul"),
             n("Slice", ["h", "zero", "end", "ax"], ["q"], name="/Slice"),
             n("QuantizeLinear", ["q", "sq", "z8"], ["qq"], name="/q1/QuantizeLinear"),
             n("DequantizeLinear", ["qq", "sq", "z8"], ["qd"], name="/q1/DequantizeLinear"),
             n("Shape", ["qd"], ["qs"], name="/Shape_1"), n("Gather", ["qs", "i0"], ["b"], name="/Gather_1"),
             n("Unsqueeze", ["b", "ax0"], ["bu"], name="/Unsqueeze"),
             n("Concat", ["bu", "minus1"], ["target"], name="/Concat", axis=0),
             n("Reshape", ["qd", "target"], ["flat"], name="/Reshape"),
             w2, n("Gemm", ["flat", "w2"], ["y"], name="/fc2/Gemm", transB=1)]
    inits = [*i1, *i2, _c("ilast", np.array([-1], np.int64)), _c("three", np.array(3, np.int64)),
             _c("one", np.array(1, np.int64)), _c("zero", np.array([0], np.int64)),
             _c("ax", np.array([slice_axis], np.int64)), _c("sq", np.float32(0.04)), _c("i0", np.array(0, np.int64)),
             _c("ax0", np.array([0], np.int64)), _c("minus1", np.array([-1], np.int64))]
    return _model(tmp_path, nodes, inits, in_shape, name=name)


def test_shape_chains_fold_to_constants_and_the_model_agrees_with_onnxruntime(tmp_path):
    import onnx

    path = _chunk_model(tmp_path, [1, 4, 6])
    proto = onnx.load(str(path))
    folded = fold_shapes(proto)
    onnx.checker.check_model(folded)
    consts = {n.name: onnx.numpy_helper.to_array(n.attribute[0].t) for n in folded.graph.node
              if n.op_type == "Constant"}
    assert consts["/Shape"].tolist() == [1, 4, 12] and consts["/Mul"].tolist() == [4]
    assert consts["/Concat"].tolist() == [1, -1]
    assert not {"Shape", "Gather", "Unsqueeze", "Concat", "Div"} & {n.op_type for n in folded.graph.node}
    assert [n.name for n in folded.graph.node] == [n.name for n in proto.graph.node]   # names and order kept
    g = _check(path, (1, 4, 6))
    lin = next(n for n in g.nodes if n.op == "linear")
    assert g.tensors[lin.inputs[1]].shape == (4, 6)           # only the 4 kept features are computed


def test_a_dynamic_shape_is_not_folded(tmp_path):
    import onnx

    proto = onnx.load(str(_chunk_model(tmp_path, [1, "T", 6])))
    folded = fold_shapes(proto)
    assert folded is proto and "Shape" in {n.op_type for n in folded.graph.node}
    assert next(n for n in folded.graph.node if n.name == "/Shape").op_type == "Shape"


def test_a_slice_of_a_linear_over_tokens_is_refused(tmp_path):
    path = _chunk_model(tmp_path, [1, 8, 6], slice_axis=1)
    with pytest.raises(FrontendError, match=r"node '/Slice' \(Slice\): a slice of a linear layer's output must cut "
                                            r"its features \(last axis\) only, got \(1, 8, 12\) -> \(1, 4, 12\)$"):
        load_onnx(path)


def test_a_slice_of_a_linear_that_flips_tokens_is_refused_not_dropped(tmp_path):
    """A flip keeps the shape (feature_rows' index-array check would see the reordered tokens too); it is refused
    in one line asking for a quantizer between the linear layer and the flip."""
    w1, i1 = _weight("w1", (6, 12), 1, 1)
    w2, i2 = _weight("w2", (3, 48), 0, 1)
    n = helper.make_node
    nodes = [w1, n("MatMul", ["xd", "w1"], ["h"], name="/fc1/MatMul"),
             n("Slice", ["h", "start", "end", "ax", "step"], ["r"], name="/Slice"),
             n("QuantizeLinear", ["r", "sq", "z8"], ["rq"], name="/q1/QuantizeLinear"),
             n("DequantizeLinear", ["rq", "sq", "z8"], ["rd"], name="/q1/DequantizeLinear"),
             n("Reshape", ["rd", "target"], ["flat"], name="/Reshape"),
             w2, n("Gemm", ["flat", "w2"], ["y"], name="/fc2/Gemm", transB=1)]
    inits = [*i1, *i2, _c("start", np.array([-1], np.int64)), _c("end", np.array([-(2**62)], np.int64)),
             _c("ax", np.array([1], np.int64)), _c("step", np.array([-1], np.int64)), _c("sq", np.float32(0.04)),
             _c("target", np.array([1, -1], np.int64))]
    path = _model(tmp_path, nodes, inits, [1, 4, 6])
    with pytest.raises(FrontendError, match=r"value 'h' \(output of '/fc1/MatMul', MatMul\) is a float tensor where "
                                            r"an int8 activation is needed; insert a QuantIdentity after /fc1$"):
        load_onnx(path)


def test_a_bad_initializer_next_to_a_shape_is_named_in_one_line(tmp_path):
    import onnx

    path = _chunk_model(tmp_path, [1, 4, 6])
    proto = onnx.load(str(path))
    bad = next(i for i in proto.graph.initializer if i.name == "three")
    bad.dims[:] = [1000]                                   # declares 1000 int64, holds one
    onnx.save(proto, str(path))
    with pytest.raises(FrontendError, match=r"initializer 'three' \(dims \[1000\]\): its data does not match its "
                                            r"shape") as info:
        load_onnx(path)
    assert "\n" not in str(info.value)


def test_index_arithmetic_on_constants_folds_and_float_constants_stay():
    """torch's MultiheadAttention checks head_dim with a Mod of two int64 Constants (no Shape involved): folded;
    a Mul of float constants (weights) is left to the patterns."""
    n = helper.make_node
    nodes = [n("Constant", [], ["e"], name="/mha/Constant_4", value=_c("e", np.array(16, np.int64))),
             n("Constant", [], ["h"], name="/mha/Constant_5", value=_c("h", np.array(2, np.int64))),
             n("Mod", ["e", "h"], ["r"], name="/mha/Mod"), n("Mul", ["wa", "wb"], ["w"], name="/Mul")]
    g = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("w", 1, [2])],
                          [_c("wa", np.ones(2, np.float32)), _c("wb", np.ones(2, np.float32))])
    folded = fold_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    ops = {x.name: x.op_type for x in folded.graph.node}
    assert ops["/mha/Mod"] == "Constant" and ops["/Mul"] == "Mul"
