"""`edgeflow build` / `inspect`: artifact layout, bit-exact check, no half-written directory on failure."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeflow.build import BuildError, build
from edgeflow.cli import main

from .models import femba_micro_onnx

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc missing")]


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    return femba_micro_onnx(tmp_path_factory)


def test_build_layout_and_bit_exact_check(onnx_file, tmp_path):
    x = np.random.default_rng(5).standard_normal((8, 22, 1280)).astype(np.float32)
    out = tmp_path / "build" / "femba-micro-host"
    report = build(onnx_file, "host", out, x)
    assert report["check"] == {"windows": 8, "mismatched": 0, "bit_exact": True}
    for name in ("model.onnx", "graph.json", "plan.json", "report.json", "firmware", "src/network.c",
                 "src/weights.h"):
        assert (out / name).exists(), name
    assert json.loads((out / "report.json").read_text())["target"] == "host"
    assert [p.name for p in out.parent.iterdir()] == ["femba-micro-host"]  # no temporary folder left


def test_failed_build_leaves_no_directory(onnx_file, tmp_path):
    out = tmp_path / "build" / "x-jetson"
    with pytest.raises(BuildError, match="--target jetson: unknown target"):
        build(onnx_file, "jetson", out)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(onnx_file.read_bytes()[:1000])  # truncated
    with pytest.raises(Exception, match="bad.onnx"):
        build(bad, "host", out)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_cli_build_then_inspect(onnx_file, tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["build", "--target", "host", "--card", "femba-micro", "--onnx", str(onnx_file),
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "scan" in text and "total" in text
    assert main(["inspect", str(tmp_path)]) == 2


def test_backend_failure_midway_removes_partial_output(onnx_file, tmp_path, monkeypatch):
    import edgeflow.backends as backends

    def half_then_fail(graph, target, out_dir):
        (out_dir / "src").mkdir()
        (out_dir / "src" / "network.c").write_text("/* partial */")
        raise BuildError("layer 'x' needs 200000 bytes of L1, target has 106496")

    import dataclasses

    failing = dataclasses.replace(backends.BACKENDS["host"], compile=half_then_fail)
    monkeypatch.setitem(backends.BACKENDS, "host", failing)
    out = tmp_path / "build" / "m-host"
    with pytest.raises(BuildError, match="layer 'x'"):
        build(onnx_file, "host", out)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_backend_that_takes_onnx_gets_the_file(onnx_file, tmp_path, monkeypatch):
    """A Backend with takes="onnx" (the coming TVM / Jetson backend) is handed the ONNX file, not the graph."""
    import dataclasses

    import edgeflow.backends as backends
    from edgeflow.backends.base import Artifact

    seen = []

    def compile_onnx(model, target, out_dir):
        seen.append(model)
        (out_dir / "lib.so").write_bytes(b"")
        return Artifact(out_dir, [], None, {}, {"backend": "onnx-probe"})

    probe = dataclasses.replace(backends.BACKENDS["host"], compile=compile_onnx, takes="onnx", run_windows=None)
    monkeypatch.setitem(backends.BACKENDS, "host", probe)
    report = build(onnx_file, "host", tmp_path / "o")
    assert seen == [onnx_file] and report["backend"] == "onnx-probe" and (tmp_path / "o" / "lib.so").exists()


def test_femba_tiny_2bit_fits_the_gap9_budget_cli_check_then_inspect(tmp_path, capsys):
    """Issue budget for FEMBA-tiny at 2-bit on GAP9: tiles + double buffers fit L1 (<= 128 KiB), arena + resident
    constants fit L2 (<= 1.5 MiB), all constants (weights, per-row and scan parameters, tables) <= 2.0 MB, and the
    tiled, MRAM-streamed build is bit-exact with the reference. The same build is the CLI check of an untrained
    card (`build --target gap9 --card --init random --check`, then `inspect`): one femba-tiny build covers both
    (femba-micro's CLI build of the same path was a second ~15 s build; the in-process gap9 builds of femba-micro
    are in tests/c/test_gap9.py)."""
    out = tmp_path / "tiny"
    assert main(["build", "--target", "gap9", "--card", "femba-tiny", "--init", "random", "--check", "1",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "bit-exact with the reference on 1 windows" in text and "memory by level" in text
    report = json.loads((out / "report.json").read_text())
    assert report["target"] == "gap9" and all(v["fits"] for v in report["memory"]["levels"].values())
    assert (out / "src" / "Makefile").exists() and not list(tmp_path.glob(".t*"))
    levels = report["memory"]["levels"]
    assert report["check"]["bit_exact"] and report["macs"] > 600e6
    assert levels["L1"]["fits"] and levels["L1"]["used"] <= levels["L1"]["usable"] <= 128 * 1024
    assert levels["L2"]["fits"] and levels["L2"]["used"] <= 1536 * 1024
    assert report["memory"]["weights_level"] == "MRAM" and levels["MRAM"]["fits"]
    assert report["weight_bytes"] <= 2_000_000, report["weight_bytes"]
    assert main(["inspect", str(out)]) == 0
    assert "L1" in capsys.readouterr().out
    print(f"femba-tiny gap9: constants {report['weight_bytes']:,} B, L1 {levels['L1']['used']:,}, "
          f"L2 {levels['L2']['used']:,}, MRAM {levels['MRAM']['used']:,}")
