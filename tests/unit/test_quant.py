"""Quantization: bit-width policy, 2-bit weights, QAT step, PTQ calibration, checkpoints, scan gap, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgeflow.cards import load_card
from edgeflow.errors import CardError
from edgeflow.nn import build_model
from edgeflow.quant.layers import QuantPolicy
from edgeflow.quant.ptq import calibrate, from_float
from edgeflow.train.checkpoint import save_checkpoint

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def micro():
    card = load_card("femba-micro")
    torch.manual_seed(0)
    return card, build_model(card)


@pytest.fixture(scope="module")
def float_ckpt(micro, tmp_path_factory):
    card, model = micro
    return save_checkpoint(tmp_path_factory.mktemp("f") / "float.pt", model, card, "final", 0)


def _x(n=6, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 22, 1280)).astype(np.float32)


def test_policy_card_overrides_and_exact_paths():
    card = load_card("femba-mini")
    p = QuantPolicy.from_card(card, 2)
    assert p.bits("patch_embed") == 8 and p.bits("head") == 8 and p.bits("blocks.1.rev.conv1d") == 8
    assert p.bits("blocks.0.fwd.in_proj") == 2
    p2 = QuantPolicy(2, overrides={"blocks.0.fwd.in_proj": 4, "in_proj": 8})
    assert p2.bits("blocks.0.fwd.in_proj") == 4 and p2.bits("blocks.0.rev.in_proj") == 8


@pytest.mark.parametrize("bits", [3, 16, 1])
def test_unsupported_bit_width_is_one_line_error(bits):
    with pytest.raises(CardError, match=f"unsupported weight bit width {bits}"):
        QuantPolicy(bits)
    with pytest.raises(CardError, match="unknown layer"):
        QuantPolicy(2, overrides={"in_prj": 4})


def test_two_bit_weights_take_at_most_three_values(micro, float_ckpt):
    card, _ = micro
    q = from_float(card, QuantPolicy.from_card(card, 2), float_ckpt)
    seen = 0
    for name, mod in q.named_modules():
        if hasattr(mod, "weight_quant") and name.endswith(("in_proj", "x_proj", "dt_proj", "out_proj")):
            qw = mod.quant_weight()
            assert int(qw.bit_width) == 2
            ints = qw.int()
            for row in ints:  # per output channel: symmetric narrow range {-1, 0, 1}
                assert set(torch.unique(row).tolist()) <= {-1, 0, 1}
            assert torch.unique(qw.scale).numel() > 1  # per-channel scales, not one per tensor
            seen += 1
    assert seen == 8
    assert int(q.patch_embed.quant_weight().bit_width) == 8


def test_float_weights_load_into_quant_model(micro, float_ckpt):
    card, fm = micro
    q = from_float(card, QuantPolicy(8), float_ckpt)
    assert torch.equal(q.blocks[0].fwd.in_proj.weight, fm.blocks[0].fwd.in_proj.weight)
    assert torch.equal(q.pos_embed, fm.pos_embed)


def test_checkpoint_for_other_card_names_tensor(tmp_path):
    mini = load_card("femba-mini")
    p = save_checkpoint(tmp_path / "m.pt", build_model(mini), mini, "final", 0)
    micro = load_card("femba-micro")
    with pytest.raises(CardError, match="trained for card 'femba-mini'"):
        from_float(micro, QuantPolicy(2), p)
    state = torch.load(p, weights_only=False)
    state["card"] = "femba-micro"
    torch.save(state, p)
    with pytest.raises(CardError, match=r"tensor '[\w.]+' has shape"):
        from_float(micro, QuantPolicy(2), p)


def test_qat_step_changes_weights_and_lowers_loss(micro, float_ckpt):
    card, _ = micro
    q = from_float(card, QuantPolicy.from_card(card, 2), float_ckpt)
    x = torch.from_numpy(_x(8))
    y = torch.arange(8) % 2
    calibrate(q, x.numpy())
    q.train()
    w0 = q.blocks[0].fwd.in_proj.weight.detach().clone()
    opt = torch.optim.SGD(q.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    before = loss_fn(q(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    q.eval()
    with torch.no_grad():
        after = loss_fn(q(x), y)
    assert not torch.equal(w0, q.blocks[0].fwd.in_proj.weight)
    assert float(after) < float(before.detach())


def test_ptq_calibration_sets_scan_state_scales(micro, float_ckpt):
    card, _ = micro
    q = from_float(card, QuantPolicy.from_card(card, 4), float_ckpt)
    assert all(float(m.state_scale.abs().sum()) == 0 for m in q.mixers)
    calibrate(q, _x(8))
    for m in q.mixers:
        assert (m.state_scale > 0).all()


def test_quant_checkpoint_round_trip_and_scan_gap(micro, float_ckpt, tmp_path, small_corpus):
    from edgeflow.quant.qat import QuantConfig, load_quant, load_splits, run_quantize

    card, _ = micro
    splits = load_splits(card, corpus=Path(small_corpus))
    cfg = QuantConfig(card, float_ckpt, QuantPolicy.from_card(card, 2), "qat", tmp_path / "q", epochs=1,
                      progress=False, max_steps=2, calib_windows=16)
    m = run_quantize(cfg, splits)
    assert set(m["test"]) >= {"auroc", "aupr", "balanced_accuracy"}
    assert m["weights"]["by_bits"]["2"]["params"] > 0 and m["weights"]["by_bits"]["8"]["params"] > 0
    # the integer scan (edgeflow.quant.intscan) stays within one LSB of the QAT float scan
    assert m["scan_gap"]["max_abs_lsb"] <= 1.0 and m["scan_gap"]["frac_gt1_lsb"] == 0.0
    from edgeflow.train.common import predict_proba
    from edgeflow.train.metrics import binary_metrics

    loaded, _ = load_quant(card, tmp_path / "q" / "quant.pt")
    assert loaded.input_scale() == m["input_scale"]
    # the reloaded model reproduces the metrics the run measured on its in-memory model
    assert binary_metrics(splits["test"].y, predict_proba(loaded, splits["test"].x)) == m["test"]
    with pytest.raises(CardError, match="not a quantized checkpoint"):
        load_quant(card, float_ckpt)


def test_qat_resume_continues_from_last_epoch(micro, float_ckpt, tmp_path, small_corpus):
    from dataclasses import replace

    from edgeflow.quant.qat import QuantConfig, load_splits, run_quantize

    card, _ = micro
    splits = load_splits(card, corpus=Path(small_corpus))
    cfg = QuantConfig(card, float_ckpt, QuantPolicy.from_card(card, 4), "qat", tmp_path / "r", epochs=1,
                      progress=False, max_steps=1, calib_windows=8)
    assert [h["epoch"] for h in run_quantize(cfg, splits)["qat_history"]] == [0]
    m = run_quantize(replace(cfg, epochs=2, resume=True), splits)
    assert [h["epoch"] for h in m["qat_history"]] == [0, 1]
