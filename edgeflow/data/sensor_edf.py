"""EDF/BDF recordings for sensor cards: the card's channels picked by label (or taken in order for a card that only
counts them), physical values exactly as the file's scaling gives them (no unit conversion: a sensor card's scale
and offset say what the model sees), and the stretches between the gaps of an EDF+D file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeflow.data.edf_header import (
    DIGITAL,
    SAMPLE_BYTES,
    EdfHeader,
    Signal,
    check_header,
    read_header,
    record_onsets,
    segments,
)
from edgeflow.errors import DataError

if TYPE_CHECKING:
    from edgeflow.cards import ModelCard

EDF_SUFFIXES = (".edf", ".bdf")


def _key(label: str) -> str:
    return " ".join(label.split()).upper()


def _listed(labels: list[str], most: int = 8) -> str:
    return ", ".join(labels) if len(labels) <= most else ", ".join(labels[:most]) + f", ... ({len(labels)} in all)"


def generic_names(names: tuple[str, ...]) -> bool:
    """A card that only counts its channels (ch1 .. chN): the file's signals are taken in order."""
    return all(n == f"ch{k + 1}" for k, n in enumerate(names))


def pick_signals(h: EdfHeader, names: tuple[str, ...], where: str) -> list[int]:
    """Indices of the card's channels among the header's signals: by label (case and spacing ignored), or the data
    signals in order for a card of ch1 .. chN (their number must be the card's)."""
    data = [k for k, s in enumerate(h.signals) if not s.annotation]
    labels = [h.signals[k].label for k in data]
    if generic_names(names):
        if len(data) != len(names):
            raise DataError(f"{where}: {len(data)} signal(s) ({_listed(labels)}), the card has {len(names)} "
                            "channel(s) taken in order; name the card's channels after the signals to pick some")
        return data
    by_key: dict[str, list[int]] = {}
    for k in data:
        by_key.setdefault(_key(h.signals[k].label), []).append(k)
    missing = [n for n in names if _key(n) not in by_key]
    if missing:
        raise DataError(f"{where}: no signal labelled {', '.join(missing)} (the file has {_listed(labels)}); the "
                        "card's channel names pick the signals by label")
    twice = [n for n in names if len(by_key[_key(n)]) > 1]
    if twice:
        raise DataError(f"{where}: several signals labelled {', '.join(twice)}; cannot tell which one the card means")
    return [by_key[_key(n)][0] for n in names]


def _check_scaling(s: Signal, kind: str, where: str) -> None:
    lo, hi = DIGITAL[kind]
    if not lo <= s.dmin < s.dmax <= hi:
        raise DataError(f"{where}: channel '{s.label}': digital range {s.dmin} .. {s.dmax} must satisfy {lo} <= min < "
                        f"max <= {hi} ({kind.upper()})")
    if s.pmin == s.pmax:
        raise DataError(f"{where}: channel '{s.label}': physical range {s.pmin:g} .. {s.pmax:g} is empty")


def _digital(path: Path, h: EdfHeader, n_rec: int) -> np.ndarray:
    """All records as (n_rec, samples per record of all signals) int32 digital values."""
    width = SAMPLE_BYTES[h.kind]
    with open(path, "rb") as f:
        f.seek(h.header_bytes)
        raw = f.read(n_rec * h.record_bytes)
    if h.kind == "edf":
        return np.frombuffer(raw, dtype="<i2").astype(np.int32).reshape(n_rec, -1)
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width).astype(np.int32)
    v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    return np.where(v >= 1 << 23, v - (1 << 24), v).reshape(n_rec, -1)


def read_sensor_edf(path: Path, card: ModelCard) -> tuple[np.ndarray, float, tuple[tuple[int, int, float], ...]]:
    """(channels, samples) float64 physical values in the card's channel order, the file's rate (every picked
    signal must be sampled at the card's) and the stretches (first sample, samples, start s); one stretch unless
    the file is EDF+D with gaps."""
    where = str(path)
    named = path.suffix.lower().lstrip(".")
    try:
        h = read_header(path, named)
    except OSError as e:
        raise DataError(f"{where}: cannot read ({e.strerror or e})") from None
    check_header(h, path, lambda label: False)   # sizes, record length, finite ranges; the picked ones below
    picked = pick_signals(h, tuple(card.input.montage), where)
    want = card.input.sample_rate
    for k in picked:
        s = h.signals[k]
        _check_scaling(s, h.kind, where)
        if not math.isclose(s.n_samples / h.record_s, want, rel_tol=1e-6):
            raise DataError(f"{where}: channel '{s.label}' is sampled at {s.n_samples / h.record_s:g} Hz, the card "
                            f"'{card.name}' expects {want:g} Hz (resample it, or use a card with that "
                            "input.sample_rate)")
    n_rec = h.n_records if h.n_records > 0 else (h.file_bytes - h.header_bytes) // h.record_bytes
    d = _digital(path, h, n_rec)
    starts = np.cumsum([0] + [s.n_samples for s in h.signals])
    rows = []
    for k in picked:
        s = h.signals[k]
        x = d[:, starts[k]:starts[k + 1]].reshape(-1).astype(np.float64)
        rows.append(s.pmin + (x - s.dmin) * ((s.pmax - s.pmin) / (s.dmax - s.dmin)))
    data = np.stack(rows)
    per = h.signals[picked[0]].n_samples
    if not h.discontinuous:
        return data, want, ((0, data.shape[1], 0.0),)
    runs = segments(h, record_onsets(path, h), where)
    return data, want, tuple((r0 * per, n * per, t) for r0, n, t in runs)
