"""EEG input stage: read recordings with MNE, derive the montage, filter, resample, normalise, window."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import mne
import numpy as np
from scipy import signal

from edgeflow.data.edf_header import check_header, read_header, record_onsets, segments, unit_problems
from edgeflow.data.formats import NAMES, SUFFIXES, file_kind, gdf_unit_notes, mne_read  # noqa: F401
from edgeflow.data.inspect_view import render_inspect  # noqa: F401  (re-exported: the CLI's view)
from edgeflow.data.montage import (  # noqa: F401
    TCP_ELECTRODES,
    TCP_MONTAGE,
    TCP_NAMES,
    apply_montage,
    canonical_name,
    channel_names,
    missing_message,
    resolve_montage,
    source_of,
    wanted,
)
from edgeflow.data.quality import CLIP_FRACTION, FLAT_V, electrode_problems, used_channels  # noqa: F401
from edgeflow.errors import DataError

MAX_UPSAMPLE = 4  # a recording slower than the model's rate / 4 holds too little of what the model was trained on


class DataWarning(UserWarning):
    """A recording is usable but suspicious (flat channels, implausible amplitude)."""


@dataclass(frozen=True)
class Preprocess:
    """How a recording becomes model input; mirrors a model card's [input] section."""

    sample_rate: float = 256.0
    bandpass: tuple[float, float] | None = (0.5, 70.0)
    notch: float | None = None
    window_s: float = 5.0
    stride_s: float = 5.0
    montage: str | tuple[str, ...] = "tcp"
    normalize: str = "iqr"  # "iqr" (FEMBA), "zscore" or "none"
    electrodes: tuple[tuple[str, str], ...] = ()  # a card's map (10-20 name, recorded label), e.g. of a BioSemi cap

    def __post_init__(self) -> None:
        for field_name in ("sample_rate", "window_s", "stride_s"):
            if not getattr(self, field_name) > 0:
                raise DataError(f"preprocess: {field_name} must be > 0, got {getattr(self, field_name)}")
        if self.bandpass is not None and not 0 <= self.bandpass[0] < self.bandpass[1]:
            raise DataError(f"preprocess: bandpass must satisfy 0 <= low < high, got {self.bandpass}")
        if self.normalize not in ("iqr", "zscore", "none"):
            raise DataError(f"preprocess: normalize must be iqr, zscore or none, got '{self.normalize}'")
        if isinstance(self.montage, list):
            object.__setattr__(self, "montage", tuple(self.montage))
        if isinstance(self.montage, str) and self.montage != "tcp":
            raise DataError(f"preprocess: montage must be 'tcp' or a tuple of names, got '{self.montage}'")
        pairs = self.electrodes.items() if isinstance(self.electrodes, dict) else self.electrodes
        object.__setattr__(self, "electrodes", tuple((str(a), str(b)) for a, b in pairs))

    @classmethod
    def from_card(cls, card: Any) -> Preprocess:
        i = card.input
        return cls(sample_rate=i.sample_rate, bandpass=i.bandpass, window_s=i.window_s,
                   stride_s=i.stride_s, montage=i.montage, electrodes=getattr(i, "electrodes", ()))

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))

    @property
    def stride_samples(self) -> int:
        return max(1, int(round(self.stride_s * self.sample_rate)))

    @property
    def channel_names(self) -> tuple[str, ...]:
        return TCP_NAMES if self.montage == "tcp" else tuple(self.montage)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.electrodes:  # absent unless a card maps electrodes: the cache keys of other cards stay
            del d["electrodes"]
        return d


@dataclass
class Recording:
    """A preprocessed recording: (C, T) float32 at the model's rate, normalised per channel. `segments`: where
    each stretch between the gaps of a discontinuous recording begins, (first sample in data, start s in the
    recording); windows never straddle two."""

    data: np.ndarray
    sfreq: float
    ch_names: list[str]
    source: str
    duration_s: float
    segments: tuple[tuple[int, float], ...] = ((0, 0.0),)


@dataclass(frozen=True)
class RawRecording:
    """A recording as read: the MNE raw, its contiguous stretches (first sample, samples, start s from the
    recording start; one unless an EDF+D file has gaps) and header notes (odd units) for the warnings."""

    raw: mne.io.BaseRaw
    stretches: tuple[tuple[int, int, float], ...]
    notes: tuple[str, ...] = ()


