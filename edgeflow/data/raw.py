"""Sensor recordings (CSV, NPY/NPZ, WAV; EDF/BDF through data/sensor_edf.py) -> (channels, samples), windows cut
as a sensor card says (none across the gaps of an EDF+D file)."""

from __future__ import annotations

import csv
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeflow.data.sensor_edf import EDF_SUFFIXES, read_sensor_edf
from edgeflow.errors import DataError

if TYPE_CHECKING:
    from edgeflow.cards import ModelCard

RAW_SUFFIXES = (".csv", ".npy", ".npz", ".wav")
NPZ_KEYS = ("data", "x", "signal", "samples")          # the array an NPZ with several arrays is read from
NPZ_RATE_KEYS = ("sample_rate", "sfreq", "fs", "rate")  # an optional scalar rate, checked against the card


def is_raw(path: str | Path) -> bool:
    return Path(path).suffix.lower() in RAW_SUFFIXES


@dataclass(frozen=True)
class SensorRecording:
    """A raw recording: (channels, samples) float64 in the card's channel order, the rate the file declares (None
    for CSV and NPY), the card's channel names, and its contiguous stretches (first sample, samples, start s from
    the recording start; () = one stretch of all samples from 0 s; several for an EDF+D file with gaps)."""

    data: np.ndarray
    rate: float | None
    source: str
    names: tuple[str, ...]
    stretches: tuple[tuple[int, int, float], ...] = ()

    def runs(self) -> tuple[tuple[int, int, float], ...]:
        return self.stretches or ((0, self.data.shape[1], 0.0),)


def _orient(a: np.ndarray, n_ch: int, where: str) -> np.ndarray:
    """(samples, channels) or (channels, samples) -> (channels, samples); a square or unfitting shape refused."""
    if a.ndim == 1 and n_ch == 1:
        return a.reshape(1, -1)
    if a.ndim != 2:
        raise DataError(f"{where}: array of shape {list(a.shape)}, expected 2-D (samples, channels) or "
                        f"(channels, samples) with {n_ch} channels")
    rows, cols = a.shape
    if rows == n_ch and cols == n_ch:
        raise DataError(f"{where}: shape {list(a.shape)} is ambiguous: both axes have the card's {n_ch} channels; "
                        "save it as (samples, channels) with more samples than channels")
    if cols == n_ch:
        return a.T
    if rows == n_ch:
        return a
    raise DataError(f"{where}: shape {list(a.shape)} has no axis of the card's {n_ch} channels")


def _numeric(a: np.ndarray, where: str) -> np.ndarray:
    if a.dtype.kind not in "iuf":
        raise DataError(f"{where}: array of dtype {a.dtype}, expected numbers")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        idx = [int(k) for k in np.argwhere(bad)[0]]
        raise DataError(f"{where}: non-finite value {a[tuple(idx)]} at index {idx}")
    return a


def _read_npy(path: Path, n_ch: int) -> tuple[np.ndarray, float | None]:
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read as NPY ({type(e).__name__}: {str(e).splitlines()[0][:80]})") from None
    return _orient(_numeric(np.asarray(a), str(path)), n_ch, str(path)), None


