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
