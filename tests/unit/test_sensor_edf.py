"""EDF/BDF recordings for sensor cards (data/sensor_edf.py): the card's channels by label (any order, extra signals
ignored) or in order for a card that counts them, physical values as the file scales them, EDF+D gaps kept (no
window across one, each window's start), BDF's 24-bit samples; every refusal one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeflow.cards import card_from_dict, load_card
from edgeflow.cli import main
from edgeflow.data.raw import read_sensor, sensor_window_starts, sensor_windows
from edgeflow.errors import DataError
from tests.malformed import edf as edfw

pytestmark = pytest.mark.unit

RATE = 50.0


def _sensor(channels, rate: float = RATE, window_s: float = 2.0, stride_s: float = 1.0):
    return card_from_dict({"model": {"name": "s", "kind": "sensor"},
                           "input": {"channels": channels, "sample_rate": rate, "window_s": window_s,
                                     "stride_s": stride_s}})


def _signal(seconds: float, n: int = 3, seed: int = 0) -> np.ndarray:
    """(n, samples) accelerometer-like values in m/s^2."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return np.stack([3.0 * np.sin(2 * np.pi * 1.7 * t + k) for k in range(n)]) + rng.normal(0, 0.3, (n, len(t)))


def _edfio(path: Path, sig: np.ndarray, labels: list[str], rate: float = RATE) -> Path:
    """An EDF written by edfio (the writer MNE exports with): 16-bit, physical range +-20 m/s^2."""
    import edfio

    edfio.Edf([edfio.EdfSignal(row, sampling_frequency=rate, label=lab, physical_dimension="m/s^2",
                               physical_range=(-20.0, 20.0)) for row, lab in zip(sig, labels, strict=True)]
              ).write(path)
    return path


STEP = 40.0 / 65535   # one digital step of the +-20 range in 16 bits


def test_channels_picked_by_label_in_the_cards_order(tmp_path):
    """The file holds z, temp, x, y (any case); the accel-har card reads x, y, z: exactly those, reordered."""
    sig = _signal(6.0, n=4)
    path = _edfio(tmp_path / "walk.edf", sig, ["Z", "temp", "x", "Y"])
    card = load_card("accel-har")
    rec = read_sensor(path, card)
    assert rec.names == ("x", "y", "z") and rec.rate == RATE and rec.data.shape == (3, 300)
    np.testing.assert_allclose(rec.data, sig[[2, 3, 0]], rtol=0, atol=STEP)
    x = sensor_windows(rec, card)
    assert x.shape == (5, 3, 100)                                  # 2 s windows every 1 s of 6 s
    np.testing.assert_allclose(x[1], rec.data[:, 50:150] * 0.10197, rtol=1e-6)
    assert sensor_window_starts(rec, card) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_a_counting_card_takes_the_signals_in_order(tmp_path):
    sig = _signal(4.0, n=2)
    rec = read_sensor(_edfio(tmp_path / "r.edf", sig, ["left", "right"]), _sensor(2))
    np.testing.assert_allclose(rec.data, sig, rtol=0, atol=STEP)
    with pytest.raises(DataError, match=r"r\.edf: 2 signal\(s\) \(left, right\), the card has 3 channel\(s\) taken "
                                        "in order"):
        read_sensor(tmp_path / "r.edf", _sensor(3))


def test_physical_values_follow_the_files_scaling_without_unit_conversion(tmp_path):
    """The byte-level writer: digital -32768..32767 over -3.2768..3.2767 'g' is digital * 1e-4, unit untouched."""
    d = np.arange(-150, 150, dtype=np.float64).reshape(3, 100) * 7.0
    data = edfw.edf_bytes(d * 1e-4, RATE, labels=("x", "y", "z"), record_s=1.0, phys=(-3.2768, 3.2767), unit="g")
    rec = read_sensor(edfw.write(tmp_path / "g.edf", data), load_card("accel-har"))
    np.testing.assert_allclose(rec.data, d * 1e-4, rtol=0, atol=1e-9)


def test_bdf_24_bit_samples(tmp_path):
    d = np.linspace(-5.0, 5.0, 300).reshape(3, 100)
    data = edfw.edf_bytes(d, RATE, labels=("x", "y", "z"), kind="bdf", phys=(-8.0, 8.0), unit="m/s^2")
    rec = read_sensor(edfw.write(tmp_path / "r.bdf", data), load_card("accel-har"))
    np.testing.assert_allclose(rec.data, d, rtol=0, atol=16.0 / (1 << 24))


def test_edf_plus_d_gaps_split_the_windows(tmp_path):
    """6 s, a 14 s gap, 5 s: 2 s windows every 1 s at 0..4 s and 20..23 s; none straddles the gap."""
    onsets = [float(t) for t in range(6)] + [float(t) for t in range(20, 25)]
    sig = _signal(11.0)
    data = edfw.edf_bytes(sig, RATE, labels=("x", "y", "z"), phys=(-20, 20), unit="m/s^2", onsets=onsets)
    path = edfw.write(tmp_path / "gaps.edf", data)
    card = load_card("accel-har")
    rec = read_sensor(path, card)
    assert rec.stretches == ((0, 300, 0.0), (300, 250, 20.0))
    x = sensor_windows(rec, card)
    assert sensor_window_starts(rec, card) == [0.0, 1.0, 2.0, 3.0, 4.0, 20.0, 21.0, 22.0, 23.0] and len(x) == 9
    np.testing.assert_allclose(x[5], rec.data[:, 300:400] * 0.10197, rtol=1e-6)   # first window after the gap
    from edgeflow.link.harness import load_stream_windows

    xs, meta = load_stream_windows(path, card)
    assert np.array_equal(xs, x) and meta["window_starts_s"] == sensor_window_starts(rec, card)


@pytest.mark.parametrize("labels, rate, message", [
    (["x", "y", "q"], RATE, r"r\.edf: no signal labelled z \(the file has x, y, q\); the card's channel names pick"),
    (["x", "y", "z"], 100.0, r"r\.edf: channel 'x' is sampled at 100 Hz, the card 'accel-har' expects 50 Hz"),
    (["x", "y", "Y"], RATE, r"no signal labelled z"),
])
def test_refusals_are_one_line(tmp_path, labels, rate, message):
    _edfio(tmp_path / "r.edf", _signal(4.0), labels, rate=rate)
    with pytest.raises(DataError, match=message):
        read_sensor(tmp_path / "r.edf", load_card("accel-har"))


def test_two_signals_with_the_cards_label_are_ambiguous(tmp_path):
    _edfio(tmp_path / "r.edf", _signal(4.0, n=4), ["x", "y", "z", "X"])
    with pytest.raises(DataError, match=r"several signals labelled x; cannot tell which one"):
        read_sensor(tmp_path / "r.edf", load_card("accel-har"))


def test_data_inspect_reads_an_edf_through_a_sensor_card(tmp_path, capsys):
    onsets = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]
    data = edfw.edf_bytes(_signal(6.0), RATE, labels=("x", "y", "z"), phys=(-20, 20), unit="m/s^2", onsets=onsets)
    path = edfw.write(tmp_path / "gaps.edf", data)
    assert main(["data", "inspect", str(path), "--card", "accel-har"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "0 s + 3 s, 10 s + 3 s" in out and "4 x 2 s every 1 s" in out
