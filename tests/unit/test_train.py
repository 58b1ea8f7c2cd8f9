"""Training: a step lowers the loss, low-pass target, masks, metrics, resume, DDP under torchrun."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgeflow.cards import load_card
from edgeflow.nn import build_model
from edgeflow.train.metrics import binary_metrics
from edgeflow.train.pretrain import MaskedReconstruction, lowpass, random_mask

pytestmark = pytest.mark.unit


def _batch(card, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, card.input.n_channels, card.input.window_samples, generator=g)
    y = torch.arange(n) % 2
    return x, y


@pytest.mark.parametrize("card_name", ["femba-micro", "vit-tiny-eeg"])
def test_one_finetune_step_lowers_loss(card_name):
    card = load_card(card_name)
    torch.manual_seed(0)
    model = build_model(card)
    x, y = _batch(card)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    before = loss_fn(model(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn(model(x), y)
    assert float(after) < float(before)


def test_one_pretrain_step_lowers_loss():
    card = load_card("femba-micro")
    torch.manual_seed(0)
    model = build_model(card)
    x, _ = _batch(card)
    target = torch.from_numpy(lowpass(x.numpy(), card.input.sample_rate, 30.0))
    mask = random_mask(len(x), card.n_tokens, 0.5, torch.Generator().manual_seed(1))
    obj = MaskedReconstruction(model)
    opt = torch.optim.SGD(obj.parameters(), lr=0.05)
    before = obj(x, target, mask)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = obj(x, target, mask)
    assert float(after) < float(before)


def test_lowpass_removes_high_frequencies():
    fs = 256.0
    t = np.arange(1280) / fs
    slow, fast = np.sin(2 * np.pi * 5 * t), np.sin(2 * np.pi * 60 * t)
    out = lowpass((slow + fast)[None, None].astype(np.float32), fs, 30.0)[0, 0]
    mid = slice(200, -200)
    assert np.abs(out[mid] - slow[mid]).max() < 0.02


def test_random_mask_exact_count():
    m = random_mask(5, 80, 0.5, torch.Generator().manual_seed(0))
    assert m.shape == (5, 80) and (m.sum(dim=1) == 40).all()
    assert not torch.equal(m[0], m[1])


def test_binary_metrics_known_values():
    y = np.array([0, 0, 1, 1])
    m = binary_metrics(y, np.array([0.1, 0.4, 0.35, 0.8]))
    assert m["auroc"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx(0.75)  # predictions 0,0,0,1
    perfect = binary_metrics(y, np.array([0.1, 0.2, 0.7, 0.9]))
    assert perfect["auroc"] == 1.0 and perfect["aupr"] == 1.0


def _train_args(corpus, out, *extra):
    return ["train", "--card", "femba-micro", "--corpus", str(corpus), "--out", str(out),
            "--pretrain-epochs", "1", "--finetune-epochs", "1", "--no-progress", *extra]


def test_train_end_to_end_and_resume(small_corpus, tmp_path):
    from edgeflow.cli import main

    out = tmp_path / "run"
    assert main(_train_args(small_corpus, out, "--max-steps", "2")) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["test"]) >= {"auroc", "aupr", "balanced_accuracy"}
    assert len(m["finetune_history"]) == 1
    assert set(m["subjects"]) == {"train", "val", "test"}
    # resume: the fine-tuning continues at epoch 2 instead of starting over
    args = _train_args(small_corpus, out, "--max-steps", "2", "--resume")
    args[args.index("--finetune-epochs") + 1] = "2"
    assert main(args) == 0
    m2 = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in m2["finetune_history"]] == [0, 1]
    assert m2["pretrain_loss"] == []  # pre-training was not repeated


def test_checkpoint_mismatch_names_tensor(tmp_path):
    from edgeflow.errors import CardError
    from edgeflow.train.checkpoint import load_model, save_checkpoint

    mini = load_card("femba-mini")
    p = save_checkpoint(tmp_path / "m.pt", build_model(mini), mini, "final", 0)
    micro = load_card("femba-micro")
    with pytest.raises(CardError, match="femba-mini"):
        load_model(micro, p)
    state = torch.load(p, weights_only=False)
    state["card"] = "femba-micro"
    torch.save(state, p)
    with pytest.raises(CardError, match="tensor '"):
        load_model(micro, p)


def test_ddp_two_processes_one_step(small_corpus, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "edgeflow", *_train_args(small_corpus, out, "--max-steps", "1")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2
    assert (out / "model.pt").exists()
