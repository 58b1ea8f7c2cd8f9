"""Quantized EEG transformer: float weights load, QAT step, 2-bit rows, run_quantize, QCDQ export vs onnxruntime."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edgeflow.cards import load_card
from edgeflow.errors import CardError
from edgeflow.nn import build_model
from edgeflow.quant.layers import QuantPolicy
from edgeflow.quant.ptq import calibrate, check_quantizable, from_float
from edgeflow.train.checkpoint import save_checkpoint

pytestmark = pytest.mark.unit

PROJECTIONS = ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.fc1", "mlp.fc2")


@pytest.fixture(scope="module")
def vit():
    card = load_card("vit-tiny-eeg")
    torch.manual_seed(0)
    return card, build_model(card)


@pytest.fixture(scope="module")
def float_ckpt(vit, tmp_path_factory):
    card, model = vit
    return save_checkpoint(tmp_path_factory.mktemp("vf") / "float.pt", model, card, "final", 0)


def _x(card, n=6, seed=0) -> np.ndarray:
    shape = (n, card.input.n_channels, card.input.window_samples)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_float_weights_load_and_mismatch_is_named(vit, float_ckpt, tmp_path):
    card, fm = vit
    q = from_float(card, QuantPolicy.from_card(card, 8), float_ckpt)
    assert type(q).__name__ == "QuantEEGTransformer" and q.mixers == []
    assert torch.equal(q.blocks[1].attn.k.weight, fm.blocks[1].attn.k.weight)
    assert torch.equal(q.blocks[0].mlp.fc2.bias, fm.blocks[0].mlp.fc2.bias)
    assert torch.equal(q.pos_embed, fm.pos_embed) and torch.equal(q.norm.weight, fm.norm.weight)
    state = torch.load(float_ckpt, weights_only=False)
    state["model"]["blocks.0.attn.q.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CardError, match=r"tensor 'blocks\.0\.attn\.q\.weight' has shape"):
        from_float(card, QuantPolicy(8), tmp_path / "bad.pt")
    del state["model"]["blocks.0.attn.q.weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(CardError, match=r"tensor 'blocks\.0\.attn\.q\.weight' missing"):
        from_float(card, QuantPolicy(8), tmp_path / "missing.pt")


def test_unknown_kind_is_one_line_error(vit):
    card, _ = vit
    with pytest.raises(CardError, match="model kind 'rnn' is not supported yet") as e:
        check_quantizable(replace(card, kind="rnn"))
    assert "\n" not in str(e.value)


def test_two_bit_weights_take_at_most_three_values(vit, float_ckpt):
    card, _ = vit
    q = from_float(card, QuantPolicy.from_card(card, 2), float_ckpt)
    seen = 0
    for name, mod in q.named_modules():
        if hasattr(mod, "weight_quant") and name.endswith(PROJECTIONS):
            qw = mod.quant_weight()
            assert int(qw.bit_width) == 2
            for row in qw.int():
                assert set(torch.unique(row).tolist()) <= {-1, 0, 1}
            assert torch.unique(qw.scale).numel() > 1  # per output channel
            seen += 1
    assert seen == 6 * card.arch.n_blocks
    assert int(q.patch_embed.quant_weight().bit_width) == 8 and int(q.head.quant_weight().bit_width) == 8


def test_qkv_share_one_input_quantizer_with_int32_bias(vit, float_ckpt):
    card, _ = vit
    q = from_float(card, QuantPolicy.from_card(card, 4), float_ckpt)
    calibrate(q, _x(card, 4))
    blk = q.blocks[0]
    xq = blk.q_n1(blk.norm1(q.tokens(torch.from_numpy(_x(card, 2)))))
    s_in = xq.scale.detach()
    with torch.no_grad():
        for lin in (blk.attn.q, blk.attn.k, blk.attn.v):
            qw = lin.quant_weight()
            s_acc = s_in * qw.scale.flatten()  # Int32Bias: bias at the accumulator scale s_in * s_w[row]
            bias = torch.round(lin.bias / s_acc) * s_acc
            want = xq.value @ qw.value.T + bias
            assert torch.allclose(lin(xq), want, atol=1e-5)


def test_qat_step_changes_weights_and_lowers_loss(vit, float_ckpt):
    card, _ = vit
    q = from_float(card, QuantPolicy.from_card(card, 2), float_ckpt)
    x = torch.from_numpy(_x(card, 8))
    y = torch.arange(8) % 2
    calibrate(q, x.numpy())
    q.train()
    w0 = q.blocks[0].attn.q.weight.detach().clone()
    opt = torch.optim.SGD(q.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    before = loss_fn(q(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    q.eval()
    with torch.no_grad():
        after = loss_fn(q(x), y)
    assert not torch.equal(w0, q.blocks[0].attn.q.weight)
    assert float(after) < float(before.detach())


def test_run_quantize_vit_tiny(vit, float_ckpt, tmp_path, small_corpus):
    from edgeflow.quant.qat import QuantConfig, load_quant, load_splits, run_quantize

    card, _ = vit
    splits = load_splits(card, corpus=Path(small_corpus))
    cfg = QuantConfig(card, float_ckpt, QuantPolicy.from_card(card, 2), "qat", tmp_path / "q", epochs=1,
                      progress=False, max_steps=2, calib_windows=16)
    m = run_quantize(cfg, splits)
    assert set(m["test"]) >= {"auroc", "aupr", "balanced_accuracy"}
    assert m["weights"]["by_bits"]["2"]["params"] > 0 and m["weights"]["by_bits"]["8"]["params"] > 0
    assert m["scan_gap"]["max_abs_lsb"] == 0.0  # no scan in a transformer
    loaded, _ = load_quant(card, tmp_path / "q" / "quant.pt")
    assert loaded.input_scale() == m["input_scale"] > 0


def _producer_through_layout(proto: onnx.ModelProto, name: str) -> str:
    """Op type that produced `name`, looking through Reshape/Transpose (layout) and Cast (float64 regions)."""
    by_out = {o: n for n in proto.graph.node for o in n.output}
    node = by_out.get(name)
    while node is not None and node.op_type in ("Reshape", "Transpose", "Cast"):
        node = by_out.get(node.input[0])
    return node.op_type if node is not None else "initializer"


def test_export_scan_form_checks_and_matches_onnxruntime(vit, float_ckpt, tmp_path):
    from edgeflow.export.onnx import export_qcdq, ort_run

    card, _ = vit
    q = from_float(card, QuantPolicy.from_card(card, 2), float_ckpt)
    x = _x(card, 6, seed=1)
    calibrate(q, x)
    path = tmp_path / "vit.onnx"
    proto = export_qcdq(q, x, path, form="scan")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    # one QuantizeLinear per activation tensor: input, q_tok, 14 per layer, q_norm, head input
    n_q = sum(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    assert n_q == 2 + 14 * card.arch.n_blocks + 2
    # every MatMul and Softmax input is an int8 tensor (a DequantizeLinear, up to layout ops and Casts)
    for n in proto.graph.node:
        if n.op_type in ("MatMul", "Softmax"):
            assert all(_producer_through_layout(proto, i) == "DequantizeLinear" for i in n.input), n.name
    with torch.no_grad():
        ref = q(torch.as_tensor(x)).numpy()
    got = ort_run(path, x)
    diff = float(np.abs(ref - got).max())
    print(f"vit-tiny-eeg ORT vs brevitas max |logit diff| on {len(x)} windows: {diff:.3g}")
    assert diff <= 1e-4