def read_recording(path: str | Path) -> RawRecording:
    """Read .edf/.bdf/.fif/.vhdr/.set/.gdf/.cnt with MNE (data loaded), an EDF/BDF header checked first and an
    EDF+D file's record times read from its annotations; every failure is a one-line DataError."""
    p = Path(path)
    named = kind = file_kind(p)
    header, runs, notes, blank = None, None, [], []
    if kind in ("edf", "bdf"):  # the header, not the name, says which; checked before MNE reads garbage
        try:
            header = read_header(p, kind)
        except OSError as e:
            raise DataError(f"{p}: cannot read ({e.strerror or e})") from None
        check_header(header, p, lambda label: canonical_name(label) is not None)
        notes = unit_problems(header, lambda label: canonical_name(label) is not None)
        blank = [s.label for s in header.signals if not s.annotation and not s.unit.strip()
                 and canonical_name(s.label) is not None]
        kind = header.kind
        if kind != named:
            warnings.warn(f"{p}: a {kind.upper()} file named {p.suffix}; read as {kind.upper()}", DataWarning,
                          stacklevel=2)
        if header.discontinuous:
            runs = segments(header, record_onsets(p, header), str(p))
    if kind == "gdf":
        notes = gdf_unit_notes(p, lambda label: canonical_name(label) is not None)
    raw = mne_read(p, kind, named, blank)
    if runs is None or header is None:
        return RawRecording(raw, ((0, raw.n_times, 0.0),), tuple(notes))
    per = int(round(float(raw.info["sfreq"]) * header.record_s))  # samples per record at MNE's rate
    if (held := sum(n for _, n, _ in runs) * per) != raw.n_times:  # MNE joins the records, gaps left out
        raise DataError(f"{p}: MNE read {raw.n_times} samples, the {header.reserved} records hold {held}; the gaps "
                        "cannot be placed")
    return RawRecording(raw, tuple((r0 * per, n * per, t) for r0, n, t in runs), tuple(notes))


def read_raw(path: str | Path) -> mne.io.BaseRaw:
    """The MNE raw of read_recording (the stretches of an EDF+D file left out)."""
    return read_recording(path).raw


def _filter(x: np.ndarray, sfreq: float, pp: Preprocess) -> np.ndarray:
    nyq = sfreq / 2
    lo, hi = pp.bandpass or (0.0, nyq)
    use_lo, use_hi = lo > 0, hi < 0.95 * nyq  # nothing to remove above the source's Nyquist rate
    if use_lo or use_hi:  # zero-phase 4th-order Butterworth; the padding covers the high-pass transient
        wn, kind = ([lo, hi], "bandpass") if use_lo and use_hi else (lo, "high") if use_lo else (hi, "low")
        sos = signal.butter(4, wn, btype=kind, fs=sfreq, output="sos")
        x = signal.sosfiltfilt(sos, x, axis=-1, padlen=min(x.shape[1] - 1, int(3 * sfreq / max(lo, 0.5))))
    if pp.notch:
        for f in np.arange(pp.notch, 0.95 * nyq, pp.notch):
            b, a = signal.iirnotch(f, Q=30.0, fs=sfreq)
            x = signal.filtfilt(b, a, x, axis=-1)
    return x


def _resample(x: np.ndarray, sfreq: float, target: float) -> np.ndarray:
    if abs(sfreq - target) < 1e-9:
        return x
    ratio = Fraction(target / sfreq).limit_denominator(1000)
    return signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1, padtype="line")


def min_source_rate(pp: Preprocess) -> float:
    """The lowest recording rate the model accepts: its input rate / MAX_UPSAMPLE, and above the band-pass low edge."""
    low = pp.bandpass[0] if pp.bandpass else 0.0
    return max(pp.sample_rate / MAX_UPSAMPLE, 4.0 * low)


def _lasts(n: int, sfreq: float, pp: Preprocess) -> bool:
    return n / sfreq + 0.5 / sfreq >= pp.window_s


