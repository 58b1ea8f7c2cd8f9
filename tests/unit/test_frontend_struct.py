"""Frontend of layout ops and fully connected layers on hand-built QCDQ graphs: Gemm in every transpose with alpha
and beta, MatMul with a weight with or without a Transpose, per-channel scales on either axis, bias or none
(dequantised logits vs onnxruntime); Slice / Gather views proven or refused; every unsupported op listed."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeflow.ir.from_onnx import FrontendError, load_onnx
from edgeflow.ir.patterns_layout import affine_form, as_permutation
from edgeflow.ir.patterns_struct import HINTS
from edgeflow.ir.reference import logits

pytestmark = pytest.mark.unit
RNG = np.random.default_rng(5)


def _c(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def _model(tmp_path, nodes, inits, in_shape, out="y", name="m"):
    """x -> QuantizeLinear/DequantizeLinear (scale 0.05) -> nodes -> out (float)."""
    q = [helper.make_node("QuantizeLinear", ["x", "sx", "z8"], ["xq"], name="/q0/QuantizeLinear"),
         helper.make_node("DequantizeLinear", ["xq", "sx", "z8"], ["xd"], name="/q0/DequantizeLinear")]
    inits = [_c("sx", np.float32(0.05)), _c("z8", np.int8(0)), *inits]
    g = helper.make_graph(q + nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, [])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(m, str(path))
    return path


def _weight(name, shape, axis, n_scales):
    codes = RNG.integers(-127, 128, shape).astype(np.int8)
    scale = (0.01 + 0.02 * RNG.random(n_scales)).astype(np.float32)
    zp = np.zeros(n_scales, np.int8)
    node = helper.make_node("DequantizeLinear", [f"{name}_c", f"{name}_s", f"{name}_z"], [name], name=f"/{name}/DQ",
                            axis=axis)
    return node, [_c(f"{name}_c", codes), _c(f"{name}_s", scale if n_scales > 1 else scale[0]),
                  _c(f"{name}_z", zp if n_scales > 1 else zp[0])]


def _check(path, shape):
    import onnxruntime as ort

    g = load_onnx(path)
    xs = RNG.standard_normal((16, *shape[1:])).astype(np.float32)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    theirs = np.concatenate([s.run(None, {"x": x[None]})[0].reshape(1, -1) for x in xs])
    ours = logits(g, xs)
    tol = 0.5 * max(g.meta["output_scale"]) + 1e-5     # a float bias is rounded to the accumulator's scale
    assert np.abs(ours - theirs).max() <= tol, (np.abs(ours - theirs).max(), tol)
    return g


@pytest.mark.parametrize("trans_a, trans_b, alpha, beta, per_channel, bias", [
    (0, 1, 1.0, 1.0, True, "int32"), (0, 0, 1.0, 1.0, True, "int32"), (1, 0, 0.5, 2.0, False, "float"),
    (1, 1, 2.0, 0.5, True, "float"), (0, 0, 1.0, 1.0, False, None)])
def test_gemm_in_every_transpose(tmp_path, trans_a, trans_b, alpha, beta, per_channel, bias):
    k, o = 12, 5
    wshape = (o, k) if trans_b else (k, o)
    wn, wi = _weight("w", wshape, 0 if trans_b else 1, o if per_channel else 1)
    inputs, inits = ["xd", "w"], list(wi)
    if bias == "int32":
        inits += [_c("b_c", RNG.integers(-500, 500, o).astype(np.int32)), _c("b_s", np.float32(0.05 * 0.02)),
                  _c("b_z", np.int32(0))]
        bn = [helper.make_node("DequantizeLinear", ["b_c", "b_s", "b_z"], ["b"], name="/b/DQ")]
        inputs.append("b")
    elif bias == "float":
        inits.append(_c("b", RNG.standard_normal(o).astype(np.float32)))
        bn, inputs = [], inputs + ["b"]
    else:
        bn = []
    pre = [helper.make_node("Transpose", ["xd"], ["xt"], name="/t/Transpose", perm=[1, 0])] if trans_a else []
    inputs[0] = "xt" if trans_a else "xd"                          # transA reads A = (K, 1): the input transposed
    gemm = helper.make_node("Gemm", inputs, ["y"], name="/fc/Gemm", transA=trans_a, transB=trans_b, alpha=alpha,
                            beta=beta)
    g = _check(_model(tmp_path, [*pre, wn, *bn, gemm], inits, [1, k]), [1, k])
    assert [n.op for n in g.nodes if n.op != "reshape"] == ["linear_acc"]


@pytest.mark.parametrize("transposed", [False, True])
def test_matmul_weight_with_or_without_transpose(tmp_path, transposed):
    k, o = 8, 6
    wn, wi = _weight("w", (o, k) if transposed else (k, o), 0 if transposed else 1, o)
    nodes = [wn]
    if transposed:
        nodes.append(helper.make_node("Transpose", ["w"], ["wt"], name="/fc/Transpose", perm=[1, 0]))
    nodes.append(helper.make_node("MatMul", ["xd", "wt" if transposed else "w"], ["y"], name="/fc/MatMul"))
    _check(_model(tmp_path, nodes, wi, [1, k]), [1, k])


def test_per_channel_scales_on_the_input_axis_are_refused(tmp_path):
    wn, wi = _weight("w", (8, 6), 0, 8)       # (K, N) codes with one scale per input feature
    path = _model(tmp_path, [wn, helper.make_node("MatMul", ["xd", "w"], ["y"], name="/fc/MatMul")], wi, [1, 8])
    with pytest.raises(FrontendError, match=r"node '/fc/MatMul' \(MatMul\): weight scales \(8\) must be per tensor "
                                            r"or per output channel \(axis 1 of the codes \(8, 6\), got axis 0\)"):
        load_onnx(path)


def _layout_model(tmp_path, layout_nodes, inits, in_shape, feat):
    wn, wi = _weight("w", (4, feat), 0, 4)
    nodes = [*layout_nodes, wn, helper.make_node("Gemm", ["v", "w"], ["y"], name="/fc/Gemm", transB=1)]
    return _model(tmp_path, nodes, [*inits, *wi], in_shape)


def test_slice_and_gather_of_constants_are_proven_copies(tmp_path):
    """x (1, 6, 5): Slice columns 1:5:2 of rows 4..0 step -2, then Gather row 1 -> (1, 2) features: one slice node."""
    sl = helper.make_node("Slice", ["xd", "st", "en", "ax", "sp"], ["s"], name="/Slice")
    ga = helper.make_node("Gather", ["s", "gi"], ["g"], name="/Gather", axis=1)
    fl = helper.make_node("Flatten", ["g"], ["v"], name="/Flatten", axis=1)
    inits = [_c("st", np.array([4, 1])), _c("en", np.array([-10, 5])), _c("ax", np.array([1, 2])),
             _c("sp", np.array([-2, 2])), _c("gi", np.array([1, 2]))]
    g = _check(_layout_model(tmp_path, [sl, ga, fl], inits, [1, 6, 5], 4), [1, 6, 5])
    assert [n.op for n in g.nodes if n.op != "reshape"] == ["slice", "linear_acc"]


@pytest.mark.parametrize("shape, indices, axis, row_len", [
    ([1, 6], [0, 1, 5, 2], 1, 1),              # single elements
    ([1, 8, 3], [0, 2, 3, 7], 1, 3),           # channels of a (C, T) window: whole rows ([0, 3, 4, 7] is a 2x2 grid)
    ([1, 4, 5], [4, 0, 0, 2], 2, 1)])          # time steps of every channel, one of them twice
def test_uneven_gather_is_one_gather_node(tmp_path, shape, indices, axis, row_len):
    """A Gather of constant indices no strided view covers: one `gather` node (rows at constant offsets) reading
    exactly the elements numpy's take does, its reference agreeing with onnxruntime."""
    from edgeflow.ir.opdefs.structural import gather_index

    ga = helper.make_node("Gather", ["xd", "gi"], ["g"], name="/Gather", axis=axis)
    fl = helper.make_node("Flatten", ["g"], ["v"], name="/Flatten", axis=1)
    feat = int(np.prod(shape[1:])) // shape[axis] * len(indices)
    g = _check(_layout_model(tmp_path, [ga, fl], [_c("gi", np.array(indices))], shape, feat), shape)
    assert [n.op for n in g.nodes if n.op != "reshape"] == ["gather", "linear_acc"]
    a = next(n for n in g.nodes if n.op == "gather").attrs
    want = np.take(np.arange(int(np.prod(shape))).reshape(shape[1:]), indices, axis=axis - 1).reshape(-1)
    assert a["row_len"] == row_len and np.array_equal(gather_index(a["offsets"], a["row_len"], a["step"]), want)


