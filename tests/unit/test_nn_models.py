"""FEMBA and transformer models: sizes against DESIGN, shapes, token layout, masking, analytic summary."""

from __future__ import annotations

import functools

import pytest
import torch
from rich.console import Console

from edgeflow.cards import load_card
from edgeflow.errors import CardError
from edgeflow.nn import build_model
from edgeflow.nn.femba import FEMBA
from edgeflow.nn.patching import PRETRAIN_ONLY, feature_index, inference_param_count
from edgeflow.nn.summary import layer_table, render_table, totals
from edgeflow.nn.transformer import EEGTransformer

pytestmark = pytest.mark.unit

CARDS = ["femba-tiny", "femba-mini", "femba-micro", "vit-tiny-eeg"]
SMALL = ["femba-mini", "femba-micro", "vit-tiny-eeg"]


@functools.cache
def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_card(name)).eval()


def _window(card_name: str, batch: int = 2, seed: int = 0) -> torch.Tensor:
    card = load_card(card_name)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, card.input.n_channels, card.input.window_samples, generator=g)


def test_build_dispatch() -> None:
    assert isinstance(_model("femba-mini"), FEMBA)
    assert isinstance(_model("vit-tiny-eeg"), EEGTransformer)
    with pytest.raises(CardError):
        FEMBA(load_card("vit-tiny-eeg"))


def test_femba_scan_modes_agree() -> None:
    model = _model("femba-micro")
    x = _window("femba-micro")
    with torch.no_grad():
        model.scan_mode = "chunked"
        chunked = model(x)
        model.scan_mode = "sequential"
        sequential = model(x)
    assert all(b.fwd.scan_mode == b.rev.scan_mode == "sequential" for b in model.blocks)
    torch.testing.assert_close(chunked, sequential, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="scan mode"):
        model.scan_mode = "fast"


def test_femba_tiny_matches_design_numbers() -> None:
    card = load_card("femba-tiny")
    model = _model("femba-tiny")
    assert (card.d_model, card.d_inner, card.n_tokens) == (385, 1540, 80)
    direction = model.blocks[0].fwd
    assert tuple(direction.in_proj.weight.shape) == (3080, 385)
    assert tuple(direction.x_proj.weight.shape) == (57, 1540)
    assert tuple(direction.dt_proj.weight.shape) == (1540, 25)
    assert tuple(direction.out_proj.weight.shape) == (385, 1540)
    per_direction = sum(p.numel() for p in direction.parameters())
    assert abs(per_direction - 1.94e6) <= 0.01 * 1.94e6
    params, macs = totals(card)
    assert 7.5e6 <= params <= 7.9e6
    assert 595e6 <= macs <= 640e6
    rows = [r for r in layer_table(card) if r.name.startswith("blocks.0.fwd.")]
    direction_macs = sum(r.macs for r in rows)
    in_proj = next(r.macs for r in rows if r.name.endswith("in_proj"))
    assert 0.55 <= in_proj / direction_macs <= 0.60


@pytest.mark.parametrize("name", CARDS)
def test_analytic_params_equal_module_params(name: str) -> None:
    model = _model(name)
    params, _ = totals(load_card(name))
    assert params == inference_param_count(model)
    pretrain_only = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] in PRETRAIN_ONLY)
    assert params + pretrain_only == sum(p.numel() for p in model.parameters())
    # every named table row that is a module of the model has exactly the analytic params
    modules = dict(model.named_modules())
    for row in layer_table(load_card(name)):
        if row.name in modules and row.name != "head":
            assert row.params == sum(p.numel() for p in modules[row.name].parameters()), row.name


@pytest.mark.parametrize("name", CARDS)
def test_logits_shape(name: str) -> None:
    card = load_card(name)
    with torch.no_grad():
        logits = _model(name)(_window(name, batch=1 if name == "femba-tiny" else 2))
    assert logits.shape == (1 if name == "femba-tiny" else 2, card.arch.n_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["femba-micro", "vit-tiny-eeg"])
def test_token_layout(name: str) -> None:
    """Changing one (pr x pt) input patch changes only its token, at features e*rows + row."""
    card = load_card(name)
    model = _model(name)
    pr, pt = card.arch.patch
    row, tok = 3, 17
    x = _window(name)
    x2 = x.clone()
    x2[:, row * pr:(row + 1) * pr, tok * pt:(tok + 1) * pt] += torch.randn(2, pr, pt)
    p, p2 = model.patchify(x), model.patchify(x2)
    assert p.shape == (2, card.n_tokens, card.input.n_channels * pt)
    changed = (p != p2).any(dim=-1).any(dim=0)
    assert changed.nonzero().flatten().tolist() == [tok]
    with torch.no_grad():
        t, t2 = model.tokenize(x), model.tokenize(x2)
    changed = (t != t2).any(dim=-1).any(dim=0)
    assert changed.nonzero().flatten().tolist() == [tok]
    feats = (t[:, tok] != t2[:, tok]).any(dim=0).nonzero().flatten().tolist()
    assert feats == sorted(feature_index(e, row, card.token_rows) for e in range(card.arch.embed_channels))
    # patchify value index = channel * pt + sample
    assert torch.equal(p[:, tok].reshape(2, card.input.n_channels, pt), x[:, :, tok * pt:(tok + 1) * pt])


@pytest.mark.parametrize("name", ["femba-micro", "vit-tiny-eeg"])
def test_mask_replaces_only_masked_tokens(name: str) -> None:
    model = _model(name)
    x = _window(name)
    mask = torch.zeros(2, model.n_tokens, dtype=torch.bool)
    mask[0, [0, 5, 79]] = True
    mask[1, 40] = True
    with torch.no_grad():
        plain, masked = model.embed(x), model.embed(x, mask)
        expected = model.mask_token[0, 0] + model.pos_embed[0]
    differs = (plain != masked).any(dim=-1)
    assert torch.equal(differs, mask)
    torch.testing.assert_close(masked[mask], expected[mask.nonzero()[:, 1]])
    with torch.no_grad():
        assert not torch.allclose(model.features(x), model.features(x, mask))


@pytest.mark.parametrize("name", SMALL)
def test_reconstruct_matches_patchify_shape(name: str) -> None:
    model = _model(name)
    x = _window(name)
    mask = torch.rand(2, model.n_tokens, generator=torch.Generator().manual_seed(0)) < 0.5
    with torch.no_grad():
        rec = model.reconstruct(x, mask)
    assert rec.shape == model.patchify(x).shape


def test_pretrain_and_finetune_backward() -> None:
    torch.manual_seed(0)
    model = build_model(load_card("femba-micro"))
    x = _window("femba-micro")
    mask = torch.zeros(2, model.n_tokens, dtype=torch.bool)
    mask[:, ::3] = True
    loss = (model.reconstruct(x, mask) - model.patchify(x)).square().mean() + model(x).logsumexp(-1).mean()
    loss.backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n


def test_render_table_has_totals() -> None:
    card = load_card("femba-mini")
    console = Console(width=200, record=True)
    console.print(render_table(card))
    text = console.export_text()
    params, macs = totals(card)
    assert "blocks.1.rev.in_proj" in text and "total" in text
    assert f"{params:,}" in text and f"{macs:,}" in text
    assert layer_table(load_card("vit-tiny-eeg"))[-1].name == "head"
