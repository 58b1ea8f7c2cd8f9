"""Unit tests for edgeflow.data.synthetic: determinism, plausibility, class difference, corpus files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.signal import welch

from edgeflow.data.eeg import Preprocess, apply_montage, read_raw
from edgeflow.data.synthetic import ELECTRODES, GENERATOR_VERSION, generate_subject, write_corpus

pytestmark = pytest.mark.unit


def test_same_seed_identical_different_seed_different():
    a = generate_subject(4, True, duration_s=8.0, seed=11).get_data()
    b = generate_subject(4, True, duration_s=8.0, seed=11).get_data()
    c = generate_subject(4, True, duration_s=8.0, seed=12).get_data()
    d = generate_subject(5, True, duration_s=8.0, seed=11).get_data()
    assert a.tobytes() == b.tobytes()
    assert not np.allclose(a, c) and not np.allclose(a, d)


@pytest.mark.parametrize("sfreq", [250.0, 256.0, 512.0])
def test_plausible_referential_eeg(sfreq):
    raw = generate_subject(0, False, duration_s=10.0, sfreq=sfreq)
    assert raw.ch_names == [f"EEG {e}-REF" for e in ELECTRODES] and len(ELECTRODES) == 21
    assert raw.info["sfreq"] == sfreq and raw.n_times == int(10 * sfreq)
    x = raw.get_data()
    assert np.isfinite(x).all()
    assert 5e-6 < np.median(x.std(axis=1)) < 60e-6  # tens of microvolts, in volts
    assert np.abs(x).max() < 1e-3


def test_alpha_is_posterior_and_line_noise_present():
    raw = generate_subject(2, False, duration_s=30.0, line_freq=50.0)
    f, p = welch(raw.get_data(), fs=256, nperseg=512)
    alpha = p[:, (f >= 8) & (f <= 12)].mean(1)
    assert alpha[ELECTRODES.index("O1")] > 3 * alpha[ELECTRODES.index("FP1")]
    line = p[:, np.argmin(abs(f - 50))]
    near = p[:, (f > 40) & (f < 47)].mean(1)
    assert np.median(line / near) > 4


def _delta_alpha(raw) -> float:
    x, _ = apply_montage(raw, "tcp")
    f, p = welch(x, fs=raw.info["sfreq"], nperseg=512)
    delta = p[:, (f >= 1) & (f < 4)].sum(1)
    alpha = p[:, (f >= 8) & (f < 13)].sum(1)
    return float(np.log(delta.mean() / alpha.mean()))


@pytest.mark.parametrize("difficulty", [0.0, 0.5])
def test_abnormal_has_more_slowing(difficulty):
    normal = [_delta_alpha(generate_subject(s, False, 30.0, difficulty=difficulty)) for s in range(8)]
    abnormal = [_delta_alpha(generate_subject(s, True, 30.0, difficulty=difficulty)) for s in range(8, 16)]
    assert np.mean(abnormal) > np.mean(normal) + 0.3
    if difficulty == 0.0:
        assert min(abnormal) > max(normal)


def test_difficulty_shrinks_the_effect():
    def gap(d: float) -> float:
        normal = [_delta_alpha(generate_subject(s, False, 20.0, difficulty=d)) for s in range(6)]
        abnormal = [_delta_alpha(generate_subject(s, True, 20.0, difficulty=d)) for s in range(6, 12)]
        return float(np.mean(abnormal) - np.mean(normal))

    assert gap(0.0) > gap(1.0)


def test_write_corpus(tmp_path):
    out = write_corpus(tmp_path / "c", n_subjects=4, duration_s=6.0, seed=5, progress=False)
    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [f"sub-{i:03d}.edf" for i in range(4)]
    assert sorted(int(r["label"]) for r in rows) == [0, 0, 1, 1]
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["seed"] == 5 and meta["n_subjects"] == 4 and meta["version"] == GENERATOR_VERSION
    raw = read_raw(out / "sub-000.edf")
    assert raw.ch_names[0] == "EEG FP1-REF" and raw.n_times == 6 * 256
    label = int(rows[0]["label"])
    ref = generate_subject(0, bool(label), 6.0, seed=5).get_data()
    assert np.abs(raw.get_data() - ref).max() < 1e-7  # EDF quantisation only
    again = write_corpus(tmp_path / "d", n_subjects=4, duration_s=6.0, seed=5, progress=False)
    for r in rows:
        assert (out / r["file"]).read_bytes() == (again / r["file"]).read_bytes()
    assert Preprocess().window_samples == 1280
