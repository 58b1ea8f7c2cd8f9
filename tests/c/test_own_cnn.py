"""Ordinary EEG CNNs built by the test (brevitas EEGNet-style and 1-D CNN, 8- and 4-bit weights, QCDQ export):
lowered to conv / pool / lut / reshape, compiled for host and gap9 (its portable HAL on the host) bit-exact with
the numpy reference, and their dequantised logits agree with onnxruntime on the same ONNX."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from edgeflow.backends.gap9 import compile as compile_gap9
from edgeflow.backends.host import compile_host, run_binary
from edgeflow.ir.from_onnx import load_onnx, quantize_input
from edgeflow.ir.reference import logits, run
from edgeflow.plan.levels import PlanError
from edgeflow.target import load_target

from .own_cnn_models import FAMILIES, cnn_onnx, onnxruntime_logits, windows

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]

MODELS = [("eegnet", 8), ("eegnet", 4), ("cnn1d", 8), ("cnn1d", 4), ("zoo", 8), ("zoo", 4)]


@pytest.fixture(scope="module", params=MODELS, ids=[f"{f}-w{b}" for f, b in MODELS])
def model(request, tmp_path_factory):
    family, bits = request.param
    path = cnn_onnx(tmp_path_factory, family, bits)
    graph = load_onnx(path)
    xs = windows(FAMILIES[family][1])
    q = np.stack([quantize_input(x, graph) for x in xs])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    return family, bits, path, graph, xs, q, want


def test_lowered_to_cnn_ops(model):
    family, bits, _, graph, _, _, want = model
    ops = [n.op for n in graph.nodes]
    assert ops.count("conv") == 2 and "pool" in ops and "reshape" in ops and ops[-1] == "linear_acc"
    assert {graph.tensors[n.inputs[1]].bits for n in graph.nodes if n.op == "conv"} == {bits}
    if family == "zoo":                             # ReLU6 folded; max + avg pools; Linear + BatchNorm1d folded
        assert graph.nodes[0].attrs["lo"] == 0 and "linear" in ops
        assert {n.attrs["mode"] for n in graph.nodes if n.op == "pool"} == {"max", "avg"}
        assert {n.attrs["fn"] for n in graph.nodes if n.op == "lut"} == {"tanh", "sigmoid", "clamp"}
    elif family == "eegnet":                          # BatchNorm folded; ELU a LUT; depthwise spatial conv
        assert "lut" in ops and graph.nodes[1].attrs["group"] == 4
        assert graph.nodes[0].attrs["pads"] == [0, 4, 0, 4]
    else:                                           # ReLU folded into the clamp (uint8 QuantReLU at 2x scale)
        convs = [n for n in graph.nodes if n.op == "conv"]
        assert [c.attrs["lo"] for c in convs] == [0, 0] and convs[1].attrs["dilations"] == [2]
        assert convs[0].attrs["strides"] == [2] and convs[1].attrs["group"] == 2
    assert len({tuple(r) for r in want.tolist()}) > len(want) // 2      # the logits depend on the input


def test_logits_agree_with_onnxruntime(model):
    family, bits, path, graph, xs, _, _ = model
    ours, theirs = logits(graph, xs), onnxruntime_logits(path, xs)
    agree = float((ours.argmax(1) == theirs.argmax(1)).mean())
    diff = float(np.abs(ours - theirs).max())
    print(f"{family}-w{bits}: argmax agreement {agree:.3f} on {len(xs)} windows, max |logit diff| {diff:.4f} "
          f"(logit range {np.abs(theirs).max():.3f})")
    assert agree >= 0.95
    assert diff < 0.25 * np.abs(theirs).max()


def test_host_bit_exact(model, tmp_path):
    _, _, _, graph, _, q, want = model
    art = compile_host(graph, tmp_path / "whole")
    assert np.array_equal(run_binary(art.binary, q, want.shape[1]), want)
    tiled = compile_host(graph, tmp_path / "tiled", target=load_target("host"))   # the head in L1 tiles
    assert np.array_equal(run_binary(tiled.binary, q, want.shape[1]), want)


def test_gap9_bit_exact(model, tmp_path):
    _, _, _, graph, _, q, want = model
    art = compile_gap9(graph, load_target("gap9"), tmp_path)
    assert np.array_equal(run_binary(art.binary, q, want.shape[1]), want)
    assert art.report["memory"]["weights_level"] == "L2"


def test_activations_too_large_for_l2_are_refused_in_one_line(model, tmp_path):
    """Whole-tensor conv / pool stay in L2; a target whose L2 cannot hold them is refused naming the bytes and
    the step with the most live activations."""
    _, _, _, graph, _, _, _ = model
    t = load_target("gap9")
    small = dataclasses.replace(t, memory=tuple(dataclasses.replace(m, usable=300) if m.name == "L2" else m
                                                for m in t.memory))
    with pytest.raises(PlanError) as info:
        compile_gap9(graph, small, tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "usable 300" in msg and "bytes live)" in msg, msg