def test_a_gather_too_large_for_one_table_is_refused_in_one_line(tmp_path):
    n = 20000
    ga = helper.make_node("Gather", ["xd", "gi"], ["v"], name="/Gather", axis=1)
    path = _layout_model(tmp_path, [ga], [_c("gi", np.random.default_rng(0).permutation(n))], [1, n], n)
    with pytest.raises(FrontendError) as info:
        load_onnx(path)
    assert str(info.value) == (f"{path}: node '/Gather' (Gather): reorders the elements of 'q0.QuantizeLinear' in "
                               "a way no copy kernel covers (not a transpose or a strided slice, and a gather of "
                               f"{n} rows is beyond 16384)")


def test_every_unsupported_op_is_listed_with_a_hint(tmp_path):
    nodes = [helper.make_node("Shape", ["xd"], ["sh"], name="/Shape"),
             helper.make_node("LSTM", ["xd", "lw", "lr"], ["l"], name="/rnn/LSTM", hidden_size=2),
             helper.make_node("Dropout", ["xd"], ["y"], name="/drop/Dropout")]
    path = _model(tmp_path, nodes, [_c("lw", np.zeros((1, 8, 3), np.float32)),
                                    _c("lr", np.zeros((1, 8, 2), np.float32))], [1, "T", 3])   # Shape not static
    with pytest.raises(FrontendError) as info:
        load_onnx(path)
    assert str(info.value) == (
        f"{path}: 3 unsupported ops: '/Shape' (Shape): {HINTS['Shape']}; '/rnn/LSTM' (LSTM): recurrent layers are "
        "not supported; use convolutions, attention or the Mamba block; '/drop/Dropout' (Dropout): export the "
        "model in eval mode (model.eval())")