def condition(raw: mne.io.BaseRaw, pp: Preprocess, source: str = "",
              stretches: tuple[tuple[int, int, float], ...] | None = None) -> tuple[list[tuple[float, np.ndarray]],
                                                                                   list[str]]:
    """Montage -> checks -> band-pass/notch -> resample, each stretch between gaps on its own (one for a
    continuous recording); [(start s, (C, T) float64 volts at pp.sample_rate)] for the stretches that hold a
    window, and the channel names."""
    src = source_of(raw, source)
    x, names = apply_montage(raw, pp.montage, src, pp.electrodes)
    bad = [n for n, row in zip(names, x, strict=True) if not np.isfinite(row).all()]
    if bad:
        raise DataError(f"{src}: non-finite samples (NaN/Inf) in channel(s) {', '.join(bad)}")
    sfreq = float(raw.info["sfreq"])
    if sfreq < min_source_rate(pp):
        raise DataError(f"{src}: sampled at {sfreq:g} Hz, below the {min_source_rate(pp):g} Hz this model needs "
                        f"(its {pp.sample_rate:g} Hz input upsampled at most {MAX_UPSAMPLE}x)")
    stretches = stretches or ((0, x.shape[1], 0.0),)
    long = [(n0, n, t) for n0, n, t in stretches if _lasts(n, sfreq, pp)]
    if not long:
        longest = max(n for _, n, _ in stretches) / sfreq
        if len(stretches) == 1:
            raise DataError(f"{src}: recording lasts {longest:.2f} s, shorter than one {pp.window_s:g} s window")
        raise DataError(f"{src}: no stretch between the recording's {len(stretches) - 1} gap(s) lasts one "
                        f"{pp.window_s:g} s window (the longest lasts {longest:.2f} s)")
    parts = []
    for n0, n, t in long:
        y = _resample(_filter(x[:, n0:n0 + n], sfreq, pp), sfreq, pp.sample_rate)
        if y.shape[1] < pp.window_samples:  # rounding of the resampled length can lose a sample
            y = np.pad(y, ((0, 0), (0, pp.window_samples - y.shape[1])), mode="edge")
        parts.append((t, y))
    return parts, names


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q25, med, q75 = np.percentile(x, [25, 50, 75], axis=1)
    return med, q75 - q25, x.std(axis=1)


def normalise(x: np.ndarray, method: str = "iqr") -> np.ndarray:
    """Per channel: (x - median) / IQR as in FEMBA (or z-score); a flat channel is centred, not scaled."""
    if method == "none":
        return x
    med, iqr, std = _stats(x)
    if method == "zscore":
        centre, scale = x.mean(axis=1), std
    else:
        centre, scale = med, np.where(iqr > FLAT_V, iqr, std)
    scale = np.where(scale > FLAT_V, scale, 1.0)
    return (x - centre[:, None]) / scale[:, None]


def _warn(src: str, lines: list[str] | tuple[str, ...]) -> None:
    for line in lines:
        warnings.warn(f"{src}: {line}", DataWarning, stacklevel=3)


def preprocess(raw: mne.io.BaseRaw, pp: Preprocess, source: str = "",
               stretches: tuple[tuple[int, int, float], ...] | None = None, notes: tuple[str, ...] = ()) -> Recording:
    """Montage, filter, resample and normalise one recording (each stretch between gaps apart); warns
    (DataWarning) about odd units, flat, clipped or bridged electrodes, flat derivations, implausible amplitudes
    and stretches too short for a window."""
    src = source_of(raw, source)
    parts, names = condition(raw, pp, src, stretches)
    _warn(src, notes)
    found, _ = resolve_montage(raw, pp.montage, pp.electrodes)
    _warn(src, electrode_problems(raw, used_channels(found)))
    x = np.concatenate([y for _, y in parts], axis=1) if len(parts) > 1 else parts[0][1]
    _, iqr, std = _stats(x)
    flat = [n for n, q, s in zip(names, iqr, std, strict=True) if q < FLAT_V or s < FLAT_V]
    if flat:
        warnings.warn(f"{src}: flat channel(s) {', '.join(flat)}", DataWarning, stacklevel=2)
    if np.median(iqr) > 1e-2:
        warnings.warn(f"{src}: median channel IQR is {np.median(iqr):.3g} V; are the samples in volts?",
                      DataWarning, stacklevel=2)
    if stretches and (short := len(stretches) - len(parts)):
        warnings.warn(f"{src}: {short} of {len(stretches)} stretch(es) between gaps shorter than one "
                      f"{pp.window_s:g} s window, left out", DataWarning, stacklevel=2)
    data = normalise(x, pp.normalize).astype(np.float32)
    offsets = np.cumsum([0] + [y.shape[1] for _, y in parts[:-1]])
    return Recording(data=data, sfreq=pp.sample_rate, ch_names=names, source=src,
                     duration_s=data.shape[1] / pp.sample_rate,
                     segments=tuple((int(o), float(t)) for o, (t, _) in zip(offsets, parts, strict=True)))


def n_windows(n_samples: int, pp: Preprocess) -> int:
    return 0 if n_samples < pp.window_samples else 1 + (n_samples - pp.window_samples) // pp.stride_samples


def _segment_bounds(rec: Recording) -> list[tuple[int, int, float]]:
    ends = [a for a, _ in rec.segments[1:]] + [rec.data.shape[1]]
    return [(a, b, t) for (a, t), b in zip(rec.segments, ends, strict=True)]


