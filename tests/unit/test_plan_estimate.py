"""The card-level plan estimate is a lower bound of the real plan (so it never refuses a model that fits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeflow.cards import available_cards, load_card
from edgeflow.plan.estimate import check_fits, estimate
from edgeflow.plan.levels import PlanError
from edgeflow.target import load_target

pytestmark = pytest.mark.unit

CASES = Path(__file__).resolve().parents[1] / "cases"


@pytest.mark.parametrize("case,card", [("femba-micro-w2", "femba-micro"), ("vit-tiny-w2", "vit-tiny-eeg"),
                                       ("femba-mini-w2", "femba-mini")])
def test_estimate_is_below_the_real_plan(tmp_path, case, card):
    from edgeflow.backends.host import compile_host
    from edgeflow.ir.from_onnx import load_onnx

    report = compile_host(load_onnx(CASES / case / "model.onnx"), tmp_path, compile_binary=False,
                          target=load_target("host")).report
    est = estimate(load_card(card), 2)
    assert 0 < est.weight_bytes <= report["weight_bytes"]
    assert 0 < est.arena_bytes <= report["arena_bytes"]


def test_every_shipped_card_fits_every_target_by_the_estimate():
    for name in available_cards():
        for target in ("host", "gap9", "rv32-virt"):
            for bits in (2, 4, 8, None):
                check_fits(load_card(name), load_target(target), bits)


def test_refusal_names_card_level_and_bytes(tmp_path):
    text = (Path(__file__).resolve().parents[2] / "models" / "femba-micro.toml").read_text()
    p = tmp_path / "wide.toml"
    p.write_text(text.replace("embed_channels = 4", "embed_channels = 2000"))
    with pytest.raises(PlanError, match=rf"^{p}: cannot fit target 'gap9': activations need at least 7,040,000 "
                                        r"bytes of L2 \(window 5 s, 80 tokens x d_model 22000\), usable 1,441,792$"):
        check_fits(load_card(p), load_target("gap9"), 2)
