"""Small CNNs the tests build themselves (brevitas QAT layers, calibrated on random data, QCDQ export, cached)."""

from __future__ import annotations

from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import torch
from brevitas.export import export_onnx_qcdq
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int32Bias
from torch import nn


def _wq(bits: int) -> dict:
    return {"weight_quant": Int8WeightPerChannelFloat, "weight_bit_width": bits, "bias_quant": Int32Bias}


def _q(rqt: bool = False) -> qnn.QuantIdentity:
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=rqt)


class EEGNetTiny(nn.Module):
    """EEGNet-style: temporal Conv2d (padding), depthwise spatial Conv2d (groups), BatchNorm, ELU, AveragePool,
    Flatten, Linear. Input (B, 1, channels, samples)."""

    def __init__(self, bits: int, channels: int = 8, samples: int = 64, f1: int = 4, d: int = 2, classes: int = 3):
        super().__init__()
        self.conv1 = qnn.QuantConv2d(1, f1, (1, 9), padding=(0, 4), input_quant=Int8ActPerTensorFloat, **_wq(bits))
        self.bn1 = nn.BatchNorm2d(f1)
        self.conv2 = qnn.QuantConv2d(f1, f1 * d, (channels, 1), groups=f1, input_quant=Int8ActPerTensorFloat,
                                     **_wq(bits))
        self.bn2 = nn.BatchNorm2d(f1 * d)
        self.q2 = _q()
        self.elu = nn.ELU()
        self.q3 = _q()
        self.pool = nn.AvgPool2d((1, 4))
        self.q4 = _q(rqt=True)
        self.fc = qnn.QuantLinear(f1 * d * (samples // 4), classes, bias=True, **_wq(bits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        x = self.q4(self.pool(self.q3(self.elu(self.q2(x)))))
        return self.fc(torch.flatten(x, 1))


class CNN1dTiny(nn.Module):
    """1-D CNN: Conv1d (padding, stride), ReLU, grouped dilated Conv1d, GlobalAveragePool, Gemm.
    Input (B, channels, samples)."""

    def __init__(self, bits: int, channels: int = 4, classes: int = 3):
        super().__init__()
        self.conv1 = qnn.QuantConv1d(channels, 8, 7, stride=2, padding=3, input_quant=Int8ActPerTensorFloat,
                                     **_wq(bits))
        self.relu1 = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv1d(8, 8, 5, padding=4, dilation=2, groups=2, **_wq(bits))
        self.relu2 = qnn.QuantReLU()
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.q3 = _q(rqt=True)
        self.fc = qnn.QuantLinear(8, classes, bias=True, **_wq(bits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(torch.flatten(self.q3(self.pool(x)), 1))


class CNN2dZoo(nn.Module):
    """The other CNN pieces: strided padded Conv2d + BatchNorm (negative gammas) + ReLU6 (Clip), MaxPool with
    padding, Tanh, grouped dilated Conv2d, Sigmoid, AveragePool without counting padding, Linear + BatchNorm1d +
    ReLU, Linear. Input (B, 1, 6, 32)."""

    def __init__(self, bits: int, classes: int = 3):
        super().__init__()
        self.conv1 = qnn.QuantConv2d(1, 6, (3, 5), stride=(1, 2), padding=(1, 2), input_quant=Int8ActPerTensorFloat,
                                     **_wq(bits))
        self.bn1 = nn.BatchNorm2d(6)
        self.q1, self.q2, self.q3 = _q(), _q(), _q(rqt=True)
        self.pool1 = nn.MaxPool2d(2, stride=2, padding=(1, 0))
        self.conv2 = qnn.QuantConv2d(6, 6, 3, padding=(2, 1), dilation=(2, 1), groups=3, **_wq(bits))
        self.q4, self.q5, self.q6 = _q(), _q(), _q(rqt=True)
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.fc1 = qnn.QuantLinear(48, 16, bias=True, **_wq(bits))
        self.bn3 = nn.BatchNorm1d(16)
        self.q7 = _q(rqt=True)
        self.fc2 = qnn.QuantLinear(16, classes, bias=True, **_wq(bits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.q2(self.pool1(self.q1(nn.functional.relu6(self.bn1(self.conv1(x))))))
        x = self.q5(torch.sigmoid(self.q4(self.conv2(self.q3(torch.tanh(x))))))
        x = torch.flatten(self.q6(self.pool2(x)), 1)
        return self.fc2(self.q7(torch.relu(self.bn3(self.fc1(x)))))


def export_model(model: nn.Module, shape: tuple[int, ...], path: Path, seed: int = 0) -> Path:
    """Calibrate `model` on random windows (BatchNorm statistics and activation scales from a few train-mode
    forward passes), then export QCDQ ONNX (dynamo=False: quantized biases)."""
    torch.manual_seed(seed)
    x = torch.randn(32, *shape)
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(x)
    for m in model.modules():   # non-trivial BatchNorm affine parameters
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
            m.weight.data[::3] *= -1                 # negative gammas: folded by negating the channel
    model.eval()
    export_onnx_qcdq(model, args=x[:1], export_path=str(path), dynamo=False,
                     keep_initializers_as_inputs=False)
    return path


#: family -> (model class, input shape without batch)
FAMILIES = {"eegnet": (EEGNetTiny, (1, 8, 64)), "cnn1d": (CNN1dTiny, (4, 64)), "zoo": (CNN2dZoo, (1, 6, 32))}
_EXPORTS: dict[tuple[str, int], Path] = {}


def cnn_onnx(tmp_path_factory, family: str, bits: int) -> Path:
    """The exported ONNX of `family` at `bits`-bit weights, built once per test session."""
    key = (family, bits)
    if key not in _EXPORTS:
        cls, shape = FAMILIES[family]
        torch.manual_seed(bits)
        folder = tmp_path_factory.mktemp(f"{family}{bits}")
        _EXPORTS[key] = export_model(cls(bits), shape, folder / f"{family}-w{bits}.onnx", seed=bits)
    return _EXPORTS[key]


def windows(shape: tuple[int, ...], n: int = 64, seed: int = 5) -> np.ndarray:
    """n random float windows of the model's input shape."""
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def onnxruntime_logits(path: Path, xs: np.ndarray) -> np.ndarray:
    """Float logits of onnxruntime (optimizations off: the strict oracle) one window at a time."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[None]})[0] for x in xs])
