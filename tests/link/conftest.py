"""Link tier fixtures: femba-micro's device main loop built natively once, started on a fresh pty per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeflow.ir.from_onnx import load_onnx
from edgeflow.ir.graph import Graph
from edgeflow.link.model_info import model_hash
from edgeflow.runners.native_pty import PtyDevice, build_native_device

CASE = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2"


@pytest.fixture(scope="session")
def micro_graph() -> Graph:
    return load_onnx(CASE / "model.onnx")


@pytest.fixture(scope="session")
def micro_windows() -> np.ndarray:
    """int8 windows of synthetic EEG (the golden case's inputs)."""
    with np.load(CASE / "inputs.npz") as z:
        return z["x"][:8]


@pytest.fixture(scope="session")
def native_build(tmp_path_factory, micro_graph) -> Path:
    """A build directory (graph.json, weights.npz, src/, device_native) of femba-micro's native device."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    d = tmp_path_factory.mktemp("micro-native")
    build_native_device(micro_graph, d)
    return d


@pytest.fixture(scope="session")
def micro_hash(native_build) -> bytes:
    return model_hash(native_build)


@pytest.fixture
def device(native_build):
    """The native device running on a new pty (device.port is the path the host opens)."""
    with PtyDevice(native_build / "device_native") as d:
        yield d
