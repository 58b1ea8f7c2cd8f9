"""The CNN frontend (edgeflow/ir/frontend_cnn.py) on hand-built QCDQ graphs: what it lowers, and the one-line
errors (naming the node) for what it cannot."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeflow.ir.from_onnx import FrontendError, load_onnx, quantize_input
from edgeflow.ir.reference import logits

pytestmark = pytest.mark.unit


class _G:
    """A tiny QCDQ graph: input (1, C, W) float -> quantizer -> body(DQ value) -> quantizer -> Flatten -> Gemm."""

    def __init__(self, shape=(1, 2, 8), zp_dtype=np.int8):
        self.nodes, self.inits, self.shape, self.n = [], [], shape, 0
        self.x = self.quant("input", 0.05, zp_dtype)

    def c(self, arr, name=None) -> str:
        self.n += 1
        name = name or f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op, ins, **at) -> str:
        self.n += 1
        out = f"v{self.n}"
        self.nodes.append(helper.make_node(op, ins, [out], name=f"/{op.lower()}{self.n}/{op}", **at))
        return out

    def quant(self, v, scale, zp_dtype=np.int8) -> str:
        s, z = self.c(np.float32(scale)), self.c(zp_dtype(0))
        self.n += 1
        q, dq = f"q{self.n}", f"dq{self.n}"
        self.nodes += [helper.make_node("QuantizeLinear", [v, s, z], [q], name=f"/q{self.n}/QuantizeLinear"),
                       helper.make_node("DequantizeLinear", [q, s, z], [dq], name=f"/q{self.n}/DequantizeLinear")]
        return dq

    def head(self, v, n_in, s_in) -> None:
        w = np.random.default_rng(0).integers(-100, 100, (3, n_in)).astype(np.int8)
        wdq = self.node("DequantizeLinear", [self.c(w), self.c(np.full(3, 0.01, np.float32)),
                                             self.c(np.zeros(3, np.int8))], axis=0)
        bdq = self.node("DequantizeLinear", [self.c(np.array([5, -5, 0], np.int32)),
                                             self.c(np.full(3, 0.01 * s_in, np.float32)),
                                             self.c(np.zeros(3, np.int32))], axis=0)
        flat = self.node("Flatten", [v], axis=1)
        self.nodes.append(helper.make_node("Gemm", [flat, wdq, bdq], ["logits"], name="/fc/Gemm", transB=1))

    def save(self, path) -> str:
        g = helper.make_graph(self.nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.shape)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        onnx.save(m, str(path))
        return str(path)


def _ort(path, xs):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"input": x[None]})[0] for x in xs])


@pytest.mark.parametrize("op, at, n_out", [("MaxPool", {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, 4),
                                            ("AveragePool", {"kernel_shape": [3], "strides": [1], "pads": [1, 1]}, 8),
                                            ("GlobalAveragePool", {}, 1)])
def test_pools_and_activations_match_onnxruntime(tmp_path, op, at, n_out):
    """pool -> quantizer -> Tanh / Sigmoid / Elu LUTs -> Clip of an activation (a requantizing clamp LUT): the
    reference's dequantised logits follow onnxruntime's."""
    g = _G()
    v = g.quant(g.node(op, [g.x], **at), 0.04)
    v = g.quant(g.node("Tanh", [v]), 1 / 127)
    v = g.quant(g.node("Elu", [g.quant(g.node("Sigmoid", [v]), 1 / 127)], alpha=0.5), 0.01)
    v = g.quant(g.node("Clip", [v, g.c(np.float32(0)), g.c(np.float32(0.6))]), 0.01)
    g.head(v, 2 * n_out, 0.01)
    path = g.save(tmp_path / "m.onnx")
    graph = load_onnx(path)
    assert [n.op for n in graph.nodes] == ["pool", "lut", "lut", "lut", "lut", "reshape", "linear_acc"]
    assert [n.attrs["fn"] for n in graph.nodes if n.op == "lut"] == ["tanh", "sigmoid", "elu", "requant"]
    xs = np.random.default_rng(1).standard_normal((32, 2, 8)).astype(np.float32) * 2
    ours, theirs = logits(graph, xs), _ort(path, xs)
    assert np.abs(ours - theirs).max() < 0.1 * np.abs(theirs).max()
    assert np.array_equal(quantize_input(xs[0], graph).shape, (2, 8))


@pytest.mark.parametrize("build, message", [
    (lambda g: g.node("AveragePool", [g.x], kernel_shape=[2], strides=[2], ceil_mode=1),
     r"node '/averagepool\d+/AveragePool': AveragePool must have ceil_mode 0, explicit pads"),
    (lambda g: g.node("BatchNormalization", [g.x] + [g.c(np.ones(2, np.float32)) for _ in range(4)]),
     r"node '/batchnormalization\d+/BatchNormalization': BatchNormalization must follow a Conv or Gemm \(insert "
     r"a QuantIdentity"),
    (lambda g: g.node("MaxPool", [g.x], kernel_shape=[5, 5]),
     r"node '/maxpool\d+/MaxPool': MaxPool kernel \[5, 5\] does not fit input \(2, 8\)"),
])
def test_unsupported_cnn_regions_are_one_line_errors(tmp_path, build, message):
    g = _G()
    v = g.quant(build(g), 0.05)
    g.head(v, 8, 0.05)
    with pytest.raises(FrontendError, match=message) as info:
        load_onnx(g.save(tmp_path / "bad.onnx"))
    assert "\n" not in str(info.value)


def test_uint8_graph_input_is_refused(tmp_path):
    g = _G(zp_dtype=np.uint8)
    g.head(g.quant(g.node("Relu", [g.x]), 0.05), 16, 0.05)
    with pytest.raises(FrontendError, match=r"the graph input must be quantized to int8 \(zero point 0\), got uint8"):
        load_onnx(g.save(tmp_path / "u8.onnx"))
