"""Writers of the other recording formats the tests read through MNE: EEGLAB .set (scipy.io.savemat in EEGLAB's
layout, the data inline or in a separate .fdt), GDF 1.25 and Neuroscan CNT (byte-level, 16-bit samples)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def eeglab(path: Path, data_uv: np.ndarray, sfreq: float, labels: tuple[str, ...], fdt: bool = False) -> Path:
    """An EEGLAB dataset of `data_uv` (C, T) in uV; with fdt the samples go to a float32 .fdt next to it."""
    from scipy.io import savemat

    n_ch, n_t = data_uv.shape
    chanlocs = np.zeros((1, n_ch), dtype=[("labels", object)])
    for k, label in enumerate(labels):
        chanlocs[0, k]["labels"] = label
    eeg: dict[str, object] = {"setname": "edgeflow test", "nbchan": float(n_ch), "trials": 1.0, "pnts": float(n_t),
                              "srate": float(sfreq), "xmin": 0.0, "xmax": (n_t - 1) / sfreq, "chanlocs": chanlocs,
                              "event": np.zeros((0, 0)), "epoch": np.zeros((0, 0)), "ref": "common"}
    if fdt:
        data_file = path.with_suffix(".fdt")
        data_file.write_bytes(np.asarray(data_uv, dtype="<f4").T.tobytes())  # channels fastest (MATLAB order)
        eeg["data"] = data_file.name
        eeg["datfile"] = data_file.name
    else:
        eeg["data"] = np.asarray(data_uv, dtype=np.float32)
    savemat(path, {"EEG": eeg}, appendmat=False, format="5", oned_as="row")
    return path


def _s(text: str, width: int) -> bytes:
    return text.encode("latin-1")[:width].ljust(width, b" ")


def _digital(data_uv: np.ndarray, phys: float) -> np.ndarray:
    return np.clip(np.round(data_uv / phys * 32767), -32767, 32767).astype("<i2")


def gdf(path: Path, data_uv: np.ndarray, sfreq: float, labels: tuple[str, ...], phys: float = 3200.0,
        unit: str = "uV") -> Path:
    """A GDF 1.25 file: one-second records of int16 samples (range +-phys `unit`), an empty event table."""
    ns, total = data_uv.shape
    per = int(round(sfreq))
    n_rec = total // per
    head = b"GDF 1.25" + _s("X X", 80) + _s("edgeflow test", 80) + _s("20200101000000", 16)
    head += struct.pack("<q", 256 * (ns + 1)) + bytes(24) + bytes(20)
    head += struct.pack("<q", n_rec) + struct.pack("<II", 1, 1) + struct.pack("<I", ns)
    head += b"".join(_s(label, 16) for label in labels) + _s("", 80) * ns + _s(unit, 8) * ns
    head += struct.pack(f"<{ns}d", *[-phys] * ns) + struct.pack(f"<{ns}d", *[phys] * ns)
    head += struct.pack(f"<{ns}q", *[-32767] * ns) + struct.pack(f"<{ns}q", *[32767] * ns)
    head += _s("", 80) * ns + struct.pack(f"<{ns}i", *[per] * ns) + struct.pack(f"<{ns}i", *[3] * ns)  # 3: int16
    head += bytes(32 * ns)
    d = _digital(data_uv[:, : n_rec * per], phys)
    body = d.reshape(ns, n_rec, per).transpose(1, 0, 2).tobytes()
    events = bytes([1]) + bytes(3) + struct.pack("<I", 0)  # mode 1, no events
    path.write_bytes(head + body + events)
    return path


def cnt(path: Path, data_uv: np.ndarray, sfreq: float, labels: tuple[str, ...], uv_per_bit: float = 0.1) -> Path:
    """A Neuroscan CNT (4.x SETUP header, 75-byte electrode records, int16 samples interleaved by channel)."""
    ns, total = data_uv.shape
    setup = bytearray(900)
    setup[0:12] = b"Version 3.0\x00"
    setup[225:235] = b"01/01/20\x00\x00"
    setup[235:247] = b"00:00:00\x00\x00\x00\x00"
    data_at = 900 + 75 * ns
    struct.pack_into("<H", setup, 370, ns)
    struct.pack_into("<H", setup, 376, int(round(sfreq)))
    struct.pack_into("<i", setup, 864, total)
    struct.pack_into("<i", setup, 886, data_at + total * ns * 2)  # event table position
    struct.pack_into("<f", setup, 890, total / sfreq)
    struct.pack_into("<i", setup, 894, 0)  # channel offset: samples interleaved
    elec = bytearray()
    for k, label in enumerate(labels):
        e = bytearray(75)
        e[0:10] = label.encode("latin-1")[:9].ljust(10, b"\x00")
        angle = 2 * np.pi * k / ns
        struct.pack_into("<ff", e, 19, 0.5 + 0.4 * np.cos(angle), 0.5 + 0.4 * np.sin(angle))
        struct.pack_into("<f", e, 59, 204.8)       # sensitivity
        struct.pack_into("<f", e, 71, uv_per_bit)  # calibration: MNE scales by cal * sensitivity / 204.8 uV
        elec += e
    samples = np.clip(np.round(data_uv / uv_per_bit), -32768, 32767).astype("<i2").T.tobytes()
    teeg = struct.pack("<Bll", 1, 0, 0)
    path.write_bytes(bytes(setup) + bytes(elec) + samples + teeg)
    return path
