"""The `edgeflow.SelectiveScan` custom node: torch/brevitas export, ONNX function body, ORT, checks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from edgeflow.export.scan_op import (
    SCAN_DOMAIN,
    SCAN_OP,
    ScanNodeError,
    attach_scan_function,
    check_scan_nodes,
    make_scan_function,
    scan_translation_table,
    selective_scan_export,
)

pytestmark = pytest.mark.unit

TOL = 1e-5  # float32 ORT (ORT_DISABLE_ALL) vs PyTorch / brevitas / float64 numpy oracle, max abs difference
D_MODEL, D_INNER, D_STATE = 6, 5, 4


def scan_oracle(u: np.ndarray, delta: np.ndarray, A: np.ndarray, B: np.ndarray, C: np.ndarray,
                D: np.ndarray, direction: int) -> np.ndarray:
    """Sequential selective scan in float64 numpy, written from the definition."""
    u, delta, A, B, C, D = (np.asarray(a, dtype=np.float64) for a in (u, delta, A, B, C, D))
    if direction == 1:
        u, delta, B, C = (a[:, ::-1] for a in (u, delta, B, C))
    batch, length, d_inner = u.shape
    y = np.zeros_like(u)
    for b in range(batch):
        h = np.zeros((d_inner, A.shape[1]))
        for t in range(length):
            h = np.exp(delta[b, t][:, None] * A) * h + (delta[b, t] * u[b, t])[:, None] * B[b, t][None, :]
            y[b, t] = h @ C[b, t] + D * u[b, t]
    return y[:, ::-1] if direction == 1 else y


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def scan_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if (n.domain, n.op_type) == (SCAN_DOMAIN, SCAN_OP)]


class TinyBiScan(nn.Module):
    """Linear -> (u, delta, B, C) -> forward scan + reverse scan -> add -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(D_MODEL, 2 * D_INNER + 2 * D_STATE)
        a_init = torch.linspace(1.0, 16.0, D_INNER * D_STATE).reshape(D_INNER, D_STATE)   # A spans -1..-16
        self.A_log = nn.Parameter(torch.log(a_init))
        self.D = nn.Parameter(torch.randn(D_INNER))
        self.out = nn.Linear(D_INNER, D_MODEL)

    def scans(self, h: torch.Tensor) -> torch.Tensor:
        u, delta, B, C = h.split([D_INNER, D_INNER, D_STATE, D_STATE], dim=-1)
        delta, A = F.softplus(delta), -torch.exp(self.A_log)
        return (selective_scan_export(u, delta, A, B, C, self.D, direction=0)
                + selective_scan_export(u, delta, A, B, C, self.D, direction=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.scans(self.inp(x)))


def make_quant_model() -> nn.Module:
    from brevitas.nn import QuantIdentity, QuantLinear
    from brevitas.quant import Int32Bias

    class TinyBiScanQ(TinyBiScan):
        def __init__(self) -> None:
            super().__init__()
            self.q_in = QuantIdentity(return_quant_tensor=True)
            self.inp = QuantLinear(D_MODEL, 2 * D_INNER + 2 * D_STATE, weight_bit_width=4, bias=True,
                                   bias_quant=Int32Bias, return_quant_tensor=False)
            self.q_mid = QuantIdentity(return_quant_tensor=True)
            self.out = QuantLinear(D_INNER, D_MODEL, weight_bit_width=2, bias=True, bias_quant=Int32Bias,
                                   return_quant_tensor=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.q_mid(self.scans(self.inp(self.q_in(x)))))

    torch.manual_seed(1)
    model = TinyBiScanQ().train()
    with torch.no_grad():                           # a few steps of activation statistics
        for _ in range(3):
            model(torch.randn(4, 80, D_MODEL))
    return model.eval()


def test_scan_export_matches_oracle_in_eager() -> None:
    rng = np.random.default_rng(0)
    args = random_scan_args(rng, 2, 9)
    for direction in (0, 1):
        y = selective_scan_export(*(torch.from_numpy(a) for a in args), direction=direction)
        assert np.abs(y.numpy() - scan_oracle(*args, direction)).max() < TOL


@pytest.mark.parametrize("length", [80, 33])
def test_torchscript_export_opset13_runs_in_ort(length: int) -> None:
    torch.manual_seed(0)
    model = TinyBiScan().eval()
    x = torch.randn(2, length, D_MODEL)
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=13, input_names=["x"], output_names=["y"])
    proto = attach_scan_function(onnx.load_from_string(buf.getvalue()))
    onnx.checker.check_model(proto, full_check=True)
    nodes = scan_nodes(proto)
    assert len(nodes) == 2 and check_scan_nodes(proto) == 2
    assert sorted(helper.get_node_attr_value(n, "direction") for n in nodes) == [0, 1]
    assert all(helper.get_node_attr_value(n, "d_state") == D_STATE for n in nodes)
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(run_ort(proto, {"x": x.numpy()}) - expected).max() < TOL

    again = attach_scan_function(proto)             # idempotent
    assert len(again.functions) == 1
    assert [o.domain for o in again.opset_import].count(SCAN_DOMAIN) == 1
    assert again.SerializeToString() == proto.SerializeToString()


