"""The test-built attention model (tests/c/own_attn_models.py: brevitas QuantMultiheadAttention, 8- and 4-bit) as
rv32 firmware on QEMU over the link protocol, bit-exact with the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.backends.rv32_virt import compile_rv32, run_windows
from edgeflow.ir.from_onnx import load_onnx, quantize_input
from edgeflow.ir.reference import run
from tests.c.own_attn_models import FAMILIES, attn_onnx
from tests.c.own_cnn_models import windows

from .conftest import need_cross, need_qemu

pytestmark = pytest.mark.device


@pytest.mark.parametrize("family, bits", [("attn", 8), ("attn", 4)])
def test_own_attn_on_qemu_bit_exact(rv32, tmp_path_factory, tmp_path, family, bits):
    need_cross()
    need_qemu()
    graph = load_onnx(attn_onnx(tmp_path_factory, family, bits))
    assert [n.op for n in graph.nodes].count("softmax_rows") == 2
    q = np.stack([quantize_input(x, graph) for x in windows(FAMILIES[family][1], n=16)])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    art = compile_rv32(graph, rv32, tmp_path)
    assert art.report["firmware"]["sections"][".text"] > 0
    assert np.array_equal(run_windows(art.binary, q, want.shape[1]), want)
