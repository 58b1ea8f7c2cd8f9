"""A small EEG transformer built by the test (brevitas QuantMultiheadAttention, 8- and 4-bit weights, QCDQ export
with Shape -> Gather chains, packed q/k/v, Div by sqrt(d_head)): lowered to linear / split / matmul / softmax_rows
/ concat / layernorm, compiled for host and gap9 (its portable HAL on the host) bit-exact with the numpy
reference, and its dequantised logits agree with onnxruntime on the same ONNX."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

from edgeflow.backends.gap9 import compile as compile_gap9
from edgeflow.backends.host import compile_host, run_binary
from edgeflow.ir.fold_shapes import fold_shapes
from edgeflow.ir.from_onnx import FrontendError, load_onnx, quantize_input
from edgeflow.ir.reference import logits, run
from edgeflow.target import load_target

from .own_attn_models import FAMILIES, AttnTiny, attn_onnx
from .own_cnn_models import export_model, onnxruntime_logits, windows

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]

MODELS = [("attn", 8), ("attn", 4)]


@pytest.fixture(scope="module", params=MODELS, ids=[f"{f}-w{b}" for f, b in MODELS])
def model(request, tmp_path_factory):
    family, bits = request.param
    path = attn_onnx(tmp_path_factory, family, bits)
    graph = load_onnx(path)
    xs = windows(FAMILIES[family][1])
    q = np.stack([quantize_input(x, graph) for x in xs])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    return family, bits, path, graph, xs, q, want


def test_shapes_fold_and_attention_lowers(model):
    _, bits, path, graph, _, _, want = model
    proto = onnx.load(str(path))
    assert "Shape" in {n.op_type for n in proto.graph.node}          # brevitas' chunk reads the shape at run time
    assert not {"Shape", "Gather"} & {n.op_type for n in fold_shapes(proto).graph.node}
    ops = [n.op for n in graph.nodes]
    assert ops.count("matmul") == 4 and ops.count("softmax_rows") == 2 and ops.count("split") == 3
    assert "concat" in ops and "layernorm" in ops and "meanpool_tokens" in ops and ops[-1] == "linear_acc"
    lin = {n.outputs[0]: n for n in graph.nodes if n.op == "linear"}
    q, k, v = (lin[f"mha.{s}_quant"] for s in ("q_scaled", "k_transposed", "v"))
    assert {graph.tensors[n.inputs[1]].bits for n in lin.values()} == {bits}
    assert q.inputs[0] == k.inputs[0] == v.inputs[0]                  # one packed in_proj input, three row blocks
    w = [graph.tensors[n.inputs[1]].data for n in (q, k, v)]
    assert all(x.shape == (16, 16) for x in w) and not np.array_equal(w[0], w[1])
    assert len({tuple(r) for r in want.tolist()}) > len(want) // 2      # the logits depend on the input


def test_query_scale_folds_div_by_sqrt_dhead(model):
    """q / sqrt(d_head) is in q's multiplier: m * 2^-sh = s_in * s_w / (sqrt(8) * s_q) per output channel."""
    _, _, _, graph, _, _, _ = model
    q = next(n for n in graph.nodes if n.outputs[0] == "mha.q_scaled_quant")
    t = graph.tensors
    m, sh = t[q.inputs[3]].data.astype(np.float64), t[q.inputs[4]].data.astype(np.float64)
    real = t[q.inputs[0]].scale * np.asarray(t[q.inputs[1]].scale) / (np.sqrt(8.0) * t[q.outputs[0]].scale)
    assert np.allclose(m * 2.0**-sh, real, rtol=2.0**-13)     # m has REQUANT_BITS bits; without the fold: x2.83


def test_logits_agree_with_onnxruntime(model):
    family, bits, path, graph, xs, _, _ = model
    ours, theirs = logits(graph, xs), onnxruntime_logits(path, xs)
    agree = float((ours.argmax(1) == theirs.argmax(1)).mean())
    diff = float(np.abs(ours - theirs).max())
    msg = (f"{family}-w{bits}: argmax agreement {agree:.3f} on {len(xs)} windows, max |logit diff| {diff:.4f} "
           f"(logit range {np.abs(theirs).max():.3f})")
    print(msg)
    assert agree >= 0.95, msg
    assert diff < 0.1 * np.abs(theirs).max(), msg


