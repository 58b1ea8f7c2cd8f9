"""Sensor cards and raw recordings: the card kind without montage or [arch], cards written into a build and read
back equal, the model-input check, and the CSV / NPY / NPZ / WAV readers (orientation, header, rate, scaling)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgeflow.card_match import card_toml, check_card_agrees, minimal_card, window_fits
from edgeflow.cards import available_cards, card_from_dict, load_card
from edgeflow.data.raw import read_sensor, sensor_windows
from edgeflow.errors import CardError, DataError

pytestmark = pytest.mark.unit


def _sensor(**inp) -> object:
    base = {"channels": 3, "sample_rate": 50.0, "window_s": 2.0}
    return card_from_dict({"model": {"name": "s", "kind": "sensor"}, "input": {**base, **inp}})


def test_shipped_sensor_card_is_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    card = load_card("accel-har")
    assert card.kind == "sensor" and card.arch is None and "accel-har" in available_cards()
    assert card.input.montage == ("x", "y", "z") and card.input.n_channels == 3
    assert card.input.window_samples == 100 and card.input.stride_s == 1.0 and card.input.scale == (0.10197,)


def test_a_sensor_card_needs_only_its_own_fields():
    card = _sensor()
    assert card.input.montage == ("ch1", "ch2", "ch3") and card.input.stride_s == 2.0   # stride defaults to window
    assert card.input.bandpass is None and card.input.scale is None


@pytest.mark.parametrize("name", available_cards())
def test_every_shipped_card_round_trips_through_the_build_copy(name, tmp_path):
    card = load_card(name)
    (tmp_path / "card.toml").write_text(card_toml(card))
    again = load_card(tmp_path / "card.toml")
    assert replace(again, path=None) == replace(card, path=None)


def test_minimal_card_from_the_model_input():
    card = minimal_card(Path("my-net.onnx"), (1, 8, 640), 128.0)     # EEGNet-style (1, C, T) after the batch
    assert (card.name, card.kind, card.input.n_channels, card.input.window_s) == ("my-net", "sensor", 8, 5.0)
    with pytest.raises(CardError, match=r"my-net\.onnx: no --card given: the model's input is 8 channels x 640"):
        minimal_card(Path("my-net.onnx"), (8, 640), None)
    with pytest.raises(CardError, match=r"input \(without batch\) is \[2, 3, 4\], not \(channels, samples\)"):
        minimal_card(Path("my-net.onnx"), (2, 3, 4), 50.0)


def test_window_fits_leading_ones_only():
    assert window_fits((3, 100), (3, 100)) and window_fits((3, 100), (1, 3, 100))
    assert not window_fits((3, 100), (100, 3)) and not window_fits((3, 100), (2, 3, 100))


def test_a_contradicting_card_names_the_field(tmp_path):
    a, b = _sensor(), _sensor(scale=2.0)
    check_card_agrees(a, replace(a, input=replace(a.input, stride_s=0.5)), tmp_path)    # the stride is stream's
    with pytest.raises(CardError, match=r"input\.scale \[2\.0\] vs none; drop --card"):
        check_card_agrees(a, b, tmp_path)


# ---- readers ---------------------------------------------------------------------------------------------------

@pytest.fixture
def card():
    return load_card("accel-har")


@pytest.fixture
def sig() -> np.ndarray:
    """(160, 3) distinct values per sample and axis."""
    return np.round(np.arange(480, dtype=np.float64).reshape(160, 3) * 0.25 - 7.0, 4)


def _windows(path: Path, card) -> np.ndarray:
    return sensor_windows(read_sensor(path, card), card)


def _want(sig: np.ndarray, card) -> np.ndarray:
    return np.stack([sig[k:k + 100].T * 0.10197 for k in range(0, 61, 50)]).astype(np.float32)


@pytest.mark.parametrize("delim, header", [(",", "x,y,z"), (";", "x;y;z"), ("\t", None), (" ", None)])
def test_csv_with_or_without_header(tmp_path, card, sig, delim, header):
    lines = ([header] if header else []) + [delim.join(map(str, r)) for r in sig]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    x = _windows(tmp_path / "r.csv", card)
    assert x.shape == (2, 3, 100)
    np.testing.assert_array_equal(x, _want(sig, card)[:2])


def test_csv_header_names_pick_the_card_columns(tmp_path, card, sig):
    """A header with the card's channel names (and more) selects and orders those columns."""
    rows = ["t,z,x,y"] + [f"{k},{r[2]},{r[0]},{r[1]}" for k, r in enumerate(sig)]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    np.testing.assert_array_equal(_windows(tmp_path / "r.csv", card), _want(sig, card)[:2])


