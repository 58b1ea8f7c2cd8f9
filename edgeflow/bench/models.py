"""Bench subjects: one card at one weight width, its quantized and float models, exports, host build and windows."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeflow.errors import EdgeflowError

CALIB_WINDOWS = 16  # PTQ calibration windows when a float checkpoint is quantized here (no shipped quant.pt)
SEED = 1


class BenchError(EdgeflowError):
    """The bench cannot run as asked (unknown peer, model that cannot be prepared)."""


@dataclass
class Subject:
    """What every peer of one (card, bits) row needs; paths are inside `folder`."""

    card: str
    bits: int
    folder: Path
    quant_source: str           # where the quantized model came from
    float_source: str           # where the PyTorch float model came from
    onnx: Path                  # QCDQ, scan form (edgeflow, onnxruntime)
    chunked: Path | None        # QCDQ, scan in plain ops (TVM)
    float_pt: Path              # state dict of the float model (PyTorch peer)
    windows: Path               # npz: xq (int8), xf (xq * input scale), acc, logits, output_scale (reference)
    host_build: Path | None = None
    n_params: int = 0
    macs: int = 0
    extra: dict = field(default_factory=dict)


def bench_windows(card: str, n: int, seed: int = 11) -> np.ndarray:
    """n float windows of a synthetic EDF recording through the card's preprocessing (same windows every run)."""
    from edgeflow.link.harness import load_stream_windows

    x, _ = load_stream_windows(None, card, n_windows=n, seed=seed)
    if len(x) < n:
        raise BenchError(f"{card}: the synthetic recording gave {len(x)} windows, {n} asked")
    return x


def _models(card, bits: int):
    """(quant model, quant source, float model, float source) for the card at `bits`."""
    import torch

    from edgeflow.nn import build_model
    from edgeflow.quant.layers import QuantPolicy
    from edgeflow.quant.ptq import build_quant_model, calibrate, from_float
    from edgeflow.quant.qat import load_quant
    from edgeflow.quant.qfemba import load_float_weights
    from edgeflow.resources import models_dir
    from edgeflow.train.checkpoint import load_weights, read_checkpoint

    shipped_q = models_dir() / f"{card.name}-w{bits}.quant.pt"
    shipped_f = models_dir() / f"{card.name}.pt"
    fm = build_model(card)
    if shipped_f.exists():
        load_weights(fm, read_checkpoint(shipped_f)["model"], str(shipped_f))
        fsrc = f"float checkpoint models/{shipped_f.name}"
    if shipped_q.exists():
        q, _ = load_quant(card, shipped_q)
        qsrc = f"shipped QAT checkpoint models/{shipped_q.name}"
        if not shipped_f.exists():  # the float layers carry the quantized layers' float weights under the same names
            fm.load_state_dict(q.state_dict(), strict=False)
            fsrc = f"float form of models/{shipped_q.name}: its float weights, unquantized"
    elif shipped_f.exists():
        q = from_float(card, QuantPolicy.from_card(card, bits), shipped_f)
        calib = bench_windows(card.name, CALIB_WINDOWS, seed=5)
        calibrate(q, calib)
        qsrc = f"PTQ of models/{shipped_f.name} at {bits}-bit weights, {len(calib)} synthetic calibration windows"
    else:
        torch.manual_seed(SEED)
        fm = build_model(card)
        q = build_quant_model(card, QuantPolicy.from_card(card, bits))
        load_float_weights(q, fm.state_dict(), "random init")
        shape = (4, card.input.n_channels, card.input.window_samples)
        calibrate(q, np.random.default_rng(SEED).standard_normal(shape).astype(np.float32))
        qsrc = f"untrained (--init random, seed {SEED}) at {bits}-bit weights, calibrated on 4 random windows"
        fsrc = "float form of the quantized model: the same random float weights before quantization"
    fm.eval()
    q.eval()
    return q, qsrc, fm, fsrc


def export_int8(card_name: str, out: Path) -> tuple[Path, str]:
    """QCDQ ONNX of the same card with 8-bit weights (for the memory comparison) and where its model came from."""
    from edgeflow.cards import load_card
    from edgeflow.export.onnx import export_qcdq

    card = load_card(card_name)
    folder = Path(out) / f"{card.name}-w8"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    sample = np.zeros((1, card.input.n_channels, card.input.window_samples), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q, qsrc, _, _ = _models(card, 8)
        export_qcdq(q, sample, path, form="scan")
    return path, qsrc


def prepare(card_name: str, bits: int, n_windows: int, out: Path, chunked: bool, host: bool) -> Subject:
    """Export, build for the host (when `host`), write the windows and the integer reference's answers."""
    import torch

    from edgeflow.build import build
    from edgeflow.cards import load_card
    from edgeflow.export.onnx import export_qcdq
    from edgeflow.ir.from_onnx import load_onnx, quantize_input
    from edgeflow.ir.reference import run

    card = load_card(card_name)
    folder = Path(out) / f"{card.name}-w{bits}"
    folder.mkdir(parents=True, exist_ok=True)
    x = bench_windows(card.name, n_windows + 1)       # + 1: the warm-up window
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q, qsrc, fm, fsrc = _models(card, bits)
        onnx_path = folder / "model.onnx"
        export_qcdq(q, x[:1], onnx_path, form="scan")
        chunked_path = None
        if chunked:
            chunked_path = folder / "model.chunked.onnx"
            export_qcdq(q, x[:1], chunked_path, form="chunked")
    float_pt = folder / "float.pt"
    torch.save(fm.state_dict(), float_pt)
    graph = load_onnx(onnx_path)
    shape = graph.tensors[graph.inputs[0]].shape
    xq = quantize_input(x, graph).reshape(len(x), *shape)
    zp = np.float32(graph.meta.get("input_zero_point", 0))
    xf = ((xq.astype(np.float32) - zp) * np.float32(graph.meta["input_scale"])).reshape(x.shape)
    acc = np.stack([np.asarray(run(graph, w)[graph.outputs[0]]).reshape(-1) for w in xq]).astype(np.int32)
    logits = acc * np.asarray(graph.meta["output_scale"], dtype=np.float64)
    windows = folder / "windows.npz"
    np.savez(windows, xq=xq, xf=xf, acc=acc, logits=logits,
             output_scale=np.asarray(graph.meta["output_scale"], dtype=np.float64))
    subject = Subject(card.name, bits, folder, qsrc, fsrc, onnx_path, chunked_path, float_pt, windows,
                      n_params=int(sum(p.numel() for p in fm.parameters())))
    if host:
        subject.host_build = folder / "host"
        report = build(onnx_path, "host", subject.host_build, name=card.name)
        subject.macs = int(report["macs"])
    (folder / "subject.json").write_text(json.dumps({k: str(v) if isinstance(v, Path) else v
                                                     for k, v in subject.__dict__.items()}, indent=1))
    return subject
