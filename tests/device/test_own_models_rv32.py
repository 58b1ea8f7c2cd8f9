"""The models the tests build (tests/c/own_models.py) cross-compiled for rv32-virt and run on QEMU: bit-exact
with the numpy reference (the transpose copy, the reshape views and the uneven gather included)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.backends.rv32_virt import compile_rv32
from edgeflow.backends.rv32_virt import run_windows as run_rv32
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.passes.pipeline import run_pipeline
from tests.c.own_models import exported_model, int_windows, reference

from .conftest import need_cross, need_qemu

pytestmark = pytest.mark.device


@pytest.mark.parametrize("name", ["mlp-w4", "transpose-linear-square", "reshape-linear", "concat-linear",
                                  "gather-channels"])
def test_own_model_on_qemu_is_bit_exact(name, rv32, tmp_path_factory, tmp_path):
    need_cross()
    need_qemu()
    path, xs = exported_model(tmp_path_factory, name)
    graph = run_pipeline(load_onnx(path))
    q = int_windows(graph, xs[:8])
    want = reference(graph, q)
    art = compile_rv32(graph, rv32, tmp_path / "rv32", main="raw")
    assert np.array_equal(run_rv32(art.binary, q, want.shape[1]), want)
