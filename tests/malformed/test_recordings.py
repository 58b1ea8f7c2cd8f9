"""Recordings as clinics write them: EDF+D files split at their gaps, EEGLAB/GDF/CNT through MNE, the ear
references (A1/A2, TP9/TP10), a BioSemi cap's labels, the 19-electrode cap card, data-quality reports."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from edgeflow.cards import load_card
from edgeflow.cli import main
from edgeflow.data.eeg import (
    DataWarning,
    Preprocess,
    condition,
    describe,
    load_recording,
    load_timed_windows,
    load_windows,
    normalise,
    preprocess,
    read_recording,
    window_starts,
    windows,
)
from edgeflow.errors import DataError

from . import edf, formats
from . import inputs as mk

pytestmark = pytest.mark.unit

PP = Preprocess()  # femba's: tcp montage, 256 Hz, 5 s windows every 5 s
ELECTRODES = edf.ELECTRODES
NO_EARS = tuple(e for e in ELECTRODES if e not in ("A1", "A2"))  # the common 19-electrode cap


def _labels(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"EEG {e}-REF" for e in names)


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean recording raises no data-quality warning
        return fn(*args)


# ---- EDF+D: discontinuous recordings ---------------------------------------------------------------------------

def _edfd(tmp_path, name: str, onsets: list[float], seed: int = 0):
    x = edf.signals(float(len(onsets)), 256.0, seed=seed)
    return mk.edf.write(tmp_path / name, edf.edf_bytes(x, 256.0, onsets=onsets)), x


def test_edf_plus_d_is_split_at_gaps_with_start_times(tmp_path):
    """8 s, a 12 s gap, then 12 s: windows at 0 s (the 3 s left of the first stretch are not joined to the
    second), 20 s and 25 s. Each stretch is filtered and resampled exactly as the same samples in a file of their
    own; the normalisation is the whole recording's."""
    onsets = [float(t) for t in range(8)] + [float(t) for t in range(20, 32)]
    path, x = _edfd(tmp_path, "gaps.edf", onsets)
    got, starts = _quiet(load_timed_windows, path, PP)
    assert got.shape == (3, 22, 1280) and starts.tolist() == [0.0, 20.0, 25.0]
    r = read_recording(path)
    assert r.stretches == ((0, 8 * 256, 0.0), (8 * 256, 12 * 256, 20.0))
    parts, _ = condition(r.raw, PP, str(path), r.stretches)
    for (_, y), (lo, hi) in zip(parts, [(0, 8), (8, 20)], strict=True):
        alone = read_recording(mk.recording(tmp_path, f"alone{lo}.edf", data=x[:, lo * 256: hi * 256]))
        np.testing.assert_array_equal(y, condition(alone.raw, PP)[0][0][1])
    norm = normalise(np.concatenate([y for _, y in parts], axis=1)).astype(np.float32)
    first = 8 * 256
    expect = [norm[:, :1280], norm[:, first:first + 1280], norm[:, first + 1280:first + 2560]]
    np.testing.assert_array_equal(got, np.stack(expect))
    info = describe(path, PP)
    assert info["stretches"] == [{"start_s": 0.0, "duration_s": 8.0}, {"start_s": 20.0, "duration_s": 12.0}]
    assert info["n_windows"] == 3 and info["problems"] == []


def test_window_never_straddles_a_gap_with_overlapping_windows(tmp_path):
    onsets = [float(t) for t in range(7)] + [float(t) for t in range(100, 107)]
    path, _ = _edfd(tmp_path, "stride.edf", onsets)
    rec = load_recording(path, Preprocess(stride_s=1.0))
    starts = window_starts(rec, Preprocess(stride_s=1.0))
    assert starts.tolist() == [0.0, 1.0, 2.0, 100.0, 101.0, 102.0]  # 7 s stretches: windows at 0, 1, 2 s of each
    assert len(windows(rec, Preprocess(stride_s=1.0))) == 6
    continuous = mk.recording(tmp_path, "joined.edf", data=edf.signals(14.0, 256.0))
    assert len(load_windows(continuous, Preprocess(stride_s=1.0))) == 10  # joined, 4 more would straddle


def test_continuous_edf_plus_windows_start_every_stride(tmp_path):
    path, _ = _edfd(tmp_path, "cont.edf", [float(t) for t in range(12)])  # EDF+D header, no gap
    x, starts = load_timed_windows(path, PP)
    assert len(x) == 2 and starts.tolist() == [0.0, 5.0]