@pytest.mark.parametrize("length", [80, 33])
def test_brevitas_qcdq_export_runs_in_ort(length: int, tmp_path: Path) -> None:
    from brevitas.export import export_onnx_qcdq

    model = make_quant_model()
    torch.manual_seed(2)
    x = torch.randn(2, length, D_MODEL)
    with torch.no_grad():
        expected = model(x).numpy()
    path = tmp_path / "model.onnx"
    # dynamo=False: brevitas' dynamo QCDQ path refuses quantized bias (Int32Bias); TorchScript gives opset 13.
    export_onnx_qcdq(model, args=x, export_path=str(path), keep_initializers_as_inputs=False,
                     dynamo=False, opset_version=13)
    proto = attach_scan_function(onnx.load(path))
    onnx.checker.check_model(proto, full_check=True)
    assert len(scan_nodes(proto)) == 2
    ops = [n.op_type for n in proto.graph.node]
    assert {"QuantizeLinear", "DequantizeLinear", "Clip"} <= set(ops)

    # weights: int8 constant -> Clip(min, max) -> DequantizeLinear; the 2-bit (narrow) range is [-1, 1]
    values = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in proto.graph.node
              if n.op_type == "Constant"}
    values.update({t.name: numpy_helper.to_array(t) for t in proto.graph.initializer})
    clip_ranges = sorted((int(values[n.input[1]].item()), int(values[n.input[2]].item()))
                         for n in proto.graph.node if n.op_type == "Clip")
    assert clip_ranges == [(-7, 7), (-1, 1)]

    feeds = {proto.graph.input[0].name: x.numpy()}
    assert np.abs(run_ort(proto, feeds) - expected).max() < TOL


def random_scan_args(rng: np.random.Generator, batch: int, length: int) -> list[np.ndarray]:
    args = [rng.standard_normal((batch, length, D_INNER)), rng.uniform(0.01, 0.5, (batch, length, D_INNER)),
            -rng.uniform(1.0, 16.0, (D_INNER, D_STATE)), 2.0 * rng.standard_normal((batch, length, D_STATE)),
            2.0 * rng.standard_normal((batch, length, D_STATE)), rng.standard_normal(D_INNER)]
    return [a.astype(np.float32) for a in args]


def single_scan_model(opset: int, direction: int) -> onnx.ModelProto:
    shapes = {"u": ["b", "L", D_INNER], "delta": ["b", "L", D_INNER], "A": [D_INNER, D_STATE],
              "B": ["b", "L", D_STATE], "C": ["b", "L", D_STATE], "D": [D_INNER]}
    inputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in shapes.items()]
    node = helper.make_node(SCAN_OP, list(shapes), ["y"], name="scan0", domain=SCAN_DOMAIN,
                            direction=direction, d_state=D_STATE)
    graph = helper.make_graph([node], "one_scan", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "L", D_INNER])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                   helper.make_opsetid(SCAN_DOMAIN, 1)],
                             functions=[make_scan_function(opset)])


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("length", [1, 17])
def test_function_body_matches_numpy_oracle(opset: int, direction: int, length: int) -> None:
    model = single_scan_model(opset, direction)
    onnx.checker.check_model(model, full_check=True)
    args = random_scan_args(np.random.default_rng(length + 10 * direction), 3, length)
    got = run_ort(model, dict(zip(["u", "delta", "A", "B", "C", "D"], args, strict=True)))
    assert np.abs(got - scan_oracle(*args, direction)).max() < TOL


def test_dynamo_export_opset18_with_translation_table() -> None:
    torch.manual_seed(0)
    model = TinyBiScan().eval()
    x = torch.randn(1, 21, D_MODEL)
    program = torch.onnx.export(model, (x,), dynamo=True, opset_version=18,
                                custom_translation_table=scan_translation_table(), verbose=False)
    proto = attach_scan_function(program.model_proto)
    onnx.checker.check_model(proto, full_check=True)
    assert len(scan_nodes(proto)) == 2
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(run_ort(proto, {proto.graph.input[0].name: x.numpy()}) - expected).max() < TOL


def test_check_scan_nodes_rejects_unknown_version_op_and_direction() -> None:
    model = single_scan_model(13, 0)
    assert check_scan_nodes(model) == 1

    wrong_version = single_scan_model(13, 0)
    wrong_version.opset_import[1].version = 2
    with pytest.raises(ValueError, match="scan0.*version 2") as err:
        check_scan_nodes(wrong_version)
    assert "\n" not in str(err.value)

    wrong_op = single_scan_model(13, 0)
    wrong_op.graph.node[0].op_type = "SelectiveScanX"
    with pytest.raises(ValueError, match="scan0.*SelectiveScanX") as err:
        check_scan_nodes(wrong_op)
    assert "\n" not in str(err.value)
    with pytest.raises(ScanNodeError):
        attach_scan_function(wrong_op)

    wrong_direction = single_scan_model(13, 2)
    with pytest.raises(ValueError, match="scan0.*direction"):
        check_scan_nodes(wrong_direction)
