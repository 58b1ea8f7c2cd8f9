"""onnxruntime-quantized test models (tests/c/ort_models.py: MLPs, 1-D CNNs, EEGNet, attention) as rv32 firmware on
QEMU over the link protocol, bit-exact with the numpy reference (input zero point applied by quantize_input)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.backends.rv32_virt import compile_rv32, run_windows
from edgeflow.ir.from_onnx import load_onnx, quantize_input
from edgeflow.ir.reference import run
from tests.c.ort_models import CONFIGS, SHAPES, ort_onnx, windows

from .conftest import need_cross, need_qemu

pytestmark = pytest.mark.device

# uint8 asymmetric per-tensor MLP, symmetric and asymmetric (padded) 1-D CNNs, an asymmetric per-channel EEGNet
# (padded Conv2d, depthwise Conv2d, float Elu -> AveragePool, Flatten), the asymmetric attention model (matmul_zp,
# softmax_zp, add_zp, LayerNorm, ReduceMean), the gated model (mul_zp, Concat) and the two-head attention (Split,
# per-head matmul_zp). The int8 asymmetric per-channel MLP (CONFIGS[2]) lowers to CONFIGS[0]'s graph structure
# (ort_models.TWINS, checked in tests/c/test_ort_qdq.py): the same firmware code path with other constants.
_IDS = ("attn-pre-pc-quint8-asym", "gate-pre-pc-quint8-asym", "mh-pre-pc-quint8-asym")
PICKED = [CONFIGS[0], CONFIGS[5], CONFIGS[7], CONFIGS[10], *(c for c in CONFIGS if c.id in _IDS)]


@pytest.mark.parametrize("cfg", PICKED, ids=[c.id for c in PICKED])
def test_ort_qdq_on_qemu_bit_exact(rv32, tmp_path_factory, tmp_path, cfg):
    need_cross()
    need_qemu()
    graph = load_onnx(ort_onnx(tmp_path_factory, cfg))
    shape = graph.tensors[graph.inputs[0]].shape
    q = np.stack([quantize_input(x, graph).reshape(shape) for x in windows(SHAPES[cfg.family], n=16)])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    assert cfg.symmetric or graph.meta["input_zero_point"] != 0
    art = compile_rv32(graph, rv32, tmp_path)
    assert np.array_equal(run_windows(art.binary, q, want.shape[1]), want)
