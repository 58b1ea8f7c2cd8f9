"""Models the tests build themselves (brevitas, plain PyTorch layers), exported QCDQ with dynamo=False, and the
checks every such model passes: onnxruntime agreement of the dequantised logits, bit-exact C on each target."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

N_WINDOWS = 64


def _mlp(bits: int) -> nn.Module:
    """QuantIdentity -> QuantLinear -> QuantReLU (int8) -> QuantLinear (no bias) -> ReLU -> QuantIdentity -> head."""
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Int32Bias

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q0 = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.fc1 = qnn.QuantLinear(32, 16, bias=True, weight_bit_width=bits, bias_quant=Int32Bias,
                                       return_quant_tensor=True)
            self.r1 = qnn.QuantReLU(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
            self.fc2 = qnn.QuantLinear(16, 16, bias=False, weight_bit_width=bits)
            self.r2 = nn.ReLU()
            self.q2 = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.fc3 = qnn.QuantLinear(16, 4, bias=True, weight_bit_width=bits, bias_quant=Int32Bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc3(self.q2(self.r2(self.fc2(self.r1(self.fc1(self.q0(x)))))))

    return MLP()


def _layout(kind: str, c: int, t: int) -> nn.Module:
    """(1, C, T) window -> Transpose(1, 2) -> linear over channels per step -> reshape(B, -1) -> head."""
    import brevitas.nn as qnn
    from brevitas.quant import Int32Bias

    class Layout(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q0 = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.fc1 = qnn.QuantLinear(c if kind == "transpose" else t, 6, bias=True, bias_quant=Int32Bias)
            self.q1 = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.head = qnn.QuantLinear(6 * (t if kind == "transpose" else c), 3, bias=True, bias_quant=Int32Bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.q0(x)
            if kind == "transpose":
                x = x.transpose(1, 2)
            x = self.q1(self.fc1(x))
            return self.head(x.reshape(x.shape[0], -1))

    return Layout()


def _gather(axis: int, index: list[int], c: int, t: int) -> nn.Module:
    """(1, C, T) window -> picks channels (axis 1) or time steps (axis 2) at uneven `index` (an ONNX Gather of
    constant indices) -> linear over the last axis -> reshape(B, -1) -> head."""
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Int32Bias

    rows, cols = (len(index), t) if axis == 1 else (c, len(index))

    class Pick(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q0 = qnn.QuantIdentity(bit_width=8)       # the window's quantizer; fc1 quantizes the picked
            self.fc1 = qnn.QuantLinear(cols, 5, bias=True, bias_quant=Int32Bias, input_quant=Int8ActPerTensorFloat)
            self.q1 = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.head = qnn.QuantLinear(rows * 5, 3, bias=True, bias_quant=Int32Bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.q0(x)
            x = x[:, index, :] if axis == 1 else x[:, :, index]
            x = self.q1(self.fc1(x))
            return self.head(x.reshape(x.shape[0], -1))

    return Pick()


def _concat() -> nn.Module:
    """(1, 4, 8) -> two per-step linear branches quantized at their own scales -> Concat (features) -> Slice of
    the first two steps times 0.5 at a third scale -> Concat (time) -> reshape(B, -1) -> head."""
    import brevitas.nn as qnn
    from brevitas.quant import Int32Bias

    class Cat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q0 = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.fa = qnn.QuantLinear(8, 6, bias=True, bias_quant=Int32Bias)
            self.fb = qnn.QuantLinear(8, 3, bias=True, bias_quant=Int32Bias)
            self.qa = qnn.QuantIdentity(bit_width=8)
            self.qb = qnn.QuantIdentity(bit_width=8)
            self.qc = qnn.QuantIdentity(bit_width=8)
            self.qy = qnn.QuantIdentity(bit_width=8)
            self.q1 = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.head = qnn.QuantLinear(9 * 6, 3, bias=True, bias_quant=Int32Bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.q0(x)
            y = self.qy(torch.cat([self.qa(self.fa(x)), self.qb(self.fb(x))], dim=2))
            y = self.q1(torch.cat([y, self.qc(y[:, :2] * 0.5)], dim=1))
            return self.head(y.reshape(y.shape[0], -1))

    return Cat()


MODELS = {"concat-linear": (_concat, (4, 8)), "mlp-w8": (lambda: _mlp(8), (32,)), "mlp-w4": (lambda: _mlp(4), (32,)),
          "transpose-linear": (lambda: _layout("transpose", 4, 8), (4, 8)),
          "transpose-linear-square": (lambda: _layout("transpose", 6, 6), (6, 6)),
          "reshape-linear": (lambda: _layout("reshape", 4, 8), (4, 8)),
          "gather-channels": (lambda: _gather(1, [0, 2, 3, 7], 8, 6), (8, 6)),
          "gather-steps": (lambda: _gather(2, [5, 0, 2, 2, 4], 4, 6), (4, 6))}


def export_model(name: str, folder: Path) -> tuple[Path, np.ndarray]:
    """(ONNX path, float windows (N_WINDOWS, *shape)) of test model `name`, calibrated on random windows."""
    from brevitas.export import export_onnx_qcdq

    build, shape = MODELS[name]
    torch.manual_seed(sum(map(ord, name)))
    model = build()
    x = torch.randn(256, *shape)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(x)
    model.eval()
    path = Path(folder) / f"{name}.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        export_onnx_qcdq(model, args=x[:1], export_path=str(path), dynamo=False)
    onnx.checker.check_model(str(path))
    return path, np.random.default_rng(7).standard_normal((N_WINDOWS, *shape)).astype(np.float32)


_EXPORTS: dict[str, tuple[Path, np.ndarray]] = {}


def exported_model(tmp_path_factory, name: str) -> tuple[Path, np.ndarray]:
    """export_model(name) once per test session (the c, device and gvsoc tiers share the same ONNX file; the
    callers only read it)."""
    if name not in _EXPORTS:
        _EXPORTS[name] = export_model(name, tmp_path_factory.mktemp(f"own-{name}"))
    return _EXPORTS[name]


def onnxruntime_logits(path: Path, xs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[None]})[0].reshape(1, -1) for x in xs])


def int_windows(graph, xs: np.ndarray) -> np.ndarray:
    """The int8 codes of float windows, shaped as the graph input."""
    from edgeflow.ir.from_onnx import quantize_input

    return np.stack([quantize_input(x, graph).reshape(graph.tensors[graph.inputs[0]].shape) for x in xs])


def reference(graph, q: np.ndarray) -> np.ndarray:
    from edgeflow.ir.reference import run

    return np.stack([np.asarray(run(graph, x)[graph.outputs[0]]).reshape(-1) for x in q])


def agree_with_onnxruntime(name: str, graph, path: Path, xs: np.ndarray) -> float:
    """Dequantised reference logits vs onnxruntime: argmax on >= 95 % of windows; returns the max difference."""
    from edgeflow.ir.reference import logits

    ours, theirs = logits(graph, xs), onnxruntime_logits(path, xs)
    agree = float((ours.argmax(1) == theirs.argmax(1)).mean())
    diff = float(np.abs(ours - theirs).max())
    print(f"{name}: argmax agreement {agree:.3f} on {len(xs)} windows, max |logit - onnxruntime| {diff:.3g}")
    assert agree >= 0.95, (name, agree, diff)
    return diff
