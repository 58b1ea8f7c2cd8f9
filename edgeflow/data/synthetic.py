"""Synthetic EEG corpus: seeded, physiologically plausible referential recordings written as EDF files."""

from __future__ import annotations

import csv
import datetime as dt
import json
import warnings
from pathlib import Path

import mne
import numpy as np

from edgeflow.errors import DataError

GENERATOR_VERSION = "1"
# the 21 electrodes the TCP montage needs, TUH naming ("EEG FP1-REF")
ELECTRODES: tuple[str, ...] = ("FP1", "FP2", "F7", "F3", "FZ", "F4", "F8", "A1", "T3", "C3", "CZ", "C4",
                               "T4", "A2", "T5", "P3", "PZ", "P4", "T6", "O1", "O2")
# approximate 2-D scalp positions (x: left -> right, y: back -> front), head radius ~1
POS = np.array([(-0.31, 0.95), (0.31, 0.95), (-0.81, 0.59), (-0.42, 0.52), (0.0, 0.45), (0.42, 0.52),
                (0.81, 0.59), (-1.12, 0.0), (-0.95, 0.0), (-0.48, 0.0), (0.0, 0.0), (0.48, 0.0), (0.95, 0.0),
                (1.12, 0.0), (-0.81, -0.59), (-0.42, -0.52), (0.0, -0.45), (0.42, -0.52), (0.81, -0.59),
                (-0.31, -0.95), (0.31, -0.95)])
_IDX = {e: i for i, e in enumerate(ELECTRODES)}


def _weights(spec: dict[str, float], default: float = 0.0) -> np.ndarray:
    return np.array([spec.get(e, default) for e in ELECTRODES])


ALPHA_W = _weights({"O1": 1.0, "O2": 1.0, "PZ": 0.8, "P3": 0.8, "P4": 0.8, "T5": 0.55, "T6": 0.55, "CZ": 0.3,
                    "C3": 0.3, "C4": 0.3, "T3": 0.2, "T4": 0.2, "FZ": 0.12, "F3": 0.12, "F4": 0.12}, 0.08)
BLINK_W = _weights({"FP1": 1.0, "FP2": 1.0, "F7": 0.45, "F8": 0.45, "F3": 0.4, "F4": 0.4, "FZ": 0.4,
                    "C3": 0.1, "C4": 0.1, "CZ": 0.1, "T3": 0.08, "T4": 0.08})
EMG_W = _weights({"T3": 1.0, "T4": 1.0, "F7": 0.8, "F8": 0.8, "A1": 0.7, "A2": 0.7, "T5": 0.6, "T6": 0.6,
                  "FP1": 0.4, "FP2": 0.4, "O1": 0.25, "O2": 0.25}, 0.08)
FRONTAL_W = np.clip(0.55 + 0.45 * POS[:, 1], 0.2, 1.0)  # generalised abnormalities are fronto-central
BETA_W = np.clip(0.8 - 0.4 * np.abs(POS[:, 1] - 0.25), 0.2, 0.8)


def _spectral(rng: np.random.Generator, k: int, n: int, sfreq: float, gain) -> np.ndarray:
    """k unit-variance series of white noise shaped by gain(freqs) in the frequency domain."""
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    spec = np.fft.rfft(rng.standard_normal((k, n)), axis=1) * gain(freqs)
    x = np.fft.irfft(spec, n, axis=1)
    return x / np.maximum(x.std(axis=1, keepdims=True), 1e-12)


def _band(rng: np.random.Generator, k: int, n: int, sfreq: float, f0: float, bw: float) -> np.ndarray:
    return _spectral(rng, k, n, sfreq, lambda f: np.exp(-0.5 * ((f - f0) / bw) ** 2))


def _smooth(x: np.ndarray, sfreq: float, ramp_s: float = 0.8) -> np.ndarray:
    k = np.hanning(max(3, int(ramp_s * sfreq)))
    return np.convolve(x, k / k.sum(), mode="same")


def _epochs(rng: np.random.Generator, n: int, sfreq: float, p_on: float, lo: float, hi: float) -> np.ndarray:
    """0/1 state per sample, epochs of lo..hi seconds, each 'on' with probability p_on."""
    out = np.zeros(n)
    i = 0
    while i < n:
        length = int(rng.uniform(lo, hi) * sfreq)
        out[i: i + length] = float(rng.random() < p_on)
        i += length
    return out