@pytest.mark.parametrize("orient", ["samples-channels", "channels-samples"])
def test_npy_either_orientation(tmp_path, card, sig, orient):
    np.save(tmp_path / "r.npy", sig if orient == "samples-channels" else sig.T.copy())
    np.testing.assert_array_equal(_windows(tmp_path / "r.npy", card), _want(sig, card)[:2])


def test_npz_single_array_or_named_with_its_rate(tmp_path, card, sig):
    np.savez(tmp_path / "a.npz", whatever=sig)
    np.savez(tmp_path / "b.npz", data=sig.T, labels=np.zeros(3), fs=np.array(50.0))
    for name in ("a.npz", "b.npz"):
        np.testing.assert_array_equal(_windows(tmp_path / name, card), _want(sig, card)[:2])


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_wav_pcm16_and_float(tmp_path, dtype):
    from scipy.io import wavfile

    card = _sensor()
    a = (np.arange(300).reshape(100, 3) - 150).astype(np.float64)
    data = a.astype(np.int16) if dtype == "int16" else (a / 32768.0).astype(np.float32)
    wavfile.write(tmp_path / "r.wav", 50, data)
    rec = read_sensor(tmp_path / "r.wav", card)
    assert rec.rate == 50.0
    np.testing.assert_allclose(rec.data, a.T / 32768.0, rtol=0, atol=1e-9)


def test_windows_apply_offset_and_scale_per_channel(tmp_path):
    card = _sensor(scale=[1.0, 2.0, 0.5], offset=[0.0, 1.0, -1.0], window_s=0.04, stride_s=0.02)   # 2 samples
    np.save(tmp_path / "r.npy", np.array([[1.0, 1.0, 1.0], [2.0, 3.0, 4.0], [5.0, 6.0, 7.0], [0.0, 0.0, 0.0]]))
    x = _windows(tmp_path / "r.npy", card)
    np.testing.assert_array_equal(x, np.array([[[1, 2], [0, 4], [1, 2.5]], [[2, 5], [4, 10], [2.5, 4]],
                                               [[5, 0], [10, -2], [4, 0.5]]], np.float32))


def test_too_short_is_one_line(tmp_path, card):
    np.save(tmp_path / "r.npy", np.zeros((99, 3)))
    with pytest.raises(DataError, match=r"r\.npy: no usable 2 s window \(recording lasts 1\.98 s, 99 samples at "
                                         r"50 Hz, shorter than one window of 100\)$"):
        _windows(tmp_path / "r.npy", card)


def test_a_card_with_an_electrode_map_round_trips(tmp_path):
    text = (Path(__file__).resolve().parents[2] / "models" / "femba-micro.toml").read_text()
    (tmp_path / "cap.toml").write_text(text.replace('montage = "tcp"', 'montage = "tcp"\nelectrodes = { FP1 = "C29", '
                                                                       'FP2 = "C16" }'))
    card = load_card(tmp_path / "cap.toml")
    assert card.input.electrodes == (("FP1", "C29"), ("FP2", "C16"))
    (tmp_path / "card.toml").write_text(card_toml(card))
    assert replace(load_card(tmp_path / "card.toml"), path=None) == replace(card, path=None)
