"""EEG input stage: read recordings with MNE, derive the montage, filter, resample, normalise, window."""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import mne
import numpy as np
from scipy import signal

from edgeflow.data.edf_header import check_header, read_header
from edgeflow.data.inspect_view import render_inspect  # noqa: F401  (re-exported: the CLI's view)
from edgeflow.errors import DataError

# TUH temporal central parasagittal (TCP) bipolar montage. The order is fixed: the model reads it as
# 11 pairs of rows ((2, 16) patches), so rows 2k and 2k+1 always form one patch row.
TCP_MONTAGE: tuple[tuple[str, str], ...] = (
    ("FP1", "F7"), ("F7", "T3"), ("T3", "T5"), ("T5", "O1"),
    ("FP2", "F8"), ("F8", "T4"), ("T4", "T6"), ("T6", "O2"),
    ("A1", "T3"), ("T3", "C3"), ("C3", "CZ"), ("CZ", "C4"), ("C4", "T4"), ("T4", "A2"),
    ("FP1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"),
    ("FP2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2"),
)
TCP_NAMES: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in TCP_MONTAGE)
TCP_ELECTRODES: tuple[str, ...] = tuple(dict.fromkeys(e for pair in TCP_MONTAGE for e in pair))

# modern 10-10 names -> the 10-20 names TUH uses
ALIASES = {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6", "M1": "A1", "M2": "A2"}
_ELECTRODE = re.compile(r"^(?:NZ|IZ|A[12]|M[12]|(?:FP|AF|FT|FC|TP|CP|PO|F|T|C|P|O|I)(?:Z|\d{1,2}))$")
_PREFIX = re.compile(r"^(?:EEG|POL)[\s_:]+")
FLAT_V = 1e-7  # a derivation whose IQR or std after filtering is below 0.1 uV is treated as flat
CLIP_FRACTION = 0.01  # a channel with more of its samples at its extreme value than this is clipped
MAX_UPSAMPLE = 4  # a recording slower than the model's rate / 4 holds too little of what the model was trained on
SUFFIXES = {".edf": "edf", ".bdf": "bdf", ".fif": "fif", ".fif.gz": "fif", ".vhdr": "brainvision"}


class DataWarning(UserWarning):
    """A recording is usable but suspicious (flat channels, implausible amplitude)."""


def _electrode(token: str) -> str | None:
    tok = ALIASES.get(token, token)
    return tok if _ELECTRODE.match(tok) else None


def canonical_name(name: str) -> str | None:
    """'EEG Fp1-REF' -> 'FP1', 'EEG T7-F7' -> 'T3-F7'; None if the name is not an EEG electrode."""
    s = _PREFIX.sub("", name.strip().upper()).rstrip(".")
    s = re.sub(r"\s+", "", s)
    parts = s.split("-")
    first = _electrode(parts[0])
    if first is None or len(parts) > 2:
        return None
    if len(parts) == 2 and (second := _electrode(parts[1])) is not None:
        return f"{first}-{second}"
    return first  # referential: '-REF', '-LE', '-AR', '-AVG', ... or no suffix at all


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

    @classmethod
    def from_card(cls, card: Any) -> Preprocess:
        i = card.input
        return cls(sample_rate=i.sample_rate, bandpass=i.bandpass, window_s=i.window_s,
                   stride_s=i.stride_s, montage=i.montage)

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
        return asdict(self)


@dataclass
class Recording:
    """A preprocessed recording: (C, T) float32 at the model's rate, normalised per channel."""

    data: np.ndarray
    sfreq: float
    ch_names: list[str]
    source: str
    duration_s: float


def read_raw(path: str | Path) -> mne.io.BaseRaw:
    """Read .edf/.bdf/.fif/.vhdr with MNE (data loaded); every failure is a one-line DataError."""
    p = Path(path)
    kind = next((k for suffix, k in SUFFIXES.items() if p.name.lower().endswith(suffix)), None)
    if kind is None:
        raise DataError(f"{p}: unknown EEG file type '{p.suffix}' (expected .edf, .bdf, .fif or .vhdr)")
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    named = kind
    if kind in ("edf", "bdf"):  # the header, not the name, says which; checked before MNE reads garbage
        try:
            header = read_header(p, kind)
        except OSError as e:
            raise DataError(f"{p}: cannot read ({e.strerror or e})") from None
        check_header(header, p, lambda label: canonical_name(label) is not None)
        kind = header.kind
        if kind != named:
            warnings.warn(f"{p}: a {kind.upper()} file named {p.suffix}; read as {kind.upper()}", DataWarning,
                          stacklevel=2)
    reader = {"edf": mne.io.read_raw_edf, "bdf": mne.io.read_raw_bdf, "fif": mne.io.read_raw_fif,
              "brainvision": mne.io.read_raw_brainvision}[kind]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == named:
                return reader(p, preload=True, verbose="error")
            with open(p, "rb") as f:  # MNE insists on the suffix for a path, not for an open file
                return reader(f, preload=True, verbose="error")
    except Exception as e:  # MNE raises many types for a bad file; the user needs one line
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{p}: cannot read as {kind.upper()} ({msg})") from None


def _source(raw: mne.io.BaseRaw, source: str = "") -> str:
    if source:
        return source
    files = [f for f in (raw.filenames or ()) if f]
    return str(files[0]) if files else "<in-memory recording>"


def _wanted(montage: str | tuple[str, ...] | list[str]) -> list[str]:
    if isinstance(montage, str):
        if montage != "tcp":
            raise DataError(f"montage must be 'tcp' or a list of channel names, got '{montage}'")
        return list(TCP_NAMES)
    out = []
    for name in montage:
        canon = canonical_name(name)
        if canon is None:
            raise DataError(f"montage channel '{name}' is not an EEG electrode or bipolar pair name")
        out.append(canon)
    return out


def resolve_montage(raw: mne.io.BaseRaw, montage: str | tuple[str, ...] | list[str]
                    ) -> tuple[list[tuple[str, list[tuple[int, float]]]], list[str]]:
    """For each wanted channel: (name, [(raw index, sign), ...]); plus the missing names (all of them)."""
    ref: dict[str, int] = {}
    bip: dict[tuple[str, str], int] = {}
    for i, ch in enumerate(raw.ch_names):
        canon = canonical_name(ch)
        if canon is None:
            continue
        if "-" in canon:
            a, b = canon.split("-")
            bip.setdefault((a, b), i)
        else:
            ref.setdefault(canon, i)
    found, missing = [], []
    for name in _wanted(montage):
        if "-" not in name:
            if name in ref:
                found.append((name, [(ref[name], 1.0)]))
            else:
                missing.append(name)
            continue
        a, b = name.split("-")
        if (a, b) in bip:
            found.append((name, [(bip[a, b], 1.0)]))
        elif (b, a) in bip:
            found.append((name, [(bip[b, a], -1.0)]))
        elif a in ref and b in ref:
            found.append((name, [(ref[a], 1.0), (ref[b], -1.0)]))
        elif r := next((r for (x, r) in bip if x == a and (b, r) in bip), None):  # e.g. FP1-A1 and F7-A1
            found.append((name, [(bip[a, r], 1.0), (bip[b, r], -1.0)]))
        elif ref:  # a referential recording: name the electrodes it lacks
            missing.extend(e for e in (a, b) if e not in ref and e not in missing)
        else:
            missing.append(name)
    return found, missing


def apply_montage(raw: mne.io.BaseRaw, montage: str | tuple[str, ...] | list[str] = "tcp",
                  source: str = "") -> tuple[np.ndarray, list[str]]:
    """Derive the montage channels as (C, T) float64 volts; DataError listing every missing channel."""
    found, missing = resolve_montage(raw, montage)
    if missing:
        label = "tcp" if montage == "tcp" else "requested"
        raise DataError(f"{_source(raw, source)}: missing {len(missing)} channel(s) for the {label} montage: "
                        f"{', '.join(missing)}")
    idx = sorted({i for _, terms in found for i, _ in terms})
    src = raw.get_data(picks=idx).astype(np.float64, copy=False)
    row = {i: k for k, i in enumerate(idx)}
    out = np.zeros((len(found), src.shape[1]))
    for c, (_, terms) in enumerate(found):
        for i, sign in terms:
            out[c] += sign * src[row[i]]
    return out, [name for name, _ in found]


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


def condition(raw: mne.io.BaseRaw, pp: Preprocess, source: str = "") -> tuple[np.ndarray, list[str]]:
    """Montage -> checks -> band-pass/notch -> resample; (C, T) float64 volts at pp.sample_rate."""
    src = _source(raw, source)
    x, names = apply_montage(raw, pp.montage, src)
    bad = [n for n, row in zip(names, x, strict=True) if not np.isfinite(row).all()]
    if bad:
        raise DataError(f"{src}: non-finite samples (NaN/Inf) in channel(s) {', '.join(bad)}")
    sfreq = float(raw.info["sfreq"])
    if sfreq < min_source_rate(pp):
        raise DataError(f"{src}: sampled at {sfreq:g} Hz, below the {min_source_rate(pp):g} Hz this model needs "
                        f"(its {pp.sample_rate:g} Hz input upsampled at most {MAX_UPSAMPLE}x)")
    duration = x.shape[1] / sfreq
    if duration + 0.5 / sfreq < pp.window_s:
        raise DataError(f"{src}: recording lasts {duration:.2f} s, shorter than one {pp.window_s:g} s window")
    x = _resample(_filter(x, sfreq, pp), sfreq, pp.sample_rate)
    if x.shape[1] < pp.window_samples:  # rounding of the resampled length can lose a sample
        x = np.pad(x, ((0, 0), (0, pp.window_samples - x.shape[1])), mode="edge")
    return x, names


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


def clipped_channels(raw: mne.io.BaseRaw, pp: Preprocess) -> list[str]:
    """Recorded channels used by the montage whose samples sit at their extreme value (the amplifier's or the
    file's range) in more than CLIP_FRACTION of the recording; one channel at a time (bounded memory)."""
    found, _ = resolve_montage(raw, pp.montage)
    out = []
    for i in sorted({i for _, terms in found for i, _ in terms}):
        row = raw.get_data(picks=[i])[0]
        if row.size and row.max() > row.min():
            at_edge = np.count_nonzero(row == row.max()) + np.count_nonzero(row == row.min())
            if at_edge > CLIP_FRACTION * row.size:
                out.append(raw.ch_names[i])
    return out


def preprocess(raw: mne.io.BaseRaw, pp: Preprocess, source: str = "") -> Recording:
    """Montage, filter, resample and normalise one recording; warns (DataWarning) about flat or clipped
    channels and implausible amplitudes."""
    src = _source(raw, source)
    x, names = condition(raw, pp, src)
    if clipped := clipped_channels(raw, pp):
        warnings.warn(f"{src}: clipped channel(s) {', '.join(clipped)} (over {CLIP_FRACTION:.0%} of the samples "
                      "at the range limit)", DataWarning, stacklevel=2)
    _, iqr, std = _stats(x)
    flat = [n for n, q, s in zip(names, iqr, std, strict=True) if q < FLAT_V or s < FLAT_V]
    if flat:
        warnings.warn(f"{src}: flat channel(s) {', '.join(flat)}", DataWarning, stacklevel=2)
    if np.median(iqr) > 1e-2:
        warnings.warn(f"{src}: median channel IQR is {np.median(iqr):.3g} V; are the samples in volts?",
                      DataWarning, stacklevel=2)
    data = normalise(x, pp.normalize).astype(np.float32)
    return Recording(data=data, sfreq=pp.sample_rate, ch_names=names, source=src,
                     duration_s=data.shape[1] / pp.sample_rate)


def n_windows(n_samples: int, pp: Preprocess) -> int:
    return 0 if n_samples < pp.window_samples else 1 + (n_samples - pp.window_samples) // pp.stride_samples


def windows(rec: Recording, pp: Preprocess) -> np.ndarray:
    """(N, C, W) float32 windows of pp.window_s every pp.stride_s; a trailing partial window is dropped."""
    w, s = pp.window_samples, pp.stride_samples
    n = n_windows(rec.data.shape[1], pp)
    if n == 0:
        raise DataError(f"{rec.source}: recording lasts {rec.duration_s:.2f} s, shorter than one "
                        f"{pp.window_s:g} s window")
    view = np.lib.stride_tricks.sliding_window_view(rec.data, w, axis=1)[:, : (n - 1) * s + 1 : s]
    return np.ascontiguousarray(view.transpose(1, 0, 2), dtype=np.float32)


def load_recording(path: str | Path, pp: Preprocess) -> Recording:
    return preprocess(read_raw(path), pp, source=str(path))


def load_windows(path: str | Path, pp: Preprocess) -> np.ndarray:
    return windows(load_recording(path, pp), pp)


def describe(path: str | Path, pp: Preprocess) -> dict[str, Any]:
    """What `edgeflow data inspect FILE` shows: channels found/missing, windows, per-channel statistics."""
    raw = read_raw(path)
    sfreq = float(raw.info["sfreq"])
    found, missing = resolve_montage(raw, pp.montage)
    ops = {(0, 1.0): "", (0, -1.0): "-", (1, 1.0): " + ", (1, -1.0): " - "}
    how = {n: "".join(ops[min(k, 1), s] + raw.ch_names[i] for k, (i, s) in enumerate(terms))
           for n, terms in found}
    info: dict[str, Any] = {
        "file": str(path), "sfreq": sfreq, "n_samples": raw.n_times, "duration_s": raw.n_times / sfreq,
        "channels": list(raw.ch_names), "recognised": {ch: canonical_name(ch) for ch in raw.ch_names},
        "montage": pp.montage if isinstance(pp.montage, str) else list(pp.montage),
        "montage_channels": [{"name": n, "found": n in how, "from": how.get(n, "")}
                             for n in _wanted(pp.montage)],
        "missing": missing, "preprocess": pp.to_dict(), "n_windows": 0, "stats": [], "problems": [],
    }
    if missing:
        info["problems"].append(f"missing channel(s) for the montage: {', '.join(missing)}")
        return info
    try:
        x, names = condition(raw, pp, str(path))
    except DataError as e:
        info["problems"].append(str(e))
        return info
    med, iqr, std = _stats(x)
    norm = normalise(x, pp.normalize)
    info["n_windows"] = n_windows(x.shape[1], pp)
    info["stats"] = [{"name": n, "median_uv": m * 1e6, "iqr_uv": q * 1e6, "std_uv": s * 1e6,
                      "max_abs_norm": float(np.abs(r).max()), "flat": bool(q < FLAT_V or s < FLAT_V)}
                     for n, m, q, s, r in zip(names, med, iqr, std, norm, strict=True)]
    if flat := [s["name"] for s in info["stats"] if s["flat"]]:
        info["problems"].append(f"flat channel(s) {', '.join(flat)}")
    if clipped := clipped_channels(raw, pp):
        info["problems"].append(f"clipped channel(s) {', '.join(clipped)}")
    return info


def require_usable(info: dict[str, Any]) -> None:
    """DataError (one line naming the file) when describe() found no usable window."""
    if not info["n_windows"]:
        why = info["problems"][0] if info["problems"] else "no window"
        why = why.removeprefix(f"{info['file']}: ")
        raise DataError(f"{info['file']}: no usable {info['preprocess']['window_s']:g} s window ({why})")