def test_float_value_where_an_activation_is_needed_names_the_module(tmp_path):
    wn, wi = _weight("w", (4, 6), 0, 4)
    w2, wi2 = _weight("w2", (3, 4), 0, 3)
    nodes = [wn, helper.make_node("Gemm", ["xd", "w"], ["h"], name="/fc1/Gemm", transB=1),
             w2, helper.make_node("Gemm", ["h", "w2"], ["y"], name="/fc2/Gemm", transB=1)]
    path = _model(tmp_path, nodes, [*wi, *wi2], [1, 6])
    with pytest.raises(FrontendError, match=r"value 'h' \(output of '/fc1/Gemm', Gemm\) is a float tensor where an "
                                            r"int8 activation is needed; insert a QuantIdentity after /fc1$"):
        load_onnx(path)


def test_affine_forms():
    x = np.arange(24).reshape(2, 3, 4)
    assert affine_form(x) == (0, [24], [1])
    off, shp, st = affine_form(x.transpose(2, 0, 1))
    assert (off, shp, st) == (0, [4, 6], [1, 4]) and as_permutation(shp, st, 24) == ([6, 4], [1, 0])
    assert affine_form(x[:, ::-1, 1:3]) == (9, [2, 3, 2], [12, -4, 1])
    assert as_permutation([2, 3, 2], [12, -4, 1], 24) is None
    assert affine_form(np.array([0, 1, 3])) is None