def windows(rec: Recording, pp: Preprocess) -> np.ndarray:
    """(N, C, W) float32 windows of pp.window_s every pp.stride_s within each segment (none straddles a gap);
    a trailing partial window is dropped."""
    w, s = pp.window_samples, pp.stride_samples
    chunks = []
    for a, b, _ in _segment_bounds(rec):
        if n := n_windows(b - a, pp):
            view = np.lib.stride_tricks.sliding_window_view(rec.data[:, a:b], w, axis=1)[:, : (n - 1) * s + 1 : s]
            chunks.append(view.transpose(1, 0, 2))
    if not chunks:
        raise DataError(f"{rec.source}: recording lasts {rec.duration_s:.2f} s, shorter than one "
                        f"{pp.window_s:g} s window")
    return np.ascontiguousarray(chunks[0] if len(chunks) == 1 else np.concatenate(chunks), dtype=np.float32)


def window_starts(rec: Recording, pp: Preprocess) -> np.ndarray:
    """Each window's start, seconds from the recording start (gaps of a discontinuous recording included)."""
    step = pp.stride_samples / pp.sample_rate
    return np.asarray([t + k * step for a, b, t in _segment_bounds(rec) for k in range(n_windows(b - a, pp))])


def load_recording(path: str | Path, pp: Preprocess) -> Recording:
    r = read_recording(path)
    return preprocess(r.raw, pp, source=str(path), stretches=r.stretches, notes=r.notes)


def load_windows(path: str | Path, pp: Preprocess) -> np.ndarray:
    return windows(load_recording(path, pp), pp)


def load_timed_windows(path: str | Path, pp: Preprocess) -> tuple[np.ndarray, np.ndarray]:
    """load_windows and each window's start (s from the recording start)."""
    rec = load_recording(path, pp)
    return windows(rec, pp), window_starts(rec, pp)


def describe(path: str | Path, pp: Preprocess) -> dict[str, Any]:
    """What `edgeflow data inspect FILE` shows: channels found/missing, stretches between gaps, windows,
    per-channel statistics and every data-quality problem."""
    r = read_recording(path)
    raw, sfreq = r.raw, float(r.raw.info["sfreq"])
    found, missing = resolve_montage(raw, pp.montage, pp.electrodes)
    ops = {(0, 1.0): "", (0, -1.0): "-", (1, 1.0): " + ", (1, -1.0): " - "}
    how = {n: "".join(ops[min(k, 1), s] + raw.ch_names[i] for k, (i, s) in enumerate(terms))
           for n, terms in found}
    info: dict[str, Any] = {
        "file": str(path), "sfreq": sfreq, "n_samples": raw.n_times, "duration_s": raw.n_times / sfreq,
        "channels": list(raw.ch_names),
        "recognised": dict(zip(raw.ch_names, channel_names(list(raw.ch_names), pp.electrodes), strict=True)),
        "montage": pp.montage if isinstance(pp.montage, str) else list(pp.montage),
        "montage_channels": [{"name": n, "found": n in how, "from": how.get(n, "")} for n in wanted(pp.montage)],
        "stretches": [{"start_s": t, "duration_s": n / sfreq} for _, n, t in r.stretches],
        "missing": missing, "preprocess": pp.to_dict(), "n_windows": 0, "stats": [], "problems": list(r.notes),
    }
    if missing:
        line = missing_message(raw, pp.montage, missing, str(path)).removeprefix(f"{path}: ")
        info["problems"].append(line if "BioSemi" in line else f"missing channel(s) for the montage: "
                                f"{', '.join(missing)}")
        return info
    try:
        parts, names = condition(raw, pp, str(path), r.stretches)
    except DataError as e:
        info["problems"].append(str(e))
        return info
    x = np.concatenate([y for _, y in parts], axis=1)
    med, iqr, std = _stats(x)
    norm = normalise(x, pp.normalize)
    info["n_windows"] = sum(n_windows(y.shape[1], pp) for _, y in parts)
    info["stats"] = [{"name": n, "median_uv": m * 1e6, "iqr_uv": q * 1e6, "std_uv": s * 1e6,
                      "max_abs_norm": float(np.abs(row).max()), "flat": bool(q < FLAT_V or s < FLAT_V)}
                     for n, m, q, s, row in zip(names, med, iqr, std, norm, strict=True)]
    if flat := [s["name"] for s in info["stats"] if s["flat"]]:
        info["problems"].append(f"flat channel(s) {', '.join(flat)}")
    info["problems"].extend(electrode_problems(raw, used_channels(found)))
    return info


def require_usable(info: dict[str, Any]) -> None:
    """DataError (one line naming the file) when describe() found no usable window."""
    if not info["n_windows"]:
        why = info["problems"][0] if info["problems"] else "no window"
        why = why.removeprefix(f"{info['file']}: ")
        raise DataError(f"{info['file']}: no usable {info['preprocess']['window_s']:g} s window ({why})")