def _events(rng: np.random.Generator, duration_s: float, rate_hz: float) -> np.ndarray:
    return np.sort(rng.uniform(0, duration_s, rng.poisson(rate_hz * duration_s)))


def _spatial_mixer(length: float = 0.45) -> np.ndarray:
    d2 = ((POS[:, None, :] - POS[None, :, :]) ** 2).sum(-1)
    return np.linalg.cholesky(np.exp(-d2 / (2 * length**2)) + 1e-6 * np.eye(len(ELECTRODES)))


def _spike_wave(n: int, sfreq: float, starts: np.ndarray, lengths: np.ndarray, freq: float) -> np.ndarray:
    """Runs of ~3 Hz spike-and-wave complexes: a sharp negative spike followed by a slow positive wave."""
    out = np.zeros(n)
    t = np.arange(int(2 / freq * sfreq)) / sfreq
    complex_ = -np.exp(-0.5 * ((t - 0.03) / 0.012) ** 2) + 0.7 * np.exp(-0.5 * ((t - 0.17) / 0.06) ** 2)
    for s, length in zip(starts, lengths, strict=True):
        for c in np.arange(s, s + length, 1.0 / freq):
            i = int(c * sfreq)
            seg = complex_[: max(0, min(len(complex_), n - i))]
            out[i: i + len(seg)] += seg
    return out


def _background(rng: np.random.Generator, ne: int, n: int, sfreq: float, d: float) -> np.ndarray:
    """1/f^beta noise, spatially correlated between neighbours, plus a common reference and beta (microvolts)."""
    beta = rng.uniform(1.0, 1.8)
    scale = rng.lognormal(0.0, 0.1 + 0.25 * d)
    pink = lambda f: 1.0 / np.maximum(f, 0.4) ** (beta / 2)  # noqa: E731
    bg = _spatial_mixer() @ _spectral(rng, ne, n, sfreq, pink)
    x = 14.0 * scale * rng.uniform(0.85, 1.15, (ne, 1)) * bg / bg.std(axis=1, keepdims=True)
    x = x + 6.0 * _spectral(rng, 1, n, sfreq, pink)
    return x + 2.5 * BETA_W[:, None] * _band(rng, ne, n, sfreq, rng.uniform(16, 22), 3.0)


def _alpha(rng: np.random.Generator, n: int, sfreq: float, severity: float, on: np.ndarray,
           eyes_closed: np.ndarray) -> np.ndarray:
    """Posterior alpha, blocked by eye opening; abnormal: slower and weaker posterior dominant rhythm."""
    alpha_peak = np.clip(rng.normal(10.0, 0.6), 8.5, 11.5) - 1.2 * min(severity, 1.0)
    alpha_amp = 22.0 * rng.lognormal(0.0, 0.3) * (1.0 - 0.45 * min(severity, 1.0) * (0.5 + 0.5 * on))
    common = _band(rng, 1, n, sfreq, alpha_peak, 0.6)
    sides = 0.8 * common + 0.6 * _band(rng, 2, n, sfreq, alpha_peak, 0.6)
    side = np.where(POS[:, 0] < -0.05, 0, np.where(POS[:, 0] > 0.05, 1, -1))
    alpha = np.where(side[:, None] >= 0, sides[np.maximum(side, 0)], sides.mean(axis=0))
    return ALPHA_W[:, None] * alpha * alpha_amp * (0.25 + 0.75 * _smooth(eyes_closed, sfreq))


def _abnormal_slowing(x: np.ndarray, rng: np.random.Generator, sfreq: float, duration_s: float, d: float,
                      severity: float, on: np.ndarray) -> None:
    """Add focal or generalised slowing while `on`, and intermittent generalised ~3 Hz spike-and-wave runs."""
    ne, n = x.shape
    if rng.random() < 0.5:
        centre = POS[rng.integers(ne)]
        w = np.exp(-((POS - centre) ** 2).sum(1) / (2 * 0.45**2))
    else:
        w = FRONTAL_W
    slow = _band(rng, 1, n, sfreq, 2.0, 0.9) + 0.6 * _band(rng, 1, n, sfreq, 5.5, 0.9)
    slow = 0.7 * slow + 0.5 * _band(rng, ne, n, sfreq, 2.5, 1.2)
    x += 32.0 * severity * w[:, None] * slow * on
    if rng.random() < 0.65:
        starts = _events(rng, duration_s, (2.5 - 1.5 * d) / 60.0)
        keep = on[np.minimum((starts * sfreq).astype(int), n - 1)] > 0.5
        starts = starts[keep]
        sw = _spike_wave(n, sfreq, starts, rng.uniform(1.0, 4.0, len(starts)), rng.uniform(2.6, 3.4))
        x += 110.0 * severity * FRONTAL_W[:, None] * sw


