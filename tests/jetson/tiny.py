"""A tiny QCDQ ONNX with femba-mini's input and output (quantize the input, mean over time, 2-bit-style weights,
linear head): exercises the jetson host path in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_tiny_qcdq(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    w = rng.integers(-2, 2, size=(22, 2)).astype(np.int8)
    inits = [numpy_helper.from_array(np.array(0.08245959, np.float32), "s_in"),
             numpy_helper.from_array(np.array(0, np.int8), "zp"),
             numpy_helper.from_array(w, "w_q"), numpy_helper.from_array(np.array(0.25, np.float32), "s_w"),
             numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "b")]
    nodes = [helper.make_node("QuantizeLinear", ["x.1", "s_in", "zp"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s_in", "zp"], ["xd"]),
             helper.make_node("ReduceMean", ["xd"], ["m"], axes=[2], keepdims=0),
             helper.make_node("DequantizeLinear", ["w_q", "s_w", "zp"], ["w"]),
             helper.make_node("MatMul", ["m", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x.1", TensorProto.FLOAT, [1, 22, 1280])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path
