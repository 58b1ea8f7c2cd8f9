"""Regression tests of the hardening issue's serious findings: no data loss, no code from checkpoints."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from edgeflow.cli import main

pytestmark = pytest.mark.unit

CASES = Path(__file__).resolve().parents[1] / "cases"
MICRO_ONNX = CASES / "femba-micro-w2" / "model.onnx"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert "\n" not in err, err
    return err


# ---- 1. build --out never replaces a folder that is not an earlier build ------------------------------------

def test_build_refuses_to_replace_a_folder_that_is_not_a_build(tmp_path, capsys):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("years of work")
    (precious / "data").mkdir()
    (precious / "data" / "subject1.edf").write_bytes(b"\x00" * 64)
    rc = main(["build", "--target", "host", "--card", "femba-micro", "--onnx", str(MICRO_ONNX),
               "--out", str(precious)])
    assert rc == 2
    err = _one_line_error(capsys)
    assert str(precious) in err and "not an edgeflow build" in err
    assert (precious / "chapter1.tex").read_text() == "years of work"
    assert (precious / "data" / "subject1.edf").stat().st_size == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # no temporary folder left beside it


def test_build_refuses_an_out_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    assert main(["build", "--target", "host", "--card", "femba-micro", "--onnx", str(MICRO_ONNX),
                 "--out", str(f)]) == 2
    assert "not a folder" in _one_line_error(capsys)
    assert f.read_text() == "keep me"


def test_library_build_refuses_too(tmp_path):
    from edgeflow.build import BuildError, build

    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "a.txt").write_text("x")
    with pytest.raises(BuildError, match="not an edgeflow build"):
        build(MICRO_ONNX, "host", keep)
    assert (keep / "a.txt").read_text() == "x"


@pytest.mark.c
def test_build_replaces_an_earlier_build_and_marks_it(tmp_path, capsys):
    from edgeflow.build import BUILD_MARKER

    out = tmp_path / "b"
    args = ["build", "--target", "host", "--card", "femba-micro", "--onnx", str(MICRO_ONNX), "--out", str(out)]
    assert main(args) == 0
    assert (out / BUILD_MARKER).is_file()
    (out / "stale.txt").write_text("from the earlier build")
    assert main(args) == 0
    assert (out / BUILD_MARKER).is_file() and not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # the old build moved aside was removed


# ---- 2. train --subjects 0 (or any other corpus) never wipes the cached default corpus -----------------------

def _fake_default_corpus(cache: Path) -> Path:
    from edgeflow.data.dataset import DEFAULT_CORPUS
    from edgeflow.data.synthetic import GENERATOR_VERSION

    d = cache / "corpus-default"
    d.mkdir(parents=True)
    (d / "corpus.json").write_text(json.dumps({"version": GENERATOR_VERSION, **DEFAULT_CORPUS}))
    (d / "labels.csv").write_text("file,subject,label\n")
    (d / "sub-000.edf").write_bytes(b"recording")
    return d


def test_train_subjects_zero_keeps_the_cached_corpus(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEFLOW_CACHE", str(tmp_path))
    d = _fake_default_corpus(tmp_path)
    with pytest.raises(SystemExit) as e:  # refused by the option's range, before anything is touched
        main(["train", "--subjects", "0", "--no-progress"])
    assert e.value.code == 2
    assert "--subjects" in capsys.readouterr().err
    assert (d / "sub-000.edf").read_bytes() == b"recording"


def test_default_corpus_with_bad_parameters_touches_nothing(tmp_path, monkeypatch):
    from edgeflow.data.dataset import ensure_default_corpus
    from edgeflow.errors import DataError

    monkeypatch.setenv("EDGEFLOW_CACHE", str(tmp_path))
    d = _fake_default_corpus(tmp_path)
    for kwargs in ({"n_subjects": 0}, {"n_subjects": -3}, {"duration_s": 0.0}, {"sfreq": 0.0}):
        with pytest.raises(DataError):
            ensure_default_corpus(progress=False, **kwargs)
    assert (d / "sub-000.edf").read_bytes() == b"recording"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus-default"]


def test_another_corpus_goes_beside_the_default_one(tmp_path, monkeypatch):
    from edgeflow.data.dataset import ensure_default_corpus

    monkeypatch.setenv("EDGEFLOW_CACHE", str(tmp_path))
    d = _fake_default_corpus(tmp_path)
    got = ensure_default_corpus(n_subjects=2, duration_s=6.0, progress=False)
    assert got != d and got.parent == tmp_path and (got / "labels.csv").is_file()
    assert len(list(got.glob("*.edf"))) == 2
    assert (d / "sub-000.edf").read_bytes() == b"recording"
    assert ensure_default_corpus(n_subjects=2, duration_s=6.0, progress=False) == got  # cached
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["corpus-default", got.name])


# ---- 3. a crafted checkpoint cannot run code ------------------------------------------------------------------

class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    ckpt = tmp_path / "evil.pt"
    with open(ckpt, "wb") as f:
        pickle.dump({"model": {}, "card": "femba-mini", "x": _Payload(marker)}, f)
    return ckpt, marker


def test_crafted_checkpoint_does_not_run_code(tmp_path):
    from edgeflow.errors import CardError
    from edgeflow.train.checkpoint import read_checkpoint

    ckpt, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(CardError, match="not readable"):
        read_checkpoint(ckpt)
    assert not marker.exists()


def test_build_with_crafted_ckpt_fails_one_line_without_running_it(tmp_path, capsys):
    ckpt, marker = _evil_checkpoint(tmp_path)
    rc = main(["build", "--target", "host", "--card", "femba-mini", "--ckpt", str(ckpt),
               "--out", str(tmp_path / "b")])
    assert rc == 2
    assert "evil.pt" in _one_line_error(capsys)
    assert not marker.exists() and not (tmp_path / "b").exists()


def test_checkpoints_we_write_load_with_the_safe_loader(tmp_path):
    import numpy as np
    import torch

    from edgeflow.cards import load_card
    from edgeflow.nn import build_model
    from edgeflow.train.checkpoint import read_checkpoint, save_checkpoint

    card = load_card("femba-micro")
    model = build_model(card)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.zeros(1, card.input.n_channels, card.input.window_samples)).sum().backward()
    opt.step()
    p = save_checkpoint(tmp_path / "c.pt", model, card, "finetune", 3, opt,
                        {"auroc": np.float64(0.5), "hist": [np.float32(1.0)], "arr": np.arange(3)},
                        {"bits": np.int64(2)})
    state = read_checkpoint(p)
    assert state["epoch"] == 3 and state["metrics"]["auroc"] == 0.5 and state["extra"]["bits"] == 2
    assert state["metrics"]["arr"] == [0, 1, 2]
    assert state["optimizer"]["state"]  # the optimizer state survives for --resume
    for name in ("femba-mini.pt", "femba-mini-w2.quant.pt"):  # the shipped checkpoints
        shipped = Path(__file__).resolve().parents[2] / "models" / name
        assert "model" in read_checkpoint(shipped)

