"""The user's accelerometer model (tests/link/sensor_model.py) on the emulated rv32 board: `edgeflow build --onnx
--card accel-har --target rv32-virt` -> `edgeflow flash` (QEMU) -> `edgeflow stream` of a CSV recording through the
card the build recorded, every answer bit-exact -> `edgeflow flash --stop`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeflow.cli import main
from edgeflow.runners import qemu_rv32 as emulator
from tests.link.sensor_model import WINDOW, accel_signal, export_har, write_csv

from .conftest import need_cross, need_qemu

pytestmark = pytest.mark.device


def test_sensor_model_on_qemu_rv32(tmp_path, capsys, monkeypatch):
    need_cross()
    need_qemu()
    onnx = export_har(tmp_path, name="har-rv32")
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--onnx", str(onnx), "--card", "accel-har", "--target", "rv32-virt"]) == 0
    build = tmp_path / "build" / "har-rv32-rv32-virt"
    assert (build / "card.toml").is_file() and (build / "firmware.elf").is_file()
    sig = np.round(accel_signal(8.0, seed=9), 5)
    csv = write_csv(tmp_path / "walk.csv", sig)
    capsys.readouterr()
    assert main(["flash", "--target", "rv32-virt", str(build)]) == 0
    try:
        assert main(["stream", "--build", str(build), "--input", str(csv), "--no-progress"]) == 0
        summary = json.loads((build / "stream" / "summary.json").read_text())
        rows = [json.loads(ln) for ln in (build / "stream" / "windows.jsonl").read_text().splitlines()]
        n = 1 + (len(sig) - WINDOW) // 50
        assert summary["windows"] == summary["matching"] == len(rows) == n == 7
        assert summary["lost"] == summary["mismatched"] == 0 and summary["instret_per_window"] > 0
        assert all(r["values"] == r["expected"] for r in rows)
    finally:
        assert main(["flash", "--stop", str(build)]) == 0
    assert emulator.load(build) is None
