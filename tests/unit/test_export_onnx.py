"""QCDQ export of femba-micro: checker, one scan node per direction, onnxruntime vs brevitas, chunked form."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgeflow.cards import load_card
from edgeflow.export.onnx import TOLERANCE, ExportError, export_and_verify, export_qcdq, ort_run
from edgeflow.nn import build_model
from edgeflow.quant.layers import QuantPolicy
from edgeflow.quant.ptq import build_quant_model, calibrate
from edgeflow.quant.qfemba import load_float_weights

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def qmodel():
    card = load_card("femba-micro")
    torch.manual_seed(1)
    q = build_quant_model(card, QuantPolicy.from_card(card, 2))
    load_float_weights(q, build_model(card).state_dict(), "random init")
    x = np.random.default_rng(0).standard_normal((12, 22, 1280)).astype(np.float32)
    calibrate(q, x)
    return q, x


@pytest.fixture(scope="module")
def exported(qmodel, tmp_path_factory):
    q, x = qmodel
    out = tmp_path_factory.mktemp("exp") / "model.onnx"
    return export_and_verify(q, x[:6], out), out


def test_scan_form_passes_checker_with_one_node_per_direction(exported):
    reports, out = exported
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    scans = [n for n in proto.graph.node if n.domain == "edgeflow" and n.op_type == "SelectiveScan"]
    assert len(scans) == 2  # femba-micro: one block, forward + reverse mixer
    attrs = {a.name for a in scans[0].attribute}
    assert {"direction", "d_state", "quant"} <= attrs
    assert "Scan" not in reports["scan"]["ops"]  # the body lives in the function, not in the graph


def test_onnxruntime_matches_brevitas_within_stated_tolerance(exported, qmodel):
    reports, out = exported
    q, x = qmodel
    for form in ("scan", "chunked"):
        r = reports[form]
        assert r["max_abs_logit_diff"] <= TOLERANCE[form]
        assert r["argmax_agree"] == 1.0
    # and on windows the self-check did not see
    with torch.no_grad():
        ref = q(torch.from_numpy(x[6:])).numpy()
    assert np.abs(ort_run(out, x[6:]) - ref).max() <= TOLERANCE["scan"]


def test_two_bit_weights_in_the_file(exported):
    _, out = exported
    proto = onnx.load(str(out))
    values = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    values.update({o: onnx.numpy_helper.to_array(n.attribute[0].t)
                   for n in proto.graph.node if n.op_type == "Constant" for o in n.output})
    clips = [(int(values[n.input[1]]), int(values[n.input[2]])) for n in proto.graph.node
             if n.op_type == "Clip" and len(n.input) == 3 and n.input[1] in values]
    assert (-1, 1) in clips      # 2-bit narrow-range weights
    assert (-127, 127) in clips  # 8-bit patch embedding / head / conv1d


def test_chunked_form_has_no_custom_node(exported):
    reports, _ = exported
    assert not any(k.startswith("edgeflow.") for k in reports["chunked"]["ops"])
    assert "Scan" not in reports["chunked"]["ops"] and "Loop" not in reports["chunked"]["ops"]


def test_unexportable_module_is_named(qmodel, tmp_path):
    q, x = qmodel
    q.blocks[0].extra = torch.nn.GRU(4, 4)
    try:
        with pytest.raises(ExportError, match=r"module 'blocks\.0\.extra' \(GRU\)"):
            export_qcdq(q, x, tmp_path / "m.onnx")
    finally:
        del q.blocks[0].extra
