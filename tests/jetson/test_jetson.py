"""Jetson backend through TVM: host-CPU module vs onnxruntime, the bundle's run.py here, the sm_87 cross build."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from edgeflow.backends import jetson
from edgeflow.backends.jetson import JetsonError
from edgeflow.target import load_target
from tests.jetson.conftest import N_WINDOWS, ROOT, need_tvm

pytestmark = pytest.mark.jetson


@pytest.mark.slow
def test_host_module_matches_onnxruntime(mini_host_bundle, mini_chunked, mini_windows):
    """femba-mini's Relax module compiled for the host CPU, run through the bundle's run.py, vs onnxruntime."""
    bundle, report = mini_host_bundle
    _agrees(bundle, report, mini_chunked, mini_windows[:N_WINDOWS])


def test_tiny_host_module_matches_onnxruntime(tiny_host_bundle):
    bundle, report, onnx_path = tiny_host_bundle
    windows = np.random.default_rng(2).standard_normal((N_WINDOWS, 22, 1280)).astype(np.float32)
    _agrees(bundle, report, onnx_path, windows)


def _agrees(bundle, report, onnx_path, windows):
    from edgeflow.export.onnx import ort_run

    chk = report["check"]
    assert chk["windows"] >= N_WINDOWS and chk["argmax_agree"] == 1.0
    assert chk["max_abs_logit_diff"] <= jetson.TOLERANCE
    got = jetson.run_windows(bundle, windows, bundle / "model.so")
    ref = ort_run(onnx_path, windows)
    assert got.shape == ref.shape == (len(windows), 2)
    assert float(np.abs(got - ref).max()) <= jetson.TOLERANCE
    assert (got.argmax(1) == ref.argmax(1)).all()
    assert report["host_only"] and report["library"]["cubins"] == []


@pytest.mark.slow
def test_run_py_on_synthetic_edf(mini_host_bundle, synth_edf, mini_chunked, mini_card, tmp_path):
    _run_py(mini_host_bundle[0], synth_edf, mini_chunked, mini_card, tmp_path)


def test_tiny_run_py_on_synthetic_edf(tiny_host_bundle, synth_edf, mini_card, tmp_path):
    _run_py(tiny_host_bundle[0], synth_edf, tiny_host_bundle[2], mini_card, tmp_path)


def _run_py(bundle, edf, onnx_path, card, tmp_path):
    """run.py as the board runs it (edgeflow made unimportable) prints per-window predictions, latency and RTF;
    its logits are onnxruntime's on edgeflow's own preprocessing of the same file."""
    from edgeflow.data.eeg import Preprocess, load_windows
    from edgeflow.export.onnx import ort_run

    out = tmp_path / "res.json"
    code = ("import runpy, sys; sys.modules['edgeflow'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    res = subprocess.run([sys.executable, "-c", code, str(bundle / "run.py"), str(edf), "--windows",
                          str(N_WINDOWS), "--json", str(out)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("window ")]
    assert len(lines) == N_WINDOWS and all(" class " in ln and " ms" in ln for ln in lines)
    assert "real-time factor" in res.stdout and "latency mean" in res.stdout
    rows = json.loads(out.read_text())["windows"]
    got = np.array([r["logits"] for r in rows], dtype=np.float32)
    ref = ort_run(onnx_path, load_windows(edf, Preprocess.from_card(card))[:N_WINDOWS])
    assert float(np.abs(got - ref).max()) <= jetson.TOLERANCE
    assert [r["class"] for r in rows] == ref.argmax(1).tolist()


def test_bundle_contents(tiny_host_bundle):
    bundle, report, _ = tiny_host_bundle
    for name in ("model.so", "run.py", "edgeflow_eeg.py", "model.json", "README.md", "build_tvm_runtime.sh"):
        assert (bundle / name).is_file(), name
    meta = json.loads((bundle / "model.json").read_text())
    assert meta["device"] == "cpu" and meta["input"]["shape"] == [1, 22, 1280]
    assert meta["model"] == "femba-mini"  # the card given
    readme = (bundle / "README.md").read_text()
    assert "{{" not in readme and jetson.TRTEXEC in readme and "JetPack 6" in readme
    assert "-DUSE_CUDA=/usr/local/cuda" in readme
    assert subprocess.run(["bash", "-n", str(bundle / "build_tvm_runtime.sh")]).returncode == 0
    assert report["weights"].startswith("float32")


def _cross_toolchain():
    need_tvm()
    try:
        return jetson.find_toolchain(load_target("jetson-orin-nano").tvm)
    except JetsonError as e:
        pytest.skip(f"cross build tools missing: {e}")


def _cubins(blob: bytes) -> list[tuple[int, int]]:
    """(e_flags, e_version) of every embedded 64-bit ELF whose e_machine is EM_CUDA (190)."""
    out, at = [], blob.find(b"\x7fELF", 1)
    while at >= 0:
        if blob[at + 4] == 2 and struct.unpack_from("<H", blob, at + 18)[0] == 190:
            out.append((struct.unpack_from("<I", blob, at + 48)[0], struct.unpack_from("<I", blob, at + 20)[0]))
        at = blob.find(b"\x7fELF", at + 1)
    return out


@pytest.mark.slow
def test_cross_build_aarch64_with_sm87_cubin(mini_chunked, mini_card, tmp_path):
    """The board library: aarch64 ELF (e_machine 183) embedding cubins for sm_87 built by CUDA 12.6 (read from
    the cubin headers: e_flags low byte, e_version), never raw CUDA source."""
    _cross_checked(mini_chunked, mini_card, tmp_path)


def test_tiny_cross_build_aarch64_with_sm87_cubin(mini_card, tmp_path):
    """The same cross build on the tiny model (seconds; skipped without the aarch64 compiler or NVRTC 12.6)."""
    from tests.jetson.tiny import write_tiny_qcdq

    _cross_checked(write_tiny_qcdq(tmp_path / "tiny.chunked.onnx"), mini_card, tmp_path)


def _cross_checked(onnx_path, card, tmp_path):
    _cross_toolchain()
    out = tmp_path / "bundle"
    out.mkdir()
    art = jetson.compile(onnx_path, load_target("jetson-orin-nano"), out, card=card)
    blob = (out / "model.so").read_bytes()
    assert blob[:4] == b"\x7fELF" and struct.unpack_from("<H", blob, 18)[0] == 183
    cubins = _cubins(blob)
    assert cubins and all(flags & 0xFF == 87 and version == 126 for flags, version in cubins)
    assert b'extern "C" __global__' not in blob
    assert art.report["library"]["cubins"][0]["toolkit"] == "12.6"
    assert json.loads((out / "model.json").read_text())["device"] == "cuda"


@pytest.mark.slow
def test_femba_micro_host_matches_onnxruntime(tmp_path):
    """femba-micro (untrained, calibrated 2-bit: no shipped checkpoint) through the same host path."""
    need_tvm()
    from edgeflow.cards import load_card
    from edgeflow.export.onnx import export_qcdq
    from edgeflow.quant.ptq import untrained_quant_model

    card = load_card("femba-micro")
    model, x = untrained_quant_model(card, 2)
    onnx_path = tmp_path / "micro.chunked.onnx"
    export_qcdq(model, x[:1], onnx_path, form="chunked")
    windows = np.random.default_rng(3).standard_normal((N_WINDOWS, *x.shape[1:])).astype(np.float32)
    out = tmp_path / "bundle"
    out.mkdir()
    art = jetson.compile(onnx_path, load_target("jetson-orin-nano"), out, card=card, check_windows=windows,
                         host_only=True)
    assert art.report["check"]["windows"] == N_WINDOWS
    assert art.report["check"]["max_abs_logit_diff"] <= jetson.TOLERANCE


def test_scan_form_is_refused():
    with pytest.raises(JetsonError, match=r"model\.onnx: scan form .*--form chunked"):
        jetson.check_chunked(ROOT / "tests" / "cases" / "femba-mini-w2" / "model.onnx")


def test_stream_host_bundle(tiny_host_bundle, tmp_path):
    """`edgeflow stream --build` on a --host-only bundle: run.py's Model per window, checked against onnxruntime."""
    from edgeflow.cli import main

    bundle = tiny_host_bundle[0]
    assert main(["stream", "--build", str(bundle), "--windows", "4", "--no-progress", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["windows"] == s["within_tolerance"] == s["argmax_agree"] == 4
    assert s["max_abs_logit_diff"] <= jetson.TOLERANCE and s["real_time_factor"] > 0


def test_cli_build_refuses_scan_form(tmp_path, capsys):
    need_tvm()
    from edgeflow.cli import main

    scan = ROOT / "tests" / "cases" / "femba-mini-w2" / "model.onnx"
    out = tmp_path / "b"
    assert main(["build", "--target", "jetson-orin-nano", "--host-only", "--onnx", str(scan), "--card", "femba-mini",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "scan form" in err and "--form chunked" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
