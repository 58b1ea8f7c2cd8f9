"""Builders of the malformed inputs (cards, recordings, build folders, ONNX files), each written under a test's tmp
folder from the shipped files: no binary blob is stored in the repository."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from . import edf

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
MICRO_ONNX = ROOT / "tests" / "cases" / "femba-micro-w2" / "model.onnx"


# ---- model cards ----------------------------------------------------------------------------------------------

def card(tmp: Path, name: str, *subs: tuple[str, str], base: str = "femba-micro") -> Path:
    """A copy of models/<base>.toml with each (old line, new line) replaced (old must occur exactly once)."""
    text = (MODELS / f"{base}.toml").read_text()
    for old, new in subs:
        assert text.count(old) == 1, (base, old)
        text = text.replace(old, new)
    p = tmp / f"{name}.toml"
    p.write_text(text)
    return p


def raw_card(tmp: Path, name: str, text: str) -> Path:
    p = tmp / f"{name}.toml"
    p.write_text(text)
    return p


# ---- recordings -----------------------------------------------------------------------------------------------

def recording(tmp: Path, name: str, duration_s: float = 12.0, sfreq: float = 256.0, **kw: object) -> Path:
    """An EDF/BDF (edf.edf_bytes keywords) of plausible EEG; `cut` drops that many bytes from the end."""
    cut = int(kw.pop("cut", 0))  # type: ignore[call-overload]
    data = kw.pop("data", None)
    if data is None:
        data = edf.signals(duration_s, sfreq)
    raw = edf.edf_bytes(np.asarray(data), sfreq, **kw)  # type: ignore[arg-type]
    return edf.write(tmp / name, raw[: len(raw) - cut] if cut else raw)


# ---- build folders --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _micro_graph():
    from edgeflow.ir.from_onnx import load_onnx

    return load_onnx(MICRO_ONNX)


def build_folder(tmp: Path, name: str = "build") -> Path:
    """graph.json + weights.npz of femba-micro and a report.json, as `edgeflow build` leaves them (no sources)."""
    from edgeflow.build import BUILD_MARKER

    d = tmp / name
    _micro_graph().save(d)
    (d / "report.json").write_text(json.dumps({"target": "rv32-virt", "macs": 1, "weight_bytes": 2, "arena_bytes": 3,
                                               "nodes": []}))
    (d / BUILD_MARKER).write_text("{}\n")
    return d


def corrupt_npz_shape(build: Path) -> None:
    """Rewrite weights.npz with its first constant cut in half (the archive stays valid)."""
    with np.load(build / "weights.npz") as z:
        arrays = {k: z[k] for k in z.files}
    first = sorted(arrays)[0]
    arrays[first] = arrays[first].reshape(-1)[: max(1, arrays[first].size // 2)]
    np.savez(build / "weights.npz", **arrays)


# ---- ONNX files (the frontend's checks) -----------------------------------------------------------------------

def onnx_variant(tmp: Path, kind: str) -> Path:
    """femba-micro's QCDQ ONNX with one defect: scan_quant_json, constant_without_value, huge_initializer or
    unused_input."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(MICRO_ONNX)
    g = m.graph
    if kind == "scan_quant_json":
        scan = next(n for n in g.node if n.op_type == "SelectiveScan")
        next(a for a in scan.attribute if a.name == "quant").s = b"{not json"
    elif kind == "constant_without_value":
        reshape = next(n for n in g.node if n.op_type == "Reshape")
        g.initializer.remove(next(i for i in g.initializer if i.name == reshape.input[1]))
        g.node.insert(0, helper.make_node("Constant", [], [reshape.input[1]], name="const_without_value"))
    elif kind == "huge_initializer":  # declares 1e12 elements, holds none: must be refused, never allocated
        init = next(i for i in g.initializer if len(i.dims) == 2)
        g.initializer.remove(init)
        big = TensorProto(name=init.name, data_type=init.data_type, dims=[1_000_000, 1_000_000])
        g.initializer.append(big)
    elif kind == "unused_input":
        g.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 4]))
    else:
        raise ValueError(kind)
    p = tmp / f"{kind}.onnx"
    onnx.save(m, p)
    return p


# ---- raw sensor recordings (CSV, NPY/NPZ, WAV) for the accel-har card (3 channels x, y, z at 50 Hz) --------------

def sensor_rows(n: int = 150, channels: int = 3) -> list[list[float]]:
    t = np.arange(n) / 50.0
    return [[round(float(np.sin(2 * np.pi * 1.5 * x + c)), 4) for c in range(channels)] for x in t]


def csv_file(tmp: Path, name: str, header: str | None = "x,y,z", rows: list[list] | None = None,
             extra: str = "") -> Path:
    """A CSV recording (one column per channel); `extra` lines appended as they are."""
    rows = sensor_rows() if rows is None else rows
    lines = ([header] if header is not None else []) + [",".join(str(v) for v in r) for r in rows]
    p = tmp / name
    p.write_text("\n".join(lines) + ("\n" + extra if extra else "") + "\n")
    return p


def npy_file(tmp: Path, name: str, a: np.ndarray) -> Path:
    p = tmp / name
    np.save(p, a)
    return p


def npz_file(tmp: Path, name: str, **arrays: np.ndarray) -> Path:
    p = tmp / name
    np.savez(p, **arrays)
    return p


def wav_file(tmp: Path, name: str, rate: int = 50, a: np.ndarray | None = None) -> Path:
    from scipy.io import wavfile

    a = (np.asarray(sensor_rows()) * 8000).astype(np.int16) if a is None else a
    p = tmp / name
    wavfile.write(p, rate, a)
    return p


def sensor_card(tmp: Path, name: str, *subs: tuple[str, str]) -> Path:
    return card(tmp, name, *subs, base="accel-har")


def recorded_build(tmp: Path, card_name: str = "femba-micro") -> Path:
    """build_folder() with the card.toml `edgeflow build` records."""
    from edgeflow.card_match import CARD_FILE, card_toml
    from edgeflow.cards import load_card

    d = build_folder(tmp)
    (d / CARD_FILE).write_text(card_toml(load_card(card_name)))
    return d
