"""Jetson tier fixtures: the shipped 2-bit femba-mini as chunked ONNX, a synthetic EDF, one host-CPU TVM bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
N_WINDOWS = 20


def need_tvm():
    return pytest.importorskip("tvm", reason="Apache TVM is not importable (pip install 'edgeflow[jetson]')")


@pytest.fixture(scope="session")
def synth_edf(tmp_path_factory) -> Path:
    """A 110 s synthetic recording (22 windows of 5 s) written as EDF."""
    from edgeflow.link.harness import synth_recording

    return synth_recording(tmp_path_factory.mktemp("rec") / "rec.edf", 110.0, seed=5)


@pytest.fixture(scope="session")
def mini_card():
    from edgeflow.cards import load_card

    return load_card("femba-mini")


@pytest.fixture(scope="session")
def mini_windows(synth_edf, mini_card) -> np.ndarray:
    from edgeflow.data.eeg import Preprocess, load_windows

    return load_windows(synth_edf, Preprocess.from_card(mini_card))


@pytest.fixture(scope="session")
def mini_chunked(tmp_path_factory, mini_card, mini_windows) -> Path:
    """models/femba-mini-w2.quant.pt exported in the chunked form (what the jetson backend reads)."""
    from edgeflow.export.onnx import export_qcdq
    from edgeflow.quant.qat import load_quant

    model, _ = load_quant(mini_card, ROOT / "models" / "femba-mini-w2.quant.pt")
    path = tmp_path_factory.mktemp("onnx") / "model.chunked.onnx"
    export_qcdq(model, mini_windows[:1], path, form="chunked")
    return path


@pytest.fixture(scope="session")
def mini_host_bundle(tmp_path_factory, mini_chunked, mini_card, mini_windows):
    """The femba-mini bundle compiled for this CPU (--host-only), checked on 20 windows; (folder, report)."""
    need_tvm()
    from edgeflow.backends import jetson
    from edgeflow.target import load_target

    out = tmp_path_factory.mktemp("bundle") / "femba-mini-jetson-orin-nano-host"
    out.mkdir()
    art = jetson.compile(mini_chunked, load_target("jetson-orin-nano"), out, card=mini_card,
                         check_windows=mini_windows[:N_WINDOWS], host_only=True)
    return out, art.report


@pytest.fixture(scope="session")
def tiny_host_bundle(tmp_path_factory, mini_card):
    """A tiny QCDQ model with femba-mini's input built --host-only through edgeflow.build (as the CLI does) and
    checked on 20 random windows (seconds); (folder, report, onnx path)."""
    need_tvm()
    from edgeflow.build import build
    from tests.jetson.tiny import write_tiny_qcdq

    onnx_path = write_tiny_qcdq(tmp_path_factory.mktemp("tiny") / "tiny.chunked.onnx")
    out = tmp_path_factory.mktemp("tinybundle") / "tiny-jetson-orin-nano-host"
    windows = np.random.default_rng(1).standard_normal((N_WINDOWS, 22, 1280)).astype(np.float32)
    report = build(onnx_path, "jetson-orin-nano", out, windows, name="tiny",
                   options={"card": mini_card, "host_only": True})
    return out, report, onnx_path
