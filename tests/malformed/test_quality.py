"""Data-quality news is shown, not swallowed, and the checks' mirrored constants match the real ones."""

from __future__ import annotations

import argparse
import io
import warnings

import numpy as np
import pytest
from rich.console import Console

from edgeflow.cli import main

from . import inputs as mk

pytestmark = pytest.mark.unit


def _flat_and_clipped() -> np.ndarray:
    x = mk.edf.signals(12.0, 256.0)
    x[0] = np.clip(x[0] * 10.0, -100.0, 100.0)   # EEG FP1-REF clipped at +-100 uV
    x[14] = x[8]                                  # T5 == O1: the T5-O1 derivation is flat
    return x


def test_bdf_named_edf_is_read_as_bdf(tmp_path):
    from edgeflow.data.eeg import DataWarning, Preprocess, load_windows

    pp = Preprocess()
    named = mk.recording(tmp_path, "rec.edf", kind="bdf")
    real = mk.recording(tmp_path, "rec.bdf", kind="bdf")
    with pytest.warns(DataWarning, match=r"rec\.edf: a BDF file named \.edf; read as BDF"):
        got = load_windows(named, pp)
    np.testing.assert_array_equal(got, load_windows(real, pp))


def test_stream_shows_data_quality_warnings(tmp_path):
    from edgeflow.commands.stream import read_windows

    rec = mk.recording(tmp_path, "q.edf", data=_flat_and_clipped())
    buf = io.StringIO()
    a = argparse.Namespace(input=str(rec), card="femba-micro", stride=None, windows=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape as a raw warning either
        x, meta = read_windows(a, Console(file=buf, width=400))
    lines = buf.getvalue().strip().splitlines()
    assert x.shape == (2, 22, 1280)
    assert f"edgeflow: warning: {rec}: clipped channel(s) EEG FP1-REF (over 1% of the samples at the range limit)" \
        in lines
    assert f"edgeflow: warning: {rec}: flat channel(s) T5-O1" in lines
    assert f"edgeflow: warning: {rec}: bridged channel(s) EEG O1-REF = EEG T5-REF (near-identical signals: gel " \
        "bridge or a duplicated channel)" in lines  # T5 is a copy of O1: the cause of the flat T5-O1
    assert meta["warnings"] and len(lines) == len(meta["warnings"]) == 3


def test_inspect_lists_quality_problems_and_succeeds(tmp_path, capsys):
    rec = mk.recording(tmp_path, "q.edf", data=_flat_and_clipped())
    assert main(["data", "inspect", str(rec), "--card", "femba-micro"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "clipped channel(s) EEG FP1-REF" in out and "flat channel(s) T5-O1" in out


def test_clean_recording_has_no_quality_warning(tmp_path):
    from edgeflow.data.eeg import Preprocess, load_windows

    rec = mk.recording(tmp_path, "clean.edf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_windows(rec, Preprocess()).shape == (2, 22, 1280)


def test_mirrored_constants_match_their_sources():
    from edgeflow import cards
    from edgeflow.plan import estimate
    from edgeflow.quant.intscan import D_STATE_MAX
    from edgeflow.quant.layers import WEIGHT_BITS, WEIGHT_GROUPS

    assert cards.D_STATE_MAX == D_STATE_MAX
    assert cards.QUANT_BITS == WEIGHT_BITS
    assert estimate.WEIGHT_GROUPS == WEIGHT_GROUPS
    assert estimate.MIN_WEIGHT_BITS == min(WEIGHT_BITS)