def test_stretch_too_short_is_left_out_with_a_warning(tmp_path):
    onsets = [0.0, 1.0, 2.0] + [float(t) for t in range(10, 16)]
    path, _ = _edfd(tmp_path, "short.edf", onsets)
    with pytest.warns(DataWarning, match=r"short\.edf: 1 of 2 stretch\(es\) between gaps shorter than one 5 s "
                                         r"window, left out"):
        x, starts = load_timed_windows(path, PP)
    assert len(x) == 1 and starts.tolist() == [10.0]


def test_no_stretch_long_enough_is_refused(tmp_path):
    path, _ = _edfd(tmp_path, "bits.edf", [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 20.0])
    with pytest.raises(DataError) as e:
        load_windows(path, PP)
    assert str(e.value) == (f"{path}: no stretch between the recording's 2 gap(s) lasts one 5 s window (the "
                            "longest lasts 4.00 s)")


def test_edf_plus_d_bad_record_times(tmp_path):
    path, _ = _edfd(tmp_path, "back.edf", [0.0, 1.0, 2.0, 2.5, 3.5, 4.5, 5.5])
    with pytest.raises(DataError) as e:
        read_recording(path)
    assert str(e.value) == f"{path}: data record 4 starts at 2.5 s, before record 3 ends (3 s)"
    raw = bytearray(edf.edf_bytes(edf.signals(6.0, 256.0), 256.0, onsets=[0.0, 1, 2, 3, 4, 5]))
    n_sig = len(ELECTRODES) + 1
    rec_bytes = 2 * (256 * len(ELECTRODES) + edf.TAL_SAMPLES)
    at = 256 * (n_sig + 1) + 2 * rec_bytes + 2 * 256 * len(ELECTRODES)  # record 3's annotation bytes
    raw[at:at + 4] = b"\x00\x00\x00\x00"
    bad = mk.edf.write(tmp_path / "notal.edf", bytes(raw))
    with pytest.raises(DataError) as e:
        read_recording(bad)
    assert str(e.value) == (f"{bad}: data record 3 has no time-keeping annotation ('+onset\\x14\\x14' opening its "
                            "'EDF Annotations' signal)")


# ---- EEGLAB, GDF, Neuroscan CNT -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["set", "set+fdt", "gdf", "cnt"])
def test_other_formats_read_through_mne(tmp_path, kind):
    """Each format gives the windows of the same samples written as EDF (to their 16-bit quantisation)."""
    x = edf.signals(12.0, 256.0, seed=4)
    labels = ELECTRODES if kind == "cnt" else _labels(ELECTRODES)  # CNT keeps 9 characters of a label
    write = {"set": lambda p: formats.eeglab(p, x, 256.0, labels), "gdf": lambda p: formats.gdf(p, x, 256.0, labels),
             "set+fdt": lambda p: formats.eeglab(p, x, 256.0, labels, fdt=True),
             "cnt": lambda p: formats.cnt(p, x, 256.0, labels)}[kind]
    path = write(tmp_path / f"rec.{kind.split('+')[0]}")
    if kind == "set+fdt":
        assert (tmp_path / "rec.fdt").stat().st_size == 4 * x.size
    got = _quiet(load_windows, path, PP)
    ref = load_windows(mk.recording(tmp_path, "ref.edf", data=x), PP)
    assert got.shape == ref.shape == (2, 22, 1280)
    np.testing.assert_allclose(got, ref, atol=0.02)


def test_eeglab_without_its_fdt_is_one_line(tmp_path):
    path = formats.eeglab(tmp_path / "rec.set", edf.signals(6.0, 256.0), 256.0, _labels(ELECTRODES), fdt=True)
    (tmp_path / "rec.fdt").unlink()
    with pytest.raises(DataError, match=rf"^{path}: cannot read as EEGLAB \(.+\)$"):
        read_recording(path)


def test_eeglab_hdf5_without_pymatreader_is_refused_by_name(tmp_path, monkeypatch):
    import sys

    path = tmp_path / "v73.set"
    path.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + bytes(600))
    monkeypatch.setitem(sys.modules, "pymatreader", None)  # as where it is not installed
    with pytest.raises(DataError) as e:
        read_recording(path)
    assert str(e.value) == (f"{path}: an EEGLAB file saved as MATLAB v7.3 (HDF5), which this MNE reads only with "
                            "pymatreader (not installed); save it from EEGLAB in the MATLAB v7 format")


