"""Golden cases (tests/cases/<name>, made by tools/regen_cases.py): reference and generated C bit-exact on
100 windows of synthetic EEG; reference vs onnxruntime: argmax identical, logit error within a stated bound."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeflow.backends.host import compile_host, run_binary
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.ir.reference import run

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc missing")]

CASES = Path(__file__).resolve().parent.parent / "cases"
# Max |logit| difference allowed between the integer reference and onnxruntime's float QCDQ path. The
# integer path rounds every requantization (and the scan / LayerNorm in fixed point) where ORT keeps float
# between quantizers; trained femba-mini logits span about +-10.
ORT_BOUND = {"femba-micro-w2": 0.01, "femba-mini-w2": 0.4, "vit-tiny-w2": 0.03}


def _case(name: str):
    folder = CASES / name
    graph = load_onnx(folder / "model.onnx")
    x = np.load(folder / "inputs.npz")["x"]
    out = np.load(folder / "outputs.npz")
    return graph, x, out["logits_acc"], out["ort_logits"]


@pytest.mark.parametrize("name", sorted(ORT_BOUND))
def test_golden_reference_c_and_ort(name, tmp_path):
    graph, x, acc, ort = _case(name)
    assert len(x) >= 100
    ref = np.stack([np.asarray(run(graph, q)[graph.outputs[0]]).reshape(-1) for q in x])
    assert np.array_equal(ref, acc), f"{name}: reference drifted from the golden outputs"
    art = compile_host(graph, tmp_path / "build")
    got = run_binary(art.binary, x, acc.shape[1])
    assert np.array_equal(got, acc), f"{name}: {int((got != acc).any(1).sum())} windows differ in C"
    logits = acc * np.asarray(graph.meta["output_scale"], dtype=np.float64)
    assert (logits.argmax(1) == ort.argmax(1)).all()
    assert np.abs(logits - ort).max() <= ORT_BOUND[name]
    info = json.loads((CASES / name / "case.json").read_text())
    assert info["windows"] == len(x)


@pytest.mark.parametrize("name", sorted(ORT_BOUND))
def test_golden_gap9_tiled_code_bit_exact(name, tmp_path):
    """The gap9 build (L1 tiles, double-buffered DMA, ternary-packed blobs, memory-level plan), compiled here
    through the portable HAL: bit-exact on the 100 golden synthetic-EEG windows and on 100 random windows."""
    from edgeflow.backends.gap9 import compile as compile_gap9
    from edgeflow.target import load_target

    graph, x, acc, _ = _case(name)
    art = compile_gap9(graph, load_target("gap9"), tmp_path / "gap9")
    assert art.plan["tiling"]["nodes"] and all(v["fits"] for v in art.report["memory"]["levels"].values())
    got = run_binary(art.binary, x, acc.shape[1])
    assert np.array_equal(got, acc), f"{name}: {int((got != acc).any(1).sum())} golden windows differ"
    rnd = np.random.default_rng(11).integers(-128, 128, size=(100, *x.shape[1:])).astype(np.int8)
    ref = np.stack([np.asarray(run(graph, q)[graph.outputs[0]]).reshape(-1) for q in rnd])
    assert np.array_equal(run_binary(art.binary, rnd, acc.shape[1]), ref)
