"""The device commands end to end: `edgeflow flash` (rebuilding a missing firmware.elf), `edgeflow stream` against
it, `edgeflow flash --stop`, `edgeflow demo`; one-line errors for what cannot be flashed."""

from __future__ import annotations

import json

import pytest

from edgeflow.cli import main
from edgeflow.runners import qemu_rv32 as emulator

from .conftest import CASES, need_cross, need_qemu

pytestmark = pytest.mark.device


def test_flash_stream_stop(tmp_path, recording, capsys):
    need_cross()
    need_qemu()
    build = tmp_path / "micro-rv32"
    assert main(["build", "--target", "rv32-virt", "--card", "femba-micro", "--out", str(build),
                 "--onnx", str(CASES / "femba-micro-w2" / "model.onnx")]) == 0
    (build / "firmware.elf").unlink()                          # flash builds it again from model.onnx
    capsys.readouterr()
    assert main(["flash", "--target", "rv32-virt", str(build)]) == 0
    out = capsys.readouterr().out
    info = json.loads((build / "device.json").read_text())
    try:
        assert "built" in out and info["port"] in out and (build / "firmware.elf").exists()
        assert (build / "card.toml").is_file()                 # the rebuilt folder keeps its recorded card
        assert emulator.load(build) is not None
        assert main(["stream", "--build", str(build), "--input", str(recording), "--card", "femba-micro",
                     "--windows", "3", "--no-progress"]) == 0
        summary = json.loads((build / "stream" / "summary.json").read_text())
        assert summary["matching"] == 3 and summary["port"] == info["port"]
    finally:
        assert main(["flash", "--stop", str(build)]) == 0
    assert "stopped" in capsys.readouterr().out
    assert emulator.load(build) is None and not (build / "device.json").exists()


def test_demo_end_to_end(tmp_path, capsys):
    need_cross()
    need_qemu()
    assert main(["demo", "--out", str(tmp_path), "--windows", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "demo passed" in out and "2 matching bit-exact" in out
    build = tmp_path / "femba-mini-rv32-virt"
    assert (tmp_path / "recording.edf").exists() and not (build / "device.json").exists()
    assert json.loads((build / "stream" / "summary.json").read_text())["matching"] == 2


@pytest.mark.parametrize("args, words", [
    (["flash", "--target", "gap9", "{tmp}"], ["GAP SDK not found", "GAP_SDK_HOME"]),
    (["flash", "--target", "host", "{tmp}"], ["no device to flash", "rv32-virt"]),
    (["flash", "{tmp}/nowhere"], ["no such build directory"]),
])
def test_flash_errors_are_one_line(args, words, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GAP_SDK_HOME", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    need_qemu()
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert all(w in err for w in words) and "Traceback" not in err, err
