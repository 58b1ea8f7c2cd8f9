"""A non-EEG model end to end on the native pty device: a user's brevitas accelerometer model (tests/link/
sensor_model.py) -> `edgeflow build --onnx --card accel-har` (folder named after the model, carrying its card) ->
`edgeflow stream` of CSV and NPY recordings through the recorded card, every answer bit-exact; a card that
contradicts the model or the build refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeflow.cli import main

from .sensor_model import CHANNELS, WINDOW, accel_signal, export_har, write_csv

pytestmark = pytest.mark.link

SCALE = 0.10197   # models/accel-har.toml: input.scale


@pytest.fixture(scope="module")
def har_onnx(tmp_path_factory) -> Path:
    return export_har(tmp_path_factory.mktemp("har"))


@pytest.fixture(scope="module")
def har_build(har_onnx, tmp_path_factory) -> Path:
    """`edgeflow build --onnx har.onnx --card accel-har --target host` in a fresh folder (no --out), then the
    native device main loop compiled over the very sources that build emitted (src/, tiled or not)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    from edgeflow.build_folder import read_graph
    from edgeflow.runners.native_pty import compile_native_device, write_model_info_h

    cwd = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        assert main(["build", "--onnx", str(har_onnx), "--card", "accel-har", "--target", "host", "--check", "3"]) == 0
    build = cwd / "build" / "har-host"
    write_model_info_h(read_graph(build), build / "src")
    compile_native_device(build, tiled=(build / "src" / "ef_tiled.c").exists())
    return build


@pytest.fixture
def device_on(har_build):
    from edgeflow.runners.native_pty import PtyDevice

    with PtyDevice(har_build / "device_native") as d:
        (har_build / "device.json").write_text(json.dumps({"port": d.port, "pid": d.proc.pid}))
        yield d


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    """11 s of walking at 50 Hz, rounded as the CSV stores it: (550, 3) m/s^2."""
    return np.round(accel_signal(11.0, seed=5), 5)


def _stream(build: Path, out: Path, *extra: str) -> dict:
    code = main(["stream", "--build", str(build), "--out", str(out), "--timeout", "5", "--no-progress", *extra])
    summary = json.loads((out / "summary.json").read_text())
    assert code == 0, summary
    return summary


def test_build_folder_is_named_after_the_model_and_carries_its_card(har_build, capsys):
    from edgeflow.card_match import recorded_card
    from edgeflow.cards import load_card

    report = json.loads((har_build / "report.json").read_text())
    assert har_build.name == "har-host"
    assert report["card"] == {"name": "accel-har", "kind": "sensor", "file": "card.toml"}
    assert report["check"]["windows"] == 3 and report["check"]["bit_exact"]
    card, shipped = recorded_card(har_build), load_card("accel-har")
    assert card.input == shipped.input and card.kind == "sensor" and card.name == "accel-har"
    capsys.readouterr()
    assert main(["inspect", str(har_build)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "card accel-har (kind sensor):" in out and "card.toml" in out


def test_csv_streams_bit_exact_through_the_recorded_card(har_build, device_on, signal, tmp_path):
    from edgeflow.build_folder import read_graph
    from edgeflow.link.harness import quantized_windows

    csv = write_csv(tmp_path / "walk.csv", signal)
    summary = _stream(har_build, tmp_path / "run", "--input", str(csv))   # no --card: the build's card.toml
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "windows.jsonl").read_text().splitlines()]
    n = 1 + (len(signal) - WINDOW) // 50                                  # 2 s windows every 1 s
    assert summary["windows"] == summary["matching"] == len(rows) == n == 10
    assert summary["lost"] == summary["mismatched"] == 0 and summary["recording"]["card"] == "accel-har"
    assert all(r["values"] == r["expected"] for r in rows)
    # the device saw exactly the card's windows: (raw - 0) * 0.10197, int8 at the model's input scale
    want = np.stack([signal[k * 50:k * 50 + WINDOW].T * SCALE for k in range(n)]).astype(np.float32)
    graph = read_graph(har_build)
    from edgeflow.ir.reference import run

    refs = [np.asarray(run(graph, q)[graph.outputs[0]]).reshape(-1).tolist() for q in quantized_windows(want, graph)]
    assert [r["expected"] for r in rows] == refs


@pytest.mark.parametrize("layout", ["samples-channels", "channels-samples"])
def test_npy_streams_the_same_answers_as_csv(har_build, device_on, signal, tmp_path, layout):
    csv = write_csv(tmp_path / "walk.csv", signal, header=None)            # a CSV without its header, too
    npy = tmp_path / "walk.npy"
    np.save(npy, signal if layout == "samples-channels" else signal.T)
    _stream(har_build, tmp_path / "a", "--input", str(csv), "--windows", "4")
    _stream(har_build, tmp_path / "b", "--input", str(npy), "--windows", "4", "--card", "accel-har")
    a, b = ((tmp_path / d / "windows.jsonl").read_text().splitlines() for d in "ab")
    vals = [[json.loads(ln)["values"] for ln in rows] for rows in (a, b)]
    assert len(vals[0]) == 4 and vals[0] == vals[1]


