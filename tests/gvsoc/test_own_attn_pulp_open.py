"""The test-built attention model (brevitas QuantMultiheadAttention, tests/c/own_attn_models.py) on pulp-open
(GVSoC): the linear / matmul / softmax team split gives the bytes of the numpy reference on 1 and on 8 cores."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.backends import pulp_open
from edgeflow.ir.from_onnx import load_onnx, quantize_input
from edgeflow.ir.reference import run
from edgeflow.runners import gvsoc
from edgeflow.target import load_target
from tests.c.own_attn_models import FAMILIES, attn_onnx
from tests.c.own_cnn_models import windows

from .conftest import need_gvsoc

pytestmark = pytest.mark.gvsoc


def test_own_attn_bit_exact_on_1_and_8_cores(tmp_path_factory, tmp_path):
    need_gvsoc()
    graph = load_onnx(attn_onnx(tmp_path_factory, "attn", 4))
    q = np.stack([quantize_input(x, graph) for x in windows(FAMILIES["attn"][1], n=3)])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    art = pulp_open.compile(graph, load_target("pulp-open"), tmp_path)
    for cores in (1, 8):
        got, _ = gvsoc.run(art.binary, q, want.shape[1], cores=cores)
        np.testing.assert_array_equal(got, want)