def test_unknown_format_lists_the_known_ones(tmp_path):
    p = tmp_path / "rec.mff"
    p.write_bytes(b"x")
    with pytest.raises(DataError) as e:
        read_recording(p)
    assert str(e.value) == f"{p}: unknown EEG file type '.mff' (expected .edf, .bdf, .fif, .vhdr, .set, .gdf or .cnt)"


# ---- montage: ear references, BioSemi caps, the 19-electrode cap ---------------------------------------------

def test_tp9_tp10_stand_in_for_absent_ears(tmp_path):
    x = edf.signals(12.0, 256.0, seed=2)
    tp = tuple({"A1": "TP9", "A2": "TP10"}.get(e, e) for e in ELECTRODES)
    got = _quiet(load_windows, mk.recording(tmp_path, "tp.edf", data=x, labels=_labels(tp)), PP)
    np.testing.assert_array_equal(got, load_windows(mk.recording(tmp_path, "ears.edf", data=x), PP))
    info = describe(tmp_path / "tp.edf", PP)
    via = {c["name"]: c["from"] for c in info["montage_channels"]}
    assert via["A1-T3"] == "EEG TP9-REF - EEG T3-REF" and via["T4-A2"] == "EEG T4-REF - EEG TP10-REF"


def test_real_ears_win_over_tp9(tmp_path):
    names = (*ELECTRODES, "TP9", "TP10")
    x = edf.signals(12.0, 256.0, seed=2, n=len(names))
    info = describe(mk.recording(tmp_path, "both.edf", data=x, labels=_labels(names)), PP)
    assert {c["name"]: c["from"] for c in info["montage_channels"]}["A1-T3"] == "EEG A1-REF - EEG T3-REF"


def test_no_ears_names_both_and_the_1020_card_reads_it(tmp_path):
    x = edf.signals(12.0, 256.0, seed=5, n=len(NO_EARS))
    path = mk.recording(tmp_path, "cap19.edf", data=x, labels=_labels(NO_EARS))
    with pytest.raises(DataError) as e:
        load_windows(path, PP)
    assert str(e.value) == f"{path}: missing 2 channel(s) for the tcp montage: A1, A2"
    card = load_card("femba-mini-1020")
    pp = Preprocess.from_card(card)
    got = _quiet(load_windows, path, pp)
    assert got.shape == (2, 18, 1280) and card.input.n_channels == 18 and card.d_model == 72
    with_ears = np.insert(x, 16, np.zeros((2, x.shape[1])), axis=0)  # rows 16, 17: A1, A2 as in edf.LABELS
    np.testing.assert_array_equal(got, load_windows(mk.recording(tmp_path, "full.edf", data=with_ears), pp))


def test_1020_card_is_independent_of_the_recording_reference(tmp_path):
    x = edf.signals(12.0, 256.0, seed=6, n=len(NO_EARS))
    pp = Preprocess.from_card(load_card("femba-mini-1020"))
    avg = x - x.mean(axis=0, keepdims=True)  # the same scalp potentials against the average reference
    a = load_windows(mk.recording(tmp_path, "ref.edf", data=x, labels=_labels(NO_EARS)), pp)
    b = load_windows(mk.recording(tmp_path, "avg.edf", data=avg, labels=_labels(NO_EARS)), pp)
    np.testing.assert_allclose(a, b, atol=0.02)


BIOSEMI = tuple(f"{letter}{k}" for letter in "AB" for k in range(1, 33))
MISSING_1020 = "FP1, F7, T3, T5, O1, FP2, F8, T4, T6, O2, A1, C3, CZ, C4, A2, F3, P3, F4, P4"
# a plausible placement of the TUH electrodes on the 64-channel ABC cap, for the mapping test
CAP_MAP = {"FP1": "A2", "FP2": "B2", "F7": "A5", "F8": "B5", "F3": "A6", "F4": "B6", "T3": "A9", "T4": "B9",
           "C3": "A11", "C4": "B11", "CZ": "A1", "T5": "A14", "T6": "B14", "P3": "A16", "P4": "B16", "O1": "A20",
           "O2": "B20", "A1": "A30", "A2": "B30"}


def _biosemi(tmp_path, name: str = "cap.bdf"):
    x = edf.signals(12.0, 256.0, seed=7, n=len(BIOSEMI))
    return mk.recording(tmp_path, name, data=x, labels=BIOSEMI, kind="bdf"), x