def _read_npz(path: Path, n_ch: int) -> tuple[np.ndarray, float | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read as NPZ ({type(e).__name__}: {str(e).splitlines()[0][:80]})") from None
    rate = next((arrays.pop(k) for k in NPZ_RATE_KEYS if k in arrays and arrays[k].size == 1), None)
    keys = [k for k in NPZ_KEYS if k in arrays] or (list(arrays) if len(arrays) == 1 else [])
    if not keys:
        raise DataError(f"{path}: NPZ holds {', '.join(arrays) or 'no arrays'}; name the recording one of "
                        f"{', '.join(NPZ_KEYS)} (or save a single array)")
    where = f"{path}[{keys[0]}]"
    data = _orient(_numeric(arrays[keys[0]], where), n_ch, where)
    return data, None if rate is None else float(np.asarray(rate).reshape(()))


def _read_wav(path: Path, n_ch: int) -> tuple[np.ndarray, float | None]:
    import warnings

    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on chunks it skips (LIST metadata)
            rate, a = wavfile.read(path)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read as WAV ({type(e).__name__}: {str(e).splitlines()[0][:80]})") from None
    if a.dtype == np.int16:
        a = a.astype(np.float64) / 32768.0
    elif a.dtype.kind != "f":
        raise DataError(f"{path}: WAV samples are {a.dtype}; edgeflow reads 16-bit PCM or float WAV")
    a = a.reshape(len(a), -1)
    if a.shape[1] != n_ch:
        raise DataError(f"{path}: WAV has {a.shape[1]} channel(s), the card has {n_ch}")
    return _numeric(a, str(path)).T, float(rate)


def _cell(v: str, path: Path, row: int, col: int) -> float:
    try:
        return float(v)
    except ValueError:
        raise DataError(f"{path}: row {row}, column {col}: {v.strip()[:20]!r} is not a number") from None


def _read_csv(path: Path, names: tuple[str, ...], named: bool) -> tuple[np.ndarray, float | None]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as CSV ({type(e).__name__})") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise DataError(f"{path}: no rows (empty CSV)")
    delim = next((d for d in (",", ";", "\t") if d in lines[0]), None)
    rows = list(csv.reader(lines, delimiter=delim)) if delim else [ln.split() for ln in lines]
    header = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    cols = list(range(len(header) if header else len(rows[0]) if rows else 0))
    if header and named and set(names) <= set(header):      # the card's names pick and order the columns
        cols = [header.index(n) for n in names]
    elif len(cols) != len(names):
        what = f"{len(cols)} column(s)" + (f" ({', '.join(header)})" if header else "")
        raise DataError(f"{path}: {what}, the card has {len(names)} channel(s) ({', '.join(names)})")
    if not rows:
        raise DataError(f"{path}: a header and no data rows")
    width = len(header) if header else len(rows[0])
    first = 2 if header else 1
    out = np.empty((len(names), len(rows)))
    for r, row in enumerate(rows):
        if len(row) != width:
            raise DataError(f"{path}: row {r + first} has {len(row)} column(s), expected {width}")
        for c, k in enumerate(cols):
            out[c, r] = _cell(row[k], path, r + first, k + 1)
    return _numeric(out, str(path)), None


def read_sensor(path: str | Path, card: ModelCard) -> SensorRecording:
    """The recording in the card's channel order; a file rate (WAV, NPZ) that is not the card's is refused."""
    path = Path(path)
    names = tuple(card.input.montage)
    if path.is_dir():
        raise DataError(f"{path}: a folder, not a recording (give one .csv, .npy, .npz, .wav, .edf or .bdf file)")
    if path.suffix.lower() not in RAW_SUFFIXES + EDF_SUFFIXES:
        raise DataError(f"{path}: unknown sensor file type '{path.suffix}' (a sensor card reads "
                        f"{', '.join(RAW_SUFFIXES + EDF_SUFFIXES)})")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in EDF_SUFFIXES:
        data, rate, stretches = read_sensor_edf(path, card)
        return SensorRecording(data, rate, str(path), names, stretches)
    if suffix == ".csv":
        named = not all(n == f"ch{k + 1}" for k, n in enumerate(names))
        data, rate = _read_csv(path, names, named)
    else:
        data, rate = {".npy": _read_npy, ".npz": _read_npz, ".wav": _read_wav}[suffix](path, len(names))
    want = card.input.sample_rate
    if rate is not None and not math.isclose(rate, want, rel_tol=1e-6):
        raise DataError(f"{path}: sampled at {rate:g} Hz, the card '{card.name}' expects {want:g} Hz "
                        "(resample it, or use a card with that input.sample_rate)")
    return SensorRecording(data, rate, str(path), names)


def _scaled(data: np.ndarray, card: ModelCard) -> np.ndarray:
    i = card.input
    off = np.asarray(i.offset or (0.0,), dtype=np.float64).reshape(-1, 1)
    scale = np.asarray(i.scale or (1.0,), dtype=np.float64).reshape(-1, 1)
    return (data - off) * scale


def _cuts(rec: SensorRecording, card: ModelCard, stride_s: float | None) -> list[tuple[int, float]]:
    """(first sample, start s) of every window: one every stride within each stretch, none across a gap."""
    i = card.input
    w = i.window_samples
    s = max(1, int(round((stride_s or i.stride_s) * i.sample_rate)))
    out = []
    for a, n, t in rec.runs():
        out += [(a + k * s, t + k * s / i.sample_rate) for k in range(0 if n < w else 1 + (n - w) // s)]
    return out


def sensor_windows(rec: SensorRecording, card: ModelCard, stride_s: float | None = None) -> np.ndarray:
    """(N, C, W) float32 windows of the card's window every stride (default the card's); (raw - offset) * scale."""
    i = card.input
    w = i.window_samples
    cuts = _cuts(rec, card, stride_s)
    if not cuts:
        gaps = f" in any of its {len(rec.runs())} stretches between gaps" if len(rec.runs()) > 1 else ""
        raise DataError(f"{rec.source}: no usable {i.window_s:g} s window{gaps} (recording lasts "
                        f"{rec.data.shape[1] / i.sample_rate:.2f} s, {rec.data.shape[1]} samples at "
                        f"{i.sample_rate:g} Hz, shorter than one window of {w})")
    x = _scaled(rec.data, card)
    return np.ascontiguousarray(np.stack([x[:, a:a + w] for a, _ in cuts]), dtype=np.float32)


def sensor_window_starts(rec: SensorRecording, card: ModelCard, stride_s: float | None = None) -> list[float]:
    """Each window's start in seconds from the recording start (gaps included), as sensor_windows cuts them."""
    return [round(t, 6) for _, t in _cuts(rec, card, stride_s)]


def synth_sensor(card: ModelCard, duration_s: float, seed: int = 0) -> SensorRecording:
    """A deterministic stand-in recording (a few tones per channel plus noise) for `stream` without --input."""
    i = card.input
    n = int(round(duration_s * i.sample_rate))
    rng = np.random.default_rng(seed)
    t = np.arange(n) / i.sample_rate
    freqs = rng.uniform(0.3, max(0.5, i.sample_rate / 8), size=(i.n_channels, 3))
    data = sum(np.sin(2 * np.pi * freqs[:, k:k + 1] * t + k) for k in range(3)) + 0.3 * rng.standard_normal(
        (i.n_channels, n))
    return SensorRecording(np.asarray(data, dtype=np.float64), i.sample_rate, f"synthetic (seed {seed})",
                           tuple(i.montage))


def describe_sensor(path: str | Path, card: ModelCard) -> dict[str, Any]:
    """What `edgeflow data inspect` shows of a raw recording: channels, rate, duration, windows, per-channel range."""
    rec = read_sensor(path, card)
    i = card.input
    n = rec.data.shape[1]
    x = _scaled(rec.data, card)
    return {"file": str(path), "channels": list(rec.names), "rate": rec.rate, "card_rate": i.sample_rate,
            "n_samples": n, "duration_s": n / i.sample_rate, "window_s": i.window_s, "stride_s": i.stride_s,
            "n_windows": len(_cuts(rec, card, None)),
            "stretches": [{"start_s": t, "duration_s": m / i.sample_rate} for _, m, t in rec.runs()],
            "stats": [{"name": nm, "min": float(r.min()), "max": float(r.max()), "mean": float(r.mean()),
                       "std": float(r.std()), "flat": bool(r.std() == 0)} for nm, r in zip(rec.names, x, strict=True)]}


def render_sensor(info: dict[str, Any]) -> Any:
    """A rich table of describe_sensor()'s dict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Table(show_header=False, box=None)
    head.add_row("channels", ", ".join(info["channels"]))
    rate = (f"{info['rate']:g} Hz (file)" if info["rate"]
            else f"{info['card_rate']:g} Hz (the card's; the file has none)")
    head.add_row("rate", rate)
    head.add_row("duration", f"{info['duration_s']:.2f} s ({info['n_samples']} samples)")
    if len(info["stretches"]) > 1:
        head.add_row("stretches", ", ".join(f"{r['start_s']:g} s + {r['duration_s']:g} s" for r in info["stretches"])
                     + " (EDF+D: no window across a gap)")
    head.add_row("windows", f"{info['n_windows']} x {info['window_s']:g} s every {info['stride_s']:g} s")
    t = Table(title="channels as the model sees them ((raw - offset) * scale)")
    for col in ("channel", "min", "max", "mean", "std", ""):
        t.add_column(col, justify="left" if col == "channel" else "right")
    for s in info["stats"]:
        t.add_row(s["name"], f"{s['min']:.4g}", f"{s['max']:.4g}", f"{s['mean']:.4g}", f"{s['std']:.4g}",
                  "[yellow]flat" if s["flat"] else "")
    return Group(Text(info["file"], style="bold"), head, t)
