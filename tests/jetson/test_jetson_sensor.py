"""A sensor card on the Jetson backend: the user's accelerometer model (tests/link/sensor_model.py) built with
`edgeflow build --onnx --card accel-har --target jetson-orin-nano --host-only`. The bundle reads recordings as the
card says (edgeflow_sensor.py, a standalone copy of edgeflow's raw/EDF reader), model.json records the sensor
input and one class per logit, and both run.py (edgeflow unimportable, as on the board) and `edgeflow stream`
agree with onnxruntime on edgeflow's own windows of CSV and EDF+D recordings."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeflow.cli import main
from tests.link.sensor_model import accel_signal, export_har, write_csv

from .conftest import need_tvm

pytestmark = pytest.mark.jetson


@pytest.fixture(scope="module")
def har_bundle(tmp_path_factory):
    need_tvm()
    folder = tmp_path_factory.mktemp("har-jetson")
    onnx = export_har(folder, name="har")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        assert main(["build", "--onnx", str(onnx), "--card", "accel-har", "--target", "jetson-orin-nano",
                     "--host-only", "--check", "3"]) == 0
    return folder / "build" / "har-jetson-orin-nano-host", onnx


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """A 9 s walk as CSV, and as an EDF+D file (4 s, a 6 s gap, 5 s; an extra temperature signal first)."""
    from malformed import edf  # the corpus' byte-level EDF writer (tests/ is on sys.path)

    d = tmp_path_factory.mktemp("har-rec")
    sig = np.round(accel_signal(9.0, seed=4), 5)
    csv = write_csv(d / "walk.csv", sig)
    onsets = [float(t) for t in range(4)] + [float(t) for t in range(10, 15)]
    data = np.concatenate([np.full((1, len(sig)), 21.0), sig.T])
    rec = edf.write(d / "walk.edf", edf.edf_bytes(data, 50.0, labels=("temp", "x", "y", "z"), phys=(-40, 40),
                                                  unit="m/s^2", onsets=onsets))
    return csv, rec


def test_bundle_records_the_sensor_card(har_bundle):
    bundle, _ = har_bundle
    meta = json.loads((bundle / "model.json").read_text())
    assert meta["model"] == "accel-har" and meta["kind"] == "sensor" and meta["device"] == "cpu"
    assert meta["preprocess"] == {"kind": "sensor", "channels": ["x", "y", "z"], "sample_rate": 50.0,
                                  "window_s": 2.0, "stride_s": 1.0, "scale": [0.10197], "offset": [0.0]}
    assert meta["classes"] == ["class 0", "class 1", "class 2", "class 3"] and meta["input"]["shape"] == [1, 3, 100]
    text = (bundle / "edgeflow_sensor.py").read_text()
    assert "import edgeflow" not in text and "from edgeflow" not in text
    assert not (bundle / "edgeflow_eeg.py").exists()
    readme = (bundle / "README.md").read_text()
    assert "{{" not in readme and "edgeflow_sensor.py" in readme and "every 2 s window" in readme
    report = json.loads((bundle / "report.json").read_text())
    assert report["check"]["windows"] == 3 and report["check"]["argmax_agree"] == 1.0


def test_run_py_reads_the_card_without_edgeflow(har_bundle, recordings, tmp_path):
    """run.py on the EDF+D file: the card's channels by label, no window across the gap, each window's start."""
    from edgeflow.backends import jetson
    from edgeflow.export.onnx import ort_run
    from edgeflow.link.harness import load_stream_windows

    bundle, onnx = har_bundle
    rec = recordings[1]
    out = tmp_path / "res.json"
    code = ("import runpy, sys; sys.modules['edgeflow'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    res = subprocess.run([sys.executable, "-c", code, str(bundle / "run.py"), str(rec), "--json", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(out.read_text())["windows"]
    x, meta = load_stream_windows(rec, "accel-har")
    assert [r["start_s"] for r in rows] == meta["window_starts_s"]
    assert meta["window_starts_s"] == [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 13.0]
    got = np.array([r["logits"] for r in rows], dtype=np.float32)
    ref = ort_run(onnx, x).reshape(got.shape)
    assert len(rows) == len(x) == 7 and float(np.abs(got - ref).max()) <= jetson.TOLERANCE
    assert [r["class"] for r in rows] == ref.argmax(1).tolist()


def test_stream_checks_the_bundle_on_a_sensor_recording(har_bundle, recordings, tmp_path, capsys):
    bundle, _ = har_bundle
    assert main(["stream", "--build", str(bundle), "--input", str(recordings[0]), "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["windows"] == summary["within_tolerance"] == summary["argmax_agree"] == 8   # 9 s: 2 s every 1 s
    assert summary["recording"]["card"] == "accel-har"


@pytest.mark.slow
def test_cross_build_for_the_board_carries_the_sensor_reader(tmp_path, monkeypatch):
    """Without --host-only: the aarch64 library with its sm_87 cubin, and the same sensor bundle for the board
    (skipped without the aarch64 compiler or NVRTC 12.6; ~30 s, slow: the default tier cross-builds the tiny model
    and checks the subprocess paths in test_jetson_tools). The CLI builds into a relative build/ folder, which the
    cross-compiling subprocess (run in the source tree) once failed to find."""
    need_tvm()
    from edgeflow.backends import jetson
    from edgeflow.target import load_target

    try:
        jetson.find_toolchain(load_target("jetson-orin-nano").tvm)
    except jetson.JetsonError as e:
        pytest.skip(f"cross build tools missing: {e}")
    onnx = export_har(tmp_path, name="har")
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--onnx", str(onnx), "--card", "accel-har", "--target", "jetson-orin-nano"]) == 0
    bundle = tmp_path / "build" / "har-jetson-orin-nano"
    meta = json.loads((bundle / "model.json").read_text())
    assert meta["device"] == "cuda" and meta["kind"] == "sensor" and meta["preprocess"]["channels"] == ["x", "y", "z"]
    assert (bundle / "edgeflow_sensor.py").is_file() and not (bundle / "edgeflow_eeg.py").exists()
    lib = json.loads((bundle / "report.json").read_text())["library"]
    assert lib["machine"] == jetson.EM_AARCH64 and lib["cubins"] and lib["cubins"][0]["toolkit"] == "12.6"
