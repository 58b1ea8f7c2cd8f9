"""ONNX frontend + numpy reference on femba-micro: IR verifies, logits match onnxruntime, errors name the culprit."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgeflow.export.onnx import ort_run
from edgeflow.ir.from_onnx import FrontendError, load_onnx, quantize_input
from edgeflow.ir.graph import Graph, verify
from edgeflow.ir.reference import logits, run
from tests.c.models import femba_micro_onnx

pytestmark = pytest.mark.unit

# Stated bound of |reference logit - onnxruntime logit|, in units of one head-input LSB times the largest head
# weight (s_in * max|w|): the integer path and ORT's float path may round a few int8 codes differently by one.
LOGIT_BOUND_LSB = 4.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """femba-micro, 2-bit, random init, calibrated on 12 windows, exported: the session's one export of this recipe
    (tests/c/models.femba_micro_onnx, shared with the c tier's build / codegen / tiled tests)."""
    return femba_micro_onnx(tmp_path_factory)


@pytest.fixture(scope="module")
def graph(exported) -> Graph:
    return load_onnx(exported)


def _edited(src, dst, edit) -> str:
    proto = onnx.load(str(src))
    edit(proto)
    onnx.save(proto, str(dst))
    return str(dst)


def test_graph_verifies_and_has_one_int_op_per_region(graph):
    verify(graph)
    ops = [n.op for n in graph.nodes]
    assert ops.count("scan") == 2 and ops.count("layernorm") == 1 and ops.count("add_requant") == 1
    assert ops.count("conv2d_patch") == 1 and ops.count("dwconv1d_causal") == 2 and ops.count("flip_time") == 2
    assert ops[-1] == "linear_acc" and graph.outputs == ["logits_acc"]
    assert graph.tensors["logits_acc"].dtype == "int32"
    assert graph.meta["input_scale"] > 0 and len(graph.meta["output_scale"]) == 2
    two_bit = [t for t in graph.tensors.values() if t.data is not None and t.bits == 2]
    assert two_bit and all(t.data.min() >= -1 and t.data.max() <= 1 for t in two_bit)


def test_reference_logits_match_onnxruntime(graph, exported):
    x = np.random.default_rng(7).standard_normal((24, 22, 1280)).astype(np.float32)
    ref = logits(graph, x)
    ort = ort_run(exported, x)
    assert (ref.argmax(1) == ort.argmax(1)).all()
    head_w = graph.tensors[graph.nodes[-1].inputs[1]]
    unit = graph.tensors[graph.nodes[-1].inputs[0]].scale * float(np.max(np.abs(head_w.data) * head_w.scale[:, None]))
    err = float(np.abs(ref - ort).max())
    print(f"max |logit diff| {err:.3g} = {err / unit:.2f} head-input LSB (bound {LOGIT_BOUND_LSB})")
    assert err <= LOGIT_BOUND_LSB * unit


def test_input_codes_and_intermediates_match_onnxruntime(graph, exported, tmp_path):
    import onnxruntime as ort

    names = graph.meta["onnx_names"]
    path = _edited(exported, tmp_path / "dbg.onnx", lambda p: p.graph.output.extend(
        [onnx.helper.make_tensor_value_info(v, onnx.TensorProto.INT8, None) for v in names.values()]))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).standard_normal((1, 22, 1280)).astype(np.float32) * 3
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x}),
                   strict=True))
    ours = run(graph, quantize_input(x[0], graph))
    for ir_name, onnx_name in names.items():
        a = np.squeeze(got[onnx_name])
        a = a if a.shape == ours[ir_name].shape else a.T
        diff = np.abs(a.astype(np.int64) - ours[ir_name])
        if ir_name == graph.inputs[0]:
            assert diff.max() == 0  # input quantization is exactly ORT's QuantizeLinear (half to even, saturate)
        else:
            assert diff.max() <= 8 and (diff > 0).mean() < 0.1, ir_name  # float vs integer rounding only


def test_graph_round_trips_through_save(graph, tmp_path):
    x = quantize_input(np.random.default_rng(1).standard_normal((22, 1280)), graph)
    again = Graph.load(graph.save(tmp_path / "g"))
    verify(again)
    assert np.array_equal(run(again, x)["logits_acc"], run(graph, x)["logits_acc"])


def test_quantize_input_rounds_half_to_even_and_saturates(graph):
    s = graph.meta["input_scale"]
    x = np.asarray([0.5, 1.5, 2.5, -0.5, 1000.0, -1000.0], dtype=np.float64) * s
    assert quantize_input(x, graph).tolist() == [0, 2, 2, 0, 127, -128]


def test_truncated_file_is_one_line_error(exported, tmp_path):
    bad = tmp_path / "cut.onnx"
    data = exported.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(FrontendError, match=r"cut\.onnx: not a readable ONNX file") as e:
        load_onnx(bad)
    assert "\n" not in str(e.value)


def test_unsupported_op_is_named(exported, tmp_path):
    """Every unsupported node is listed at once, in one line, each with its name and a hint."""
    def edit(p):
        for n in p.graph.node:
            if n.op_type == "Softplus":
                n.op_type = "Softsign"
    path = _edited(exported, tmp_path / "u.onnx", edit)
    with pytest.raises(FrontendError) as info:
        load_onnx(path)
    hint = "no integer lowering; replace the layer or ask for the op"
    assert str(info.value) == (f"{path}: 2 unsupported ops: '/blocks.0/fwd/Softplus' (Softsign): {hint}; "
                               f"'/blocks.0/rev/Softplus' (Softsign): {hint}")


def test_missing_initializer_is_named(exported, tmp_path):
    def edit(p):
        keep = [i for i in p.graph.initializer if i.name != "pos_embed"]
        del p.graph.initializer[:]
        p.graph.initializer.extend(keep)
    with pytest.raises(FrontendError, match=r"reads 'pos_embed'.*missing initializer"):
        load_onnx(_edited(exported, tmp_path / "m.onnx", edit))


def test_unknown_edgeflow_version_is_rejected(exported, tmp_path):
    def edit(p):
        next(o for o in p.opset_import if o.domain == "edgeflow").version = 2
    with pytest.raises(FrontendError, match=r"edgeflow domain version 2, expected 1"):
        load_onnx(_edited(exported, tmp_path / "v.onnx", edit))


def test_unmatched_pattern_is_named(exported, tmp_path):
    def edit(p):  # the SiLU's Sigmoid now reads another tensor: x * sigmoid(y) is no supported pattern
        sig = next(n for n in p.graph.node if n.op_type == "Sigmoid")
        sig.input[0] = "/patch_embed/input_quant/export_handler/DequantizeLinear_output_0"
    with pytest.raises(FrontendError, match=r"value '/blocks\.0/fwd/Sigmoid_output_0' \(output of "
                                            r"'/blocks\.0/fwd/Sigmoid', Sigmoid\) is a float tensor where an int8 "
                                            r"activation is needed; insert a QuantIdentity after /blocks\.0/fwd$"):
        load_onnx(_edited(exported, tmp_path / "p.onnx", edit))
