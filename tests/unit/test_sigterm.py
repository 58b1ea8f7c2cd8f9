"""A build killed by SIGTERM leaves nothing beside its --out: the cleanup runs as on an error."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import edgeflow

pytestmark = pytest.mark.unit

MICRO_ONNX = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2" / "model.onnx"


def test_sigterm_during_build_leaves_no_temporary_folder(tmp_path):
    root = Path(edgeflow.__file__).resolve().parents[1]
    out = tmp_path / "work" / "b"
    proc = subprocess.Popen([sys.executable, "-m", "edgeflow", "build", "--target", "host", "--card", "femba-micro",
                             "--onnx", str(MICRO_ONNX), "--out", str(out)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # wait until the build's temporary folder exists
        if out.parent.is_dir() and any(p.name.startswith(".b.") for p in out.parent.iterdir()):
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail(f"the build ended before it could be interrupted (rc {proc.returncode})")
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    assert rc == 128 + signal.SIGTERM
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] == []