def test_host_bit_exact(model, tmp_path):
    _, _, _, graph, _, q, want = model
    art = compile_host(graph, tmp_path / "whole")
    assert np.array_equal(run_binary(art.binary, q, want.shape[1]), want)
    tiled = compile_host(graph, tmp_path / "tiled", target=load_target("host"))   # the linear layers in L1 tiles
    assert np.array_equal(run_binary(tiled.binary, q, want.shape[1]), want)


def test_gap9_bit_exact(model, tmp_path):
    _, _, _, graph, _, q, want = model
    art = compile_gap9(graph, load_target("gap9"), tmp_path)
    assert np.array_equal(run_binary(art.binary, q, want.shape[1]), want)


def test_sequence_first_four_heads_quantized_out_proj(tmp_path):
    """batch_first=False ((L, B, E) into the attention), 4 heads of 4, out_proj's own output quantizer followed by
    a QuantIdentity (two quantizers in a row): lowered, bit-exact on host, close to onnxruntime."""
    path = export_model(AttnTiny(8, heads=4, batch_first=False, out_quant=True), (4, 64), tmp_path / "seq.onnx",
                        seed=3)
    graph = load_onnx(path)
    assert [n.op for n in graph.nodes].count("softmax_rows") == 4
    xs = windows((4, 64), n=32, seed=8)
    q = np.stack([quantize_input(x, graph) for x in xs])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    art = compile_host(graph, tmp_path / "host")
    assert np.array_equal(run_binary(art.binary, q, want.shape[1]), want)
    ours, theirs = logits(graph, xs), onnxruntime_logits(path, xs)
    agree, diff = float((ours.argmax(1) == theirs.argmax(1)).mean()), float(np.abs(ours - theirs).max())
    msg = f"argmax agreement {agree:.3f} on {len(xs)} windows, max |logit diff| {diff:.4f}"
    print(msg)
    assert agree >= 0.9 and diff < 0.1 * np.abs(theirs).max(), msg


def test_unquantized_scores_are_refused_with_the_fix(tmp_path):
    """brevitas' default QuantMultiheadAttention leaves Q·Kᵀ float before the Softmax: refused in one line that
    names the Softmax and the keyword to set."""
    m = AttnTiny(8, samples=32, quant_scores=False)
    path = export_model(m, (4, 32), tmp_path / "raw-scores.onnx")
    with pytest.raises(FrontendError) as info:
        load_onnx(path)
    msg = str(info.value)
    assert "\n" not in msg and "'/mha/Softmax'" in msg and "softmax_input_quant=Int8ActPerTensorFloat" in msg, msg


def test_onnxruntime_quantized_torch_multihead_attention_compiles(tmp_path):
    """torch's own nn.MultiheadAttention quantized by onnxruntime: after its shape arithmetic folds (Shape, Mod of
    Constants, the quantized sqrt(head_dim) scale) the batched (1, H, L, dh) head matmuls become one matmul per
    head (ir/qdq_ort_ops.py); host bit-exact with the reference and argmax agreement with onnxruntime."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Mha(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.fc = torch.nn.Linear(8, 16), torch.nn.Linear(16, 3)
            self.mha = torch.nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.emb(x)
            return self.fc((t + self.mha(t, t, t, need_weights=False)[0]).mean(dim=1))

    torch.manual_seed(0)
    f32 = tmp_path / "mha.onnx"
    torch.onnx.export(Mha().eval(), torch.zeros(1, 8, 8), str(f32), input_names=["x"], dynamo=False)
    calib = iter([{"x": w[None]} for w in windows((8, 8), n=8, seed=1)])

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(calib, None)

    qdq = tmp_path / "mha-qdq.onnx"
    quantize_static(str(f32), str(qdq), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, extra_options={"ActivationSymmetric": True})
    graph = load_onnx(qdq)
    assert sum(n.op == "matmul" for n in graph.nodes) == 4          # q.kᵀ and p.v of 2 heads
    xs = windows((8, 8), n=32)
    assert float((logits(graph, xs).argmax(1) == onnxruntime_logits(qdq, xs).argmax(1)).mean()) >= 0.95
    shape = graph.tensors[graph.inputs[0]].shape
    q = np.stack([quantize_input(x, graph).reshape(shape) for x in xs[:8]])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    assert np.array_equal(run_binary(compile_host(graph, tmp_path / "host").binary, q, want.shape[1]), want)
