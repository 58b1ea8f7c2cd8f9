"""Test models for the C tier: femba-micro (random init, calibrated, exported) loaded as an IR graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgeflow.cards import load_card
from edgeflow.export.onnx import export_qcdq
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.ir.graph import Graph
from edgeflow.nn import build_model
from edgeflow.quant.layers import QuantPolicy
from edgeflow.quant.ptq import build_quant_model, calibrate
from edgeflow.quant.qfemba import load_float_weights


def femba_micro_graph(folder: Path, bits: int = 2, seed: int = 1) -> Graph:
    """femba-micro with `bits`-bit weights, random init, calibrated on 12 normal windows, exported and loaded
    (the same recipe as tests/unit/test_frontend.py)."""
    card = load_card("femba-micro")
    torch.manual_seed(seed)
    q = build_quant_model(card, QuantPolicy.from_card(card, bits))
    load_float_weights(q, build_model(card).state_dict(), "random init")
    x = np.random.default_rng(0).standard_normal((12, 22, 1280)).astype(np.float32)
    calibrate(q, x)
    path = Path(folder) / "model.onnx"
    export_qcdq(q, x[:1], path)
    return load_onnx(path)


_MICRO_ONNX: dict[tuple[int, int], Path] = {}


def femba_micro_onnx(tmp_path_factory, bits: int = 2, seed: int = 1) -> Path:
    """femba_micro_graph's model.onnx, exported once per test session (tests/c/test_build.py, test_codegen.py
    and test_tiled.py read the same file; each loads its own Graph from it)."""
    if (bits, seed) not in _MICRO_ONNX:
        folder = tmp_path_factory.mktemp(f"micro-w{bits}-s{seed}")
        femba_micro_graph(folder, bits, seed)
        _MICRO_ONNX[bits, seed] = folder / "model.onnx"
    return _MICRO_ONNX[bits, seed]
