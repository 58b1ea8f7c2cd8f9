"""Unit tests for edgeflow.data.eeg: reading, montage, checks, filtering, resampling, windows."""

from __future__ import annotations

import warnings

import mne
import numpy as np
import pytest
from rich.console import Console

from edgeflow.cards import load_card
from edgeflow.data.eeg import (
    TCP_ELECTRODES,
    TCP_MONTAGE,
    TCP_NAMES,
    DataWarning,
    Preprocess,
    apply_montage,
    canonical_name,
    describe,
    load_recording,
    load_windows,
    preprocess,
    read_raw,
    render_inspect,
    windows,
)
from edgeflow.data.synthetic import ELECTRODES, generate_subject
from edgeflow.errors import DataError

pytestmark = pytest.mark.unit


def _raw(names: list[str], data: np.ndarray, sfreq: float = 256.0) -> mne.io.RawArray:
    info = mne.create_info(names, sfreq, "eeg", verbose="error")
    return mne.io.RawArray(data, info, verbose="error")


def _export(path, raw) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")


@pytest.fixture(scope="module")
def subject() -> mne.io.RawArray:
    return generate_subject(1, False, duration_s=12.0, seed=3)


def _plain(raw: mne.io.RawArray) -> tuple[list[str], np.ndarray]:
    """Electrode names (FP1, ...) and the data of a synthetic 'EEG FP1-REF' recording."""
    return list(ELECTRODES), raw.get_data()


def test_tcp_montage_shape():
    assert len(TCP_MONTAGE) == 22 and len(TCP_NAMES) == 22 and len(set(TCP_NAMES)) == 22
    assert TCP_NAMES[:2] == ("FP1-F7", "F7-T3") and TCP_NAMES[-1] == "P4-O2"
    assert len(TCP_ELECTRODES) == 19 and set(TCP_ELECTRODES) == set(ELECTRODES) - {"FZ", "PZ"}


@pytest.mark.parametrize("name,expected", [
    ("EEG FP1-REF", "FP1"), ("EEG FP1-LE", "FP1"), ("Fp1", "FP1"), ("FP1-LE", "FP1"), ("FP1", "FP1"),
    ("EEG Fp1", "FP1"), ("T7", "T3"), ("EEG T8-REF", "T4"), ("P7", "T5"), ("p8", "T6"), ("M1", "A1"),
    ("EEG M2-REF", "A2"), ("Cz", "CZ"), ("Fp1.", "FP1"), ("FP1-F7", "FP1-F7"), ("EEG FP1-F7", "FP1-F7"),
    ("T7-P7", "T3-T5"), ("EEG EKG1-REF", None), ("PHOTIC-REF", None), ("IBI", None), ("STI 014", None),
])
def test_canonical_name(name, expected):
    assert canonical_name(name) == expected


ALIAS = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8", "A1": "M1", "A2": "M2"}


@pytest.mark.parametrize("spell", [
    lambda e: f"EEG {e}-REF", lambda e: e.capitalize(), lambda e: f"{e}-LE",
    lambda e: f"EEG {e.capitalize()}",
    lambda e: ALIAS.get(e, e), lambda e: f"EEG {ALIAS.get(e, e).capitalize()}-REF",
])
def test_spelling_variants_give_same_montage(subject, spell):
    names, data = _plain(subject)
    ref, ref_names = apply_montage(subject, "tcp")
    x, got_names = apply_montage(_raw([spell(e) for e in names], data), "tcp")
    assert got_names == list(TCP_NAMES) == ref_names
    np.testing.assert_array_equal(x, ref)
    a, b = TCP_MONTAGE[0]
    np.testing.assert_allclose(ref[0], data[names.index(a)] - data[names.index(b)])


def test_already_bipolar_and_reversed_pairs(subject):
    ref, _ = apply_montage(subject, "tcp")
    names = [f"EEG {n}" for n in TCP_NAMES]
    names[1] = "EEG T3-F7"  # stored the other way round: the montage negates it
    data = ref.copy()
    data[1] *= -1
    extra = _raw(["EEG EKG1-REF"], np.zeros((1, ref.shape[1])))
    raw = _raw(names, data).add_channels([extra])
    x, got = apply_montage(raw, "tcp")
    assert got == list(TCP_NAMES)
    np.testing.assert_allclose(x, ref)


def test_common_reference_pairs(subject):
    """Channels like 'Fp1-A1', 'F7-A1' (all against one ear) still give the bipolar montage."""
    ref, _ = apply_montage(subject, "tcp")
    names, data = _plain(subject)
    r = names.index("A2")
    keep = [i for i, e in enumerate(names) if e != "A2"]
    raw = _raw([f"{names[i].capitalize()}-A2" for i in keep], data[keep] - data[r])
    x, got = apply_montage(raw, "tcp")
    assert got == list(TCP_NAMES)
    np.testing.assert_allclose(x, ref, atol=1e-15)


def test_explicit_channel_list(subject):
    x, names = apply_montage(subject, ("Fp1", "O1", "T7-P7"))
    assert names == ["FP1", "O1", "T3-T5"]
    data = subject.get_data()
    np.testing.assert_allclose(x[2], data[ELECTRODES.index("T3")] - data[ELECTRODES.index("T5")])
    with pytest.raises(DataError, match="not an EEG electrode"):
        apply_montage(subject, ("EKG",))


