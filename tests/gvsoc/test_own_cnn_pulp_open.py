"""The test-built CNNs on pulp-open (GVSoC): the conv / pool team split over output channels gives the bytes of
the numpy reference on 1 and on 8 cluster cores."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.backends import pulp_open
from edgeflow.ir.from_onnx import load_onnx, quantize_input
from edgeflow.ir.reference import run
from edgeflow.runners import gvsoc
from edgeflow.target import load_target
from tests.c.own_cnn_models import FAMILIES, cnn_onnx, windows

from .conftest import need_gvsoc

pytestmark = pytest.mark.gvsoc


@pytest.mark.parametrize("family, bits", [("eegnet", 8), ("zoo", 4)])
def test_own_cnn_bit_exact_on_1_and_8_cores(tmp_path_factory, tmp_path, family, bits):
    need_gvsoc()
    graph = load_onnx(cnn_onnx(tmp_path_factory, family, bits))
    q = np.stack([quantize_input(x, graph) for x in windows(FAMILIES[family][1], n=3)])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    art = pulp_open.compile(graph, load_target("pulp-open"), tmp_path)
    for cores in (1, 8):
        got, _ = gvsoc.run(art.binary, q, want.shape[1], cores=cores)
        np.testing.assert_array_equal(got, want)