def _normal_slow(x: np.ndarray, rng: np.random.Generator, sfreq: float, d: float) -> None:
    """Add normal slow activity that overlaps with the abnormal class: drowsiness, sweat drift (more with d)."""
    ne, n = x.shape
    c = d * d
    drowsy = _smooth(_epochs(rng, n, sfreq, 0.15 + 0.5 * d, 5.0, 20.0), sfreq, 2.0)
    drowsy *= rng.random() < 0.3 + 0.6 * d
    x += 24.0 * c * rng.lognormal(0, 0.3) * FRONTAL_W[:, None] * _band(rng, 1, n, sfreq, 5.0, 1.3) * drowsy
    if rng.random() < 0.2 + 0.5 * d:
        x += 20.0 * c * rng.random((ne, 1)) * _band(rng, ne, n, sfreq, 0.9, 0.5)


def _eyes(x: np.ndarray, rng: np.random.Generator, sfreq: float, duration_s: float, eyes_closed: np.ndarray) -> None:
    """Add eye blinks (frontal, eyes open) and lateral eye movements (F7/F8 opposite polarity)."""
    n = x.shape[1]
    eye = np.zeros(n)
    opening = np.flatnonzero(np.diff(eyes_closed) < 0)
    for t0 in np.concatenate([_events(rng, duration_s, 0.3), opening / sfreq]):
        i = int(t0 * sfreq)
        if i < n and (eyes_closed[i] < 0.5 or i in opening):
            width = rng.uniform(0.2, 0.4)
            blink = np.sin(np.pi * np.arange(int(width * sfreq)) / (width * sfreq)) ** 2
            seg = blink[: n - i] * rng.uniform(70, 180)
            eye[i: i + len(seg)] += seg
    x += BLINK_W[:, None] * eye
    lateral = _smooth(np.repeat(rng.choice([-1.0, 0.0, 1.0], n // int(sfreq) + 1, p=[0.1, 0.8, 0.1]),
                                int(sfreq))[:n], sfreq, 0.3)
    x += 25.0 * np.clip(POS[:, 1], 0, 1)[:, None] * np.sign(POS[:, 0])[:, None] * lateral


def _muscle(rng: np.random.Generator, ne: int, n: int, sfreq: float, duration_s: float) -> np.ndarray | None:
    """Muscle (EMG) bursts: broadband > 20 Hz, temporal, one side or both (None when there is none)."""
    nyq = sfreq / 2
    emg_env = np.zeros((ne, n))
    for t0 in _events(rng, duration_s, 1.0 / 12.0):
        i, length = int(t0 * sfreq), int(rng.uniform(0.5, 3.0) * sfreq)
        which = rng.integers(3)
        sel = (POS[:, 0] < 0.05) if which == 0 else (POS[:, 0] > -0.05) if which == 1 else np.ones(ne, bool)
        emg_env[sel, i: i + length] += rng.uniform(8, 30)
    if not emg_env.any():
        return None
    hf = _spectral(rng, ne, n, sfreq, lambda f: (f > 20) * (f < 0.9 * nyq) * 1.0)
    return EMG_W[:, None] * np.array([_smooth(e, sfreq, 0.1) for e in emg_env]) * hf


def generate_subject(subject_id: int, abnormal: bool, duration_s: float = 60.0, sfreq: float = 256.0,
                     seed: int = 0, difficulty: float = 0.5,
                     line_freq: float | None = None) -> mne.io.RawArray:
    """One subject's referential scalp EEG (21 electrodes, volts); same arguments give identical samples.

    difficulty in [0, 1] shrinks the abnormal effects, makes them intermittent, and adds subject-to-subject
    variability and normal slow activity (drowsiness, sweat) that overlaps with the abnormal class.
    The components draw from one generator in a fixed order (the order of the calls below).
    """
    d = float(np.clip(difficulty, 0.0, 1.0))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(subject_id), int(bool(abnormal)), 7]))
    n = int(round(duration_s * sfreq))
    ne = len(ELECTRODES)
    x = _background(rng, ne, n, sfreq, d)  # microvolts
    severity, on = 0.0, np.zeros(n)  # abnormal state: intermittent (more so with difficulty), subject severity
    if abnormal:
        severity = (1.3 - 0.8 * d) * rng.lognormal(0.0, 0.1 + 0.3 * d)
        on = _smooth(_epochs(rng, n, sfreq, 1.0 - 0.5 * d, 4.0, 16.0), sfreq, 1.5)
    eyes_closed = _epochs(rng, n, sfreq, 0.55, 4.0, 15.0)
    x += _alpha(rng, n, sfreq, severity, on, eyes_closed)
    if abnormal:
        _abnormal_slowing(x, rng, sfreq, duration_s, d, severity, on)
    _normal_slow(x, rng, sfreq, d)
    _eyes(x, rng, sfreq, duration_s, eyes_closed)
    emg = _muscle(rng, ne, n, sfreq, duration_s)
    if emg is not None:
        x += emg
    line = float(line_freq if line_freq is not None else rng.choice([50.0, 60.0]))
    if line < sfreq / 2:  # mains interference, different at each electrode (impedances differ)
        t = np.arange(n) / sfreq
        phase = rng.uniform(0, 2 * np.pi)
        x += rng.uniform(0.5, 4.0, (ne, 1)) * np.sin(2 * np.pi * line * t + phase)[None, :]
    info = mne.create_info([f"EEG {e}-REF" for e in ELECTRODES], sfreq, "eeg", verbose="error")
    raw = mne.io.RawArray(x * 1e-6, info, verbose="error")
    raw.set_meas_date(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    raw.info["line_freq"] = line
    return raw


def check_corpus_params(n_subjects: int, duration_s: float, sfreq: float, difficulty: float) -> None:
    """DataError (one line naming the parameter and its allowed range) for a corpus that cannot be made."""
    import math

    checks = (("subjects", n_subjects, 2, 100_000, "at least 2, so both classes appear"),
              ("duration", duration_s, 5.0, 86_400.0, "seconds, at least one 5 s window"),
              ("sfreq", sfreq, 128.0, 16_384.0, "Hz; the band-pass keeps up to 70 Hz"),
              ("difficulty", difficulty, 0.0, 1.0, "0 = easy .. 1 = hard"))
    for name, value, lo, hi, why in checks:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not lo <= value <= hi:
            raise DataError(f"synthetic corpus: {name} = {value!r} is outside [{lo:g}, {hi:g}] ({why})")


def write_corpus(out_dir: str | Path, n_subjects: int = 20, duration_s: float = 60.0, seed: int = 0,
                 difficulty: float = 0.5, sfreq: float = 256.0, progress: bool = True) -> Path:
    """Write sub-XXX.edf (balanced, seeded label order), labels.csv (file,subject,label) and corpus.json."""
    from rich.progress import Progress

    check_corpus_params(n_subjects, duration_s, sfreq, difficulty)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "corpus.json").is_file():
        raise DataError(f"{out}: is not empty and not an edgeflow corpus (no corpus.json); give an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    labels = np.arange(n_subjects) % 2
    np.random.default_rng(np.random.SeedSequence([int(seed), 1])).shuffle(labels)
    rows = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"synthetic EEG -> {out}", total=n_subjects)
        for sid, label in enumerate(labels.tolist()):
            raw = generate_subject(sid, bool(label), duration_s, sfreq, seed, difficulty)
            name = f"sub-{sid:03d}.edf"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mne.export.export_raw(out / name, raw, fmt="edf", overwrite=True, verbose="error")
            rows.append((name, sid, label))
            bar.advance(task)
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "subject", "label"])
        w.writerows(rows)
    meta = {"generator": "edgeflow.data.synthetic", "version": GENERATOR_VERSION, "seed": seed,
            "difficulty": difficulty, "n_subjects": n_subjects, "duration_s": duration_s, "sfreq": sfreq,
            "labels": {"0": "normal", "1": "abnormal"}}
    (out / "corpus.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
