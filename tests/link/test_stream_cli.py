"""`edgeflow stream` end to end on the native device: an EDF recording through the training preprocessing, every
answer checked, JSONL + summary written; one-line errors for a wrong port, a busy port, another model's firmware."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeflow.cli import main
from edgeflow.ir.graph import Graph
from edgeflow.link.harness import synth_recording
from edgeflow.link.session import open_port

pytestmark = pytest.mark.link


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A 16 s synthetic EDF: three 5 s windows at stride 5, six at stride 2."""
    return synth_recording(tmp_path_factory.mktemp("rec") / "rec.edf", 16.0, seed=3)


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgeflow: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_stream_an_edf_file_bit_exact(device, native_build, recording, tmp_path, capsys):
    (native_build / "device.json").write_text(json.dumps({"port": device.port, "pid": device.proc.pid}))
    out = tmp_path / "run"
    code = main(["stream", "--build", str(native_build), "--input", str(recording), "--card", "femba-micro",
                 "--stride", "2", "--out", str(out), "--timeout", "2", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "windows.jsonl").read_text().splitlines()]
    assert summary["windows"] == summary["matching"] == len(rows) == 6
    assert summary["lost"] == 0 and summary["port"] == device.port
    assert [r["index"] for r in rows] == list(range(6)) and all(r["values"] == r["expected"] for r in rows)
    assert summary["latency_p50_s"] > 0 and summary["instret_per_window"] > 0
    assert len(summary["layers"]) == 33 and abs(sum(r["share"] for r in summary["layers"]) - 1) < 1e-6
    assert "heaviest" in text
    assert "all answers bit-exact" in text


def test_windows_match_training_preprocessing(native_build, recording):
    """The host sends quantize_input(load_windows(recording)) — the same arrays training reads."""
    from edgeflow.cards import load_card
    from edgeflow.data.eeg import Preprocess, load_windows
    from edgeflow.link.harness import load_stream_windows, quantized_windows

    x, meta = load_stream_windows(recording, "femba-micro")
    ref = load_windows(recording, Preprocess.from_card(load_card("femba-micro")))
    assert meta["windows"] == 3 and np.array_equal(x, ref)
    xq = quantized_windows(x, Graph.load(native_build))
    assert xq.dtype == np.int8 and xq.shape == (3, 22, 1280) and np.abs(xq).max() > 10


def test_wrong_port_is_one_line(native_build, capsys):
    err = _one_line_error(capsys, ["stream", "--build", str(native_build), "--port", "/dev/edgeflow-no-such"])
    assert "/dev/edgeflow-no-such" in err and "no such serial port" in err


def test_busy_port_is_one_line(device, native_build, capsys):
    holder = open_port(device.port)
    try:
        err = _one_line_error(capsys, ["stream", "--build", str(native_build), "--port", device.port])
    finally:
        holder.close()
    assert device.port in err and "busy" in err


def test_other_models_firmware_is_refused(device, native_build, tmp_path, capsys):
    g = Graph.load(native_build)
    w = next(t for t in g.tensors.values() if t.data is not None and t.data.dtype == np.int8 and t.data.size > 8)
    w.data = w.data.copy()
    w.data.flat[0] = np.int8(w.data.flat[0] ^ 1)
    other = g.save(tmp_path / "other-build")
    err = _one_line_error(capsys, ["stream", "--build", str(other), "--port", device.port, "--timeout", "1"])
    assert "runs model" in err and "flash this build" in err


def test_missing_device_file_is_one_line(native_build, tmp_path, capsys):
    d = tmp_path / "b"
    shutil.copytree(native_build, d, ignore=shutil.ignore_patterns("device.json", "src", "device_native"))
    err = _one_line_error(capsys, ["stream", "--build", str(d)])
    assert "device.json" in err and "edgeflow flash" in err


def test_stream_an_edf_plus_d_file_records_window_starts(device, native_build, tmp_path, capsys):
    """A discontinuous EDF+D recording (6 s, a 24 s gap, 11 s): windows at 0, 30 and 35 s, none across the gap;
    windows.jsonl carries each start, every answer bit-exact."""
    from malformed import edf  # the corpus' byte-level EDF writer (tests/ is on sys.path)

    onsets = [float(t) for t in range(6)] + [float(t) for t in range(30, 41)]
    rec = edf.write(tmp_path / "gaps.edf", edf.edf_bytes(edf.signals(17.0, 256.0), 256.0, onsets=onsets))
    (native_build / "device.json").write_text(json.dumps({"port": device.port, "pid": device.proc.pid}))
    out = tmp_path / "run"
    code = main(["stream", "--build", str(native_build), "--input", str(rec), "--card", "femba-micro",
                 "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr()
    rows = [json.loads(line) for line in (out / "windows.jsonl").read_text().splitlines()]
    assert [r["start_s"] for r in rows] == [0.0, 30.0, 35.0]
    assert all(r["match"] for r in rows)
    assert "window_starts_s" not in json.loads((out / "summary.json").read_text())["recording"]