def test_edf_round_trip(tmp_path, subject):
    path = tmp_path / "rt.edf"
    _export(path, subject)
    back = read_raw(path)
    assert back.ch_names == subject.ch_names and back.info["sfreq"] == 256.0
    orig, got = subject.get_data(), back.get_data()
    step = (orig.max() - orig.min()) / 65534  # 16-bit EDF over the data's range
    assert np.abs(got - orig).max() <= step
    rec = load_recording(path, Preprocess())
    assert rec.data.shape == (22, 12 * 256) and rec.source == str(path)


def test_missing_channels_error_names_all_and_file(tmp_path, subject):
    keep = [c for c in subject.ch_names if c not in ("EEG T3-REF", "EEG O1-REF")]
    path = tmp_path / "partial.edf"
    _export(path, subject.copy().pick(keep))
    with pytest.raises(DataError) as e:
        load_windows(path, Preprocess())
    msg = str(e.value)
    assert "partial.edf" in msg and "T3" in msg and "O1" in msg and "\n" not in msg
    info = describe(path, Preprocess())
    assert set(info["missing"]) == {"T3", "O1"} and info["n_windows"] == 0


def test_too_short_recording(subject):
    short = subject.copy().crop(0, 3.0 - 1 / 256)
    with pytest.raises(DataError, match=r"3\.00 s, shorter than one 5 s window"):
        preprocess(short, Preprocess(), source="short.edf")


def test_non_finite_samples_name_channel(subject):
    data = subject.get_data()
    data[ELECTRODES.index("O2"), 100] = np.nan
    with pytest.raises(DataError, match=r"nan\.edf: non-finite .* T6-O2, P4-O2"):
        preprocess(_raw(subject.ch_names, data), Preprocess(), source="nan.edf")


def test_flat_channel_warns_not_fails(subject):
    data = subject.get_data()
    data[ELECTRODES.index("O1")] = data[ELECTRODES.index("P3")]  # P3-O1 becomes exactly zero
    with pytest.warns(DataWarning, match="flat channel.*P3-O1"):
        rec = preprocess(_raw(subject.ch_names, data), Preprocess(), source="flat.edf")
    row = rec.data[TCP_NAMES.index("P3-O1")]
    assert np.isfinite(rec.data).all() and np.abs(row).max() < 1e-3


def test_unreadable_files(tmp_path):
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"this is not an EDF file" * 20)
    with pytest.raises(DataError, match=r"bad\.edf: cannot read as EDF"):
        read_raw(bad)
    with pytest.raises(DataError, match="missing.edf: file not found"):
        read_raw(tmp_path / "missing.edf")
    with pytest.raises(DataError, match=r"notes\.txt: unknown EEG file type"):
        read_raw(tmp_path / "notes.txt")


def test_windows_count_and_stride(subject):
    raw = subject.copy().crop(0, 11.5 - 1 / 256)
    rec = preprocess(raw, Preprocess())
    assert windows(rec, Preprocess()).shape == (2, 22, 1280)
    pp = Preprocess(stride_s=2.5)
    w = windows(rec, pp)
    assert w.shape == (1 + (int(11.5 * 256) - 1280) // 640, 22, 1280) and w.dtype == np.float32
    np.testing.assert_array_equal(w[2], rec.data[:, 2 * 640: 2 * 640 + 1280])


@pytest.mark.parametrize("sfreq", [250.0, 512.0])
def test_resampling_to_256(sfreq):
    t = np.arange(int(11 * sfreq)) / sfreq
    rng = np.random.default_rng(0)
    data = 20e-6 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6, (21, 1)))
    data += 2e-6 * rng.standard_normal((21, len(t)))
    raw = _raw([f"EEG {e}-REF" for e in ELECTRODES], data, sfreq)
    rec = preprocess(raw, Preprocess())
    assert rec.sfreq == 256.0 and abs(rec.data.shape[1] - 11 * 256) <= 1
    w = windows(rec, Preprocess())
    assert w.shape == (2, 22, 1280)
    spec = np.abs(np.fft.rfft(w[0, 0]))
    assert np.fft.rfftfreq(1280, 1 / 256)[spec.argmax()] == pytest.approx(10.0, abs=0.3)


def test_iqr_normalisation(subject):
    rec = preprocess(subject, Preprocess())
    q25, med, q75 = np.percentile(rec.data, [25, 50, 75], axis=1)
    np.testing.assert_allclose(med, 0, atol=1e-5)
    np.testing.assert_allclose(q75 - q25, 1, atol=1e-4)
    assert rec.data.dtype == np.float32


def test_notch_and_zscore_options(subject):
    rec = preprocess(subject, Preprocess(notch=50.0, normalize="zscore", bandpass=None))
    np.testing.assert_allclose(rec.data.std(axis=1), 1, atol=1e-4)
    for band in [(0.0, 40.0), (1.0, 200.0), (0.0, 200.0)]:  # low-pass only, high-pass only, nothing
        rec = preprocess(subject, Preprocess(bandpass=band))
        assert rec.data.shape == (22, 12 * 256) and np.isfinite(rec.data).all()
    with pytest.raises(DataError, match="normalize"):
        Preprocess(normalize="minmax")


def test_from_card_and_describe(tmp_path, subject):
    pp = Preprocess.from_card(load_card("femba-mini"))
    assert pp == Preprocess()
    path = tmp_path / "ok.edf"
    _export(path, subject)
    info = describe(path, pp)
    assert info["n_windows"] == 2 and not info["missing"] and len(info["stats"]) == 22
    assert info["montage_channels"][0]["from"] == "EEG FP1-REF - EEG F7-REF"
    console = Console(record=True, width=140)
    console.print(render_inspect(info))
    text = console.export_text()
    assert "FP1-F7" in text and "ok.edf" in text and "2 x 5 s" in text
