"""A byte-level EDF/BDF writer for the malformed-input corpus: every header field can be set to a bad value."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ELECTRODES = ("FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T3", "T4", "T5", "T6",
              "A1", "A2", "FZ", "CZ", "PZ")
LABELS = tuple(f"EEG {e}-REF" for e in ELECTRODES)


def signals(duration_s: float, sfreq: float, seed: int = 0, n: int = len(LABELS)) -> np.ndarray:
    """(n, T) plausible EEG in uV: a 10 Hz rhythm plus noise, seeded."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration_s * sfreq))) / sfreq
    return 30.0 * np.sin(2 * np.pi * 10.0 * t + rng.uniform(0, 6, (n, 1))) + 8.0 * rng.standard_normal((n, len(t)))


def _f(value: object, width: int) -> bytes:
    text = str(value).encode("latin-1")
    return text[:width].ljust(width, b" ")


def edf_bytes(data_uv: np.ndarray, sfreq: float, *, labels: tuple[str, ...] = LABELS, kind: str = "edf",
              record_s: float = 1.0, phys: tuple[object, object] = (-3200, 3200), unit: str = "uV",
              n_records: object = None, duration_field: object = None,
              signal_fields: dict[int, dict[str, object]] | None = None,
              onsets: list[float] | None = None) -> bytes:
    """An EDF (16-bit) or BDF (24-bit) file of `data_uv` (C, T). Header values may be anything printable
    (e.g. phys=("nan", 100)); signal_fields overrides fields of one signal ({index: {"pmax": "inf"}}).
    `onsets`: an EDF+D file whose record k starts at onsets[k] seconds (an 'EDF Annotations' signal last)."""
    if onsets is not None:
        return _edf_plus_d(data_uv, sfreq, onsets, labels=labels, record_s=record_s, phys=phys, unit=unit)
    ns, total = data_uv.shape
    per_rec = int(round(sfreq * record_s))
    n_rec = total // per_rec
    dmin, dmax = (-32768, 32767) if kind == "edf" else (-8388608, 8388607)
    fields = [{"label": labels[k], "unit": unit, "pmin": phys[0], "pmax": phys[1], "dmin": dmin, "dmax": dmax,
               "n": per_rec} for k in range(ns)]
    for k, over in (signal_fields or {}).items():
        fields[k].update(over)
    head = (b"0       " if kind == "edf" else b"\xffBIOSEMI") + _f("X X X X", 80) + _f("Startdate X X X X", 80)
    head += _f("01.01.20", 8) + _f("00.00.00", 8) + _f(256 * (ns + 1), 8)
    head += _f("" if kind == "edf" else "24BIT", 44) + _f(n_rec if n_records is None else n_records, 8)
    head += _f(f"{record_s:g}" if duration_field is None else duration_field, 8) + _f(ns, 4)
    for key, width in (("label", 16), ("transducer", 80), ("unit", 8), ("pmin", 8), ("pmax", 8), ("dmin", 8),
                       ("dmax", 8), ("prefilter", 80), ("n", 8), ("reserved", 32)):
        head += b"".join(_f(f.get(key, ""), width) for f in fields)
    scale = (dmax - dmin) / (float(phys[1]) - float(phys[0])) if _finite(phys) else 1.0
    digital = np.clip(np.round((data_uv - float(phys[0]) if _finite(phys) else data_uv) * scale + dmin),
                      dmin, dmax).astype(np.int32)
    recs = digital[:, : n_rec * per_rec].reshape(ns, n_rec, per_rec).transpose(1, 0, 2)
    if kind == "edf":
        body = recs.astype("<i2").tobytes()
    else:
        b = recs.astype("<i4").reshape(-1).view(np.uint8).reshape(-1, 4)[:, :3]
        body = b.tobytes()
    return head + body


TAL_SAMPLES = 30  # 60 bytes of annotation per record: the time-keeping TAL and room to spare


def _tal(onset: float) -> bytes:
    """One record's annotation bytes: its time-keeping TAL '+onset\\x14\\x14\\x00', zero padded."""
    tal = f"+{onset:g}".encode() + b"\x14\x14\x00"
    return tal.ljust(2 * TAL_SAMPLES, b"\x00")


def _edf_plus_d(data_uv: np.ndarray, sfreq: float, onsets: list[float], *, labels: tuple[str, ...],
                record_s: float, phys: tuple[object, object], unit: str) -> bytes:
    """An EDF+D file: the signals of `data_uv` cut into len(onsets) records, record k stamped onsets[k]."""
    ns = data_uv.shape[0]
    per_rec = int(round(sfreq * record_s))
    n_rec = len(onsets)
    fields = [{"label": labels[k], "unit": unit, "pmin": phys[0], "pmax": phys[1], "dmin": -32768, "dmax": 32767,
               "n": per_rec} for k in range(ns)]
    fields.append({"label": "EDF Annotations", "unit": "", "pmin": -1, "pmax": 1, "dmin": -32768, "dmax": 32767,
                   "n": TAL_SAMPLES})
    head = b"0       " + _f("X X X X", 80) + _f("Startdate 01-JAN-2020 X X X", 80)
    head += _f("01.01.20", 8) + _f("00.00.00", 8) + _f(256 * (ns + 2), 8) + _f("EDF+D", 44) + _f(n_rec, 8)
    head += _f(f"{record_s:g}", 8) + _f(ns + 1, 4)
    for key, width in (("label", 16), ("transducer", 80), ("unit", 8), ("pmin", 8), ("pmax", 8), ("dmin", 8),
                       ("dmax", 8), ("prefilter", 80), ("n", 8), ("reserved", 32)):
        head += b"".join(_f(f.get(key, ""), width) for f in fields)
    lo, hi = float(phys[0]), float(phys[1])
    digital = np.clip(np.round((data_uv - lo) * 65535 / (hi - lo) - 32768), -32768, 32767).astype("<i2")
    body = b"".join(digital[:, k * per_rec:(k + 1) * per_rec].tobytes() + _tal(t) for k, t in enumerate(onsets))
    return head + body


def _finite(phys: tuple[object, object]) -> bool:
    try:
        lo, hi = float(phys[0]), float(phys[1])
    except ValueError:
        return False
    return bool(np.isfinite([lo, hi]).all() and hi > lo and hi - lo < 1e9)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
