"""onnxruntime-quantized test models (asymmetric MLP: linear_acc + requant; padded 1-D CNN and EEGNet: conv / pool;
attention: the zero-point kernels) on pulp-open (GVSoC), bytes of the numpy reference on 1 and 8 cluster cores."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.backends import pulp_open
from edgeflow.ir.from_onnx import load_onnx, quantize_input
from edgeflow.ir.reference import run
from edgeflow.runners import gvsoc
from edgeflow.target import load_target
from tests.c.ort_models import CONFIGS, SHAPES, ort_onnx, windows

from .conftest import need_gvsoc

pytestmark = pytest.mark.gvsoc

# asymmetric MLP, padded 1-D CNN, EEGNet, attention (the zero-point kernels of ef_zp.c on the cluster)
_IDS = ("attn-pre-pc-quint8-asym", "mh-pre-pc-quint8-asym")   # one and two heads: the split matmul_zp / softmax_zp
PICKED = [CONFIGS[1], CONFIGS[7], CONFIGS[10], *(c for c in CONFIGS if c.id in _IDS)]


@pytest.mark.parametrize("cfg", PICKED, ids=[c.id for c in PICKED])
def test_ort_qdq_bit_exact_on_1_and_8_cores(tmp_path_factory, tmp_path, cfg):
    need_gvsoc()
    graph = load_onnx(ort_onnx(tmp_path_factory, cfg))
    assert graph.meta["input_zero_point"] != 0
    shape = graph.tensors[graph.inputs[0]].shape
    q = np.stack([quantize_input(x, graph).reshape(shape) for x in windows(SHAPES[cfg.family], n=3)])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    art = pulp_open.compile(graph, load_target("pulp-open"), tmp_path)
    for cores in (1, 8):
        got, _ = gvsoc.run(art.binary, q, want.shape[1], cores=cores)
        np.testing.assert_array_equal(got, want)
