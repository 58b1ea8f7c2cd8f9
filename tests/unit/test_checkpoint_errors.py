"""The one-line error of an unreadable checkpoint keeps torch's reason in whole words."""

from __future__ import annotations

import pickle

import pytest

from edgeflow.errors import CardError
from edgeflow.train import checkpoint

pytestmark = pytest.mark.unit


def _reason(err: CardError, kind: str) -> str:
    msg = str(err)
    assert "\n" not in msg and msg.endswith(")")
    return msg.split(f"({kind}: ", 1)[1][:-1]


def test_long_torch_reason_is_cut_at_a_word_boundary(tmp_path, monkeypatch):
    text = "Weights only load failed. In PyTorch 2.6, we changed the default value of " + "something " * 30

    def refuse(*args, **kwargs):
        raise RuntimeError(text + "\nsecond line")

    monkeypatch.setattr(checkpoint.torch, "load", refuse)
    (tmp_path / "x.pt").write_bytes(b"x")
    with pytest.raises(CardError, match=r"^checkpoint .*x\.pt is not readable \(RuntimeError: Weights only") as ei:
        checkpoint.read_checkpoint(tmp_path / "x.pt")
    reason = _reason(ei.value, "RuntimeError")
    kept = reason.removesuffix(" ...")
    assert kept != reason and text.startswith(kept) and text[len(kept)] == " " and len(reason) <= 160


def test_short_torch_reason_is_whole(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("\ninvalid load key, 'x'.\nmore detail")

    monkeypatch.setattr(checkpoint.torch, "load", refuse)
    (tmp_path / "x.pt").write_bytes(b"x")
    with pytest.raises(CardError) as ei:
        checkpoint.read_checkpoint(tmp_path / "x.pt")
    assert _reason(ei.value, "RuntimeError") == "invalid load key, 'x'."


def test_weights_only_refusal_names_the_unpicklers_verdict(tmp_path):
    """torch's first line of a weights-only refusal only says how to bypass it; the message gives the verdict."""
    ckpt = tmp_path / "evil.pt"
    with open(ckpt, "wb") as f:
        pickle.dump({"model": {}, "f": print}, f)
    with pytest.raises(CardError) as ei:
        checkpoint.read_checkpoint(ckpt)
    reason = _reason(ei.value, "UnpicklingError")
    assert reason.startswith("weights-only unpickler: ") and len(reason) > len("weights-only unpickler: ")
    assert "weights_only" not in reason        # not the advice to load it unsafely