def test_a_contradicting_card_is_refused_in_one_line(har_build, capsys, tmp_path):
    csv = write_csv(tmp_path / "walk.csv", np.zeros((200, CHANNELS)))
    fast = tmp_path / "fast.toml"
    fast.write_text((Path(__file__).resolve().parents[2] / "models" / "accel-har.toml").read_text()
                    .replace("sample_rate = 50.0", "sample_rate = 100.0").replace("window_s = 2.0", "window_s = 1.0"))
    assert main(["stream", "--build", str(har_build), "--input", str(csv), "--card", str(fast), "--port",
                 "/dev/null", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err == (f"edgeflow: error: --card {fast} contradicts the card this build was made with "
                   f"({har_build / 'card.toml'}): input.sample_rate 100 vs 50; drop --card to use the recorded one")


def test_model_card_mismatch_is_refused_in_one_line(har_onnx, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--onnx", str(har_onnx), "--card", "femba-micro", "--target", "host"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"edgeflow: error: {har_onnx}: the model's input is [3, 100] (without batch), card 'femba-micro' "
                   "makes windows of [22, 1280] (22 channels x 5 s x 256 Hz)")
    assert not (tmp_path / "build").exists()


def test_minimal_card_from_the_model(har_onnx, tmp_path, capsys, monkeypatch):
    """No --card: channels and window from the model, the rate from --sfreq; stream reads with that card."""
    from edgeflow.card_match import recorded_card

    monkeypatch.chdir(tmp_path)
    assert main(["build", "--onnx", str(har_onnx), "--target", "host"]) == 2
    assert "give its sampling rate with --sfreq HZ, or a card with --card" in capsys.readouterr().err
    assert main(["build", "--onnx", str(har_onnx), "--target", "host", "--sfreq", "50"]) == 0
    card = recorded_card(tmp_path / "build" / "har-host")
    assert card.kind == "sensor" and card.name == "har" and card.input.n_channels == 3
    assert card.input.window_samples == WINDOW and card.input.sample_rate == 50.0 and card.input.scale is None


def test_reference_agrees_with_onnxruntime(har_onnx):
    """The integer reference the device matches, dequantised, against onnxruntime (optimizations off) on the same
    float windows: argmax on every window, logits within 1e-5 (measured: 2.3e-8 on 76 windows)."""
    from edgeflow.export.onnx import ort_run
    from edgeflow.ir.from_onnx import load_onnx
    from edgeflow.ir.reference import run
    from edgeflow.link.harness import quantized_windows

    graph = load_onnx(har_onnx)
    sig = accel_signal(40.0, seed=11) * SCALE
    x = np.stack([sig[k:k + WINDOW].T for k in range(0, len(sig) - WINDOW, 25)]).astype(np.float32)
    ref = np.stack([np.asarray(run(graph, q)[graph.outputs[0]]).reshape(-1) for q in quantized_windows(x, graph)])
    ref = ref * np.asarray(graph.meta["output_scale"])
    ort = ort_run(har_onnx, x).reshape(ref.shape)
    assert len(x) == 76 and np.array_equal(ref.argmax(1), ort.argmax(1))
    assert np.abs(ref - ort).max() <= 1e-5


def test_edf_plus_d_streams_bit_exact_with_its_gap(har_build, device_on, signal, tmp_path):
    """The same walk as an EDF+D file (signals labelled z, x, y plus a temperature; 4 s, a 10 s gap, 5 s): the card
    picks x, y, z by label, no window straddles the gap, windows.jsonl carries each start, every answer bit-exact
    and equal to the reference on the file's own values."""
    from malformed import edf  # the corpus' byte-level EDF writer (tests/ is on sys.path)

    from edgeflow.build_folder import read_graph
    from edgeflow.ir.reference import run
    from edgeflow.link.harness import quantized_windows

    sig = signal[:450].T                                              # (3, 9 s)
    onsets = [float(t) for t in range(4)] + [float(t) for t in range(14, 19)]
    data = np.concatenate([sig[[2, 0, 1]], np.full((1, sig.shape[1]), 21.5)])
    rec = edf.write(tmp_path / "walk.edf", edf.edf_bytes(data, 50.0, labels=("Z", "x", "y", "temp"), phys=(-40, 40),
                                                         unit="m/s^2", onsets=onsets))
    summary = _stream(har_build, tmp_path / "run", "--input", str(rec))
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "windows.jsonl").read_text().splitlines()]
    assert [r["start_s"] for r in rows] == [0.0, 1.0, 2.0, 14.0, 15.0, 16.0, 17.0]
    assert summary["windows"] == summary["matching"] == 7 and all(r["values"] == r["expected"] for r in rows)
    step = 80.0 / 65535                                               # the file's resolution
    phys = np.round((sig + 40.0) / step) * step - 40.0                # what the file holds, in the card's order
    cuts = [0, 50, 100, 200, 250, 300, 350]                           # samples; the second stretch starts at 200
    want = np.stack([phys[:, a:a + WINDOW] * SCALE for a in cuts]).astype(np.float32)
    graph = read_graph(har_build)
    refs = [np.asarray(run(graph, q)[graph.outputs[0]]).reshape(-1).tolist() for q in quantized_windows(want, graph)]
    assert [r["expected"] for r in rows] == refs