def test_biosemi_cap_labels_are_not_ear_electrodes(tmp_path):
    path, _ = _biosemi(tmp_path)
    with pytest.raises(DataError) as e:
        load_windows(path, PP)
    assert str(e.value) == (f"{path}: BioSemi cap labels (A1..A32, B1..B32) are cap positions, not 10-20 electrodes; "
                            f"missing 19 channel(s) for the tcp montage: {MISSING_1020} (map them in the card's "
                            "input.electrodes)")


def test_a_card_maps_the_biosemi_cap(tmp_path):
    path, x = _biosemi(tmp_path)
    lines = "electrodes = { " + ", ".join(f'{k} = "{v}"' for k, v in CAP_MAP.items()) + " }"
    card = mk.card(tmp_path, "cap", ('montage = "tcp"', 'montage = "tcp"\n' + lines))
    pp = Preprocess.from_card(load_card(card))
    got = _quiet(load_windows, path, pp)
    named = np.stack([x[BIOSEMI.index(CAP_MAP[e])] for e in ELECTRODES if e in CAP_MAP])
    order = tuple(e for e in ELECTRODES if e in CAP_MAP)
    ref = load_windows(mk.recording(tmp_path, "named.bdf", data=named, labels=_labels(order), kind="bdf"), PP)
    np.testing.assert_array_equal(got, ref)


# ---- data quality ---------------------------------------------------------------------------------------------

