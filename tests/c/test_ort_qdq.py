"""onnxruntime-quantized models (quantize_static QDQ, tests/c/ort_models.py): the MLP and 1-D CNN built by the
test, with and without quant_pre_process, per-tensor and per-channel, uint8 and int8, symmetric and asymmetric
activations, compiled for host and gap9 (portable HAL on the host) bit-exact with the numpy reference, and their
logits agree with onnxruntime running the same QDQ model (argmax, and within two output steps wherever
onnxruntime's output quantizer did not saturate); an op that cannot carry a zero point is refused in one line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeflow.backends.gap9 import compile as compile_gap9
from edgeflow.backends.host import compile_host, run_binary
from edgeflow.ir.from_onnx import FrontendError, load_onnx, quantize_input
from edgeflow.ir.reference import logits, run
from edgeflow.target import load_target

from .ort_models import CONFIGS, REFUSED, SHAPES, onnxruntime_logits, ort_onnx, output_limits, windows

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]


@pytest.fixture(scope="module", params=CONFIGS, ids=[c.id for c in CONFIGS])
def model(request, tmp_path_factory):
    cfg = request.param
    path = ort_onnx(tmp_path_factory, cfg)
    graph = load_onnx(path)
    xs = windows(SHAPES[cfg.family])
    shape = graph.tensors[graph.inputs[0]].shape
    q = np.stack([quantize_input(x, graph).reshape(shape) for x in xs])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    return cfg, path, graph, xs, q, want


def test_zero_points_lowered(model):
    cfg, _, graph, _, _, want = model
    ops = [n.op for n in graph.nodes]
    zp_in = graph.meta.get("input_zero_point", 0)
    assert ops[-1] == "linear_acc" and graph.outputs == ["logits_acc"]
    if cfg.symmetric:     # uint8 symmetric: zero point 128 -> int8 0; every activation symmetric
        assert zp_in == 0 and "requant" not in ops
        assert all(t.zero_point == 0 for t in graph.tensors.values())
    elif cfg.family == "mlp":   # input zero points in the biases, asymmetric outputs requantized with theirs
        assert zp_in != 0 and ops.count("requant") == ops.count("linear_acc") - 1
        assert {n.attrs["zp"] for n in graph.nodes if n.op == "requant"} - {-128}  # not only ReLU ranges
    else:                       # conv / pool carry both zero points as attributes (padding reads zp_in)
        assert zp_in != 0 and "requant" not in ops
        convs = [n for n in graph.nodes if n.op in ("conv", "pool")]
        assert all("zp_in" in n.attrs and "zp_out" in n.attrs for n in convs)
        assert convs[0].attrs["pads"] == [1, 1] and convs[0].attrs["zp_in"] == zp_in
    assert len({tuple(r) for r in want.tolist()}) > len(want) // 2      # the logits depend on the input


def test_quantize_input_applies_the_zero_point(model):
    _, _, graph, xs, q, _ = model
    s, z = float(graph.meta["input_scale"]), int(graph.meta.get("input_zero_point", 0))
    manual = np.clip(np.rint(xs.astype(np.float32) / np.float32(s)) + z, -128, 127).reshape(q.shape)
    assert np.array_equal(q, manual.astype(np.int8))
    assert z == 0 or not np.array_equal(q, np.clip(np.rint(xs / np.float32(s)), -128, 127).reshape(q.shape))


def test_logits_agree_with_onnxruntime(model):
    cfg, path, graph, xs, _, _ = model
    ours, theirs = logits(graph, xs), onnxruntime_logits(path, xs)
    lo, hi, s = output_limits(path)
    inside = (theirs > lo + s / 2) & (theirs < hi - s / 2)     # onnxruntime's output quantizer did not saturate
    agree = float((ours.argmax(1) == theirs.argmax(1)).mean())
    diff = float(np.abs(ours - theirs)[inside].max())
    print(f"{cfg.id}: argmax agreement {agree:.3f} on {len(xs)} windows, max |logit diff| {diff:.4f} over "
          f"{int(inside.sum())} of {inside.size} unsaturated logits (range {np.abs(theirs).max():.3f}, output "
          f"step {s:.4f})")
    assert agree >= 0.95 and inside.mean() > 0.8
    assert diff < 2 * s      # within onnxruntime's own output rounding (half a step) and a hidden code apart


def test_host_bit_exact(model, tmp_path):
    _, _, graph, _, q, want = model
    art = compile_host(graph, tmp_path / "whole")
    assert np.array_equal(run_binary(art.binary, q, want.shape[1]), want)
    tiled = compile_host(graph, tmp_path / "tiled", target=load_target("host"))
    assert np.array_equal(run_binary(tiled.binary, q, want.shape[1]), want)


def test_gap9_bit_exact(model, tmp_path):
    _, _, graph, _, q, want = model
    art = compile_gap9(graph, load_target("gap9"), tmp_path)
    assert np.array_equal(run_binary(art.binary, q, want.shape[1]), want)


@pytest.mark.parametrize("cfg, message", REFUSED, ids=[c.id for c, _ in REFUSED])
def test_zero_points_that_cannot_be_carried_are_refused(tmp_path_factory, cfg, message):
    with pytest.raises(FrontendError) as info:
        load_onnx(ort_onnx(tmp_path_factory, cfg))
    msg = str(info.value)
    assert "\n" not in msg and message in msg and "ActivationSymmetric" in msg, msg