def _warnings_of(path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        load_windows(path, PP)
    return [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_blank_and_odd_units_are_reported(tmp_path):
    blank = mk.recording(tmp_path, "blank.edf", unit="")
    assert _warnings_of(blank) == [f"{blank}: blank physical unit on channel(s) {', '.join(edf.LABELS)}, read as uV"]
    with pytest.warns(DataWarning, match="blank physical unit"):
        as_uv = load_windows(blank, PP)
    np.testing.assert_array_equal(as_uv, load_windows(mk.recording(tmp_path, "uv.edf"), PP))
    odd = mk.recording(tmp_path, "odd.edf", signal_fields={2: {"unit": "degC"}, 3: {"unit": "degC"}})
    line = ("physical unit 'degC' on channel(s) EEG F3-REF, EEG F4-REF is not a voltage (V, mV, uV or nV); their "
            "amplitudes are meaningless")
    assert _warnings_of(odd) == [f"{odd}: {line}"]
    assert line in describe(odd, PP)["problems"]


def test_flat_electrode_is_reported(tmp_path):
    x = edf.signals(12.0, 256.0)
    x[ELECTRODES.index("C3")] = 0.0
    path = mk.recording(tmp_path, "flat.edf", data=x)
    line = "flat electrode(s) EEG C3-REF (std under 0.1 uV: disconnected?)"
    assert _warnings_of(path) == [f"{path}: {line}"]
    assert describe(path, PP)["problems"] == [line]


def test_bridged_pair_is_reported(tmp_path):
    x = edf.signals(12.0, 256.0)
    rng = np.random.default_rng(1)
    x[ELECTRODES.index("F4")] = x[ELECTRODES.index("C4")] + 0.5 * rng.standard_normal(x.shape[1])
    path = mk.recording(tmp_path, "bridge.edf", data=x)
    line = "bridged channel(s) EEG F4-REF = EEG C4-REF (near-identical signals: gel bridge or a duplicated channel)"
    assert _warnings_of(path) == [f"{path}: {line}"]
    assert describe(path, PP)["problems"] == [line]


def test_inspect_exits_2_when_no_window_and_stream_meta_has_starts(tmp_path, capsys):
    path, _ = _edfd(tmp_path, "bits.edf", [0.0, 1.0, 2.0, 10.0])
    assert main(["data", "inspect", str(path), "--card", "femba-micro"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"{path}: no usable 5 s window (no stretch between the recording's 1 gap(s) lasts one 5 s window (the longest "
        "lasts 3.00 s))")
    from edgeflow.link.harness import load_stream_windows

    good, _ = _edfd(tmp_path, "good.edf", [float(t) for t in range(6)] + [float(t) for t in range(30, 36)])
    x, meta = load_stream_windows(good, "femba-micro")
    assert len(x) == 2 and meta["window_starts_s"] == [0.0, 30.0]
    assert json.loads(json.dumps(meta))["windows"] == 2


def test_standalone_copy_runs_the_same_preprocessing(tmp_path):
    """The bundle's copy of the preprocessing (modules inlined) splits an EDF+D file just as edgeflow does."""
    import importlib.util
    import sys

    from edgeflow.data.standalone import preprocessing_copy

    f = tmp_path / "edgeflow_eeg.py"
    f.write_text(preprocessing_copy())
    spec = importlib.util.spec_from_file_location("edgeflow_eeg_copy", f)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["edgeflow_eeg_copy"] = mod
    try:
        spec.loader.exec_module(mod)
        path, _ = _edfd(tmp_path, "gaps.edf", [float(t) for t in range(6)] + [float(t) for t in range(9, 15)])
        x, starts = mod.load_timed_windows(path, mod.Preprocess())
    finally:
        del sys.modules["edgeflow_eeg_copy"]
    ref, ref_starts = load_timed_windows(path, PP)
    np.testing.assert_array_equal(x, ref)
    assert starts.tolist() == ref_starts.tolist() == [0.0, 9.0]


def test_preprocess_of_an_in_memory_recording_is_one_stretch():
    import mne

    x = edf.signals(12.0, 256.0) * 1e-6
    raw = mne.io.RawArray(x, mne.create_info(list(ELECTRODES), 256.0, "eeg", verbose="error"), verbose="error")
    rec = preprocess(raw, PP)
    assert rec.segments == ((0, 0.0),) and window_starts(rec, PP).tolist() == [0.0, 5.0]


def test_stream_shows_the_new_warnings(tmp_path):
    """`stream` prints each data-quality warning of a recording once, on stderr, and goes on."""
    import argparse
    import io

    from rich.console import Console

    from edgeflow.commands.stream import read_windows

    onsets = [0.0, 1.0, 2.0] + [float(t) for t in range(10, 16)]
    x = edf.signals(9.0, 256.0)
    x[ELECTRODES.index("CZ")] = 0.0
    path = mk.edf.write(tmp_path / "s.edf", edf.edf_bytes(x, 256.0, onsets=onsets, unit=""))
    buf = io.StringIO()
    a = argparse.Namespace(input=str(path), card="femba-micro", stride=None, windows=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, meta = read_windows(a, Console(file=buf, width=600))
    lines = buf.getvalue().strip().splitlines()
    assert lines == [f"edgeflow: warning: {path}: {w}" for w in (
        f"blank physical unit on channel(s) {', '.join(edf.LABELS)}, read as uV",
        "flat electrode(s) EEG CZ-REF (std under 0.1 uV: disconnected?)",
        "1 of 2 stretch(es) between gaps shorter than one 5 s window, left out")]
    assert len(got) == 1 and meta["window_starts_s"] == [10.0]


def test_inspect_shows_the_stretches_of_an_edf_plus_d_file(tmp_path, capsys):
    path, _ = _edfd(tmp_path, "gaps.edf", [float(t) for t in range(8)] + [float(t) for t in range(20, 32)])
    assert main(["data", "inspect", str(path), "--card", "femba-micro"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "stretches 2 between gaps (windows never straddle one): 0-8 s, 20-32 s" in out
    assert "windows 3 x 5 s every 5 s" in out


def test_segments_of_short_records_tolerate_rounded_onsets():
    from edgeflow.data.edf_header import EdfHeader, segments

    h = EdfHeader("edf", 512, 60, 0.1, (), 0, "EDF+D")
    onsets = [round(0.1 * k, 3) for k in range(30)] + [round(10.0 + 0.1 * k, 3) for k in range(30)]
    assert segments(h, onsets, "x.edf") == [(0, 30, 0.0), (30, 30, 10.0)]
    with pytest.raises(DataError, match=r"^x\.edf: data record 3 starts at 0\.15 s, before record 2 ends \(0\.2 s\)$"):
        segments(h, [0.0, 0.1, 0.15], "x.edf")


def test_gdf1_unit_mne_reads_as_volts_is_reported(tmp_path):
    path = formats.gdf(tmp_path / "mv.gdf", edf.signals(12.0, 256.0) * 1e-3, 256.0, _labels(ELECTRODES), phys=3.2,
                       unit="mV")
    line = (f"physical unit 'mV' on channel(s) {', '.join(edf.LABELS)}: MNE's GDF 1 reader scales only uV, these "
            "samples are read as volts")
    assert _warnings_of(path)[0] == f"{path}: {line}"
    assert line in describe(path, PP)["problems"]
