"""Float PyTorch models built by the tests, exported (dynamo=False), optionally `quant_pre_process`ed and quantized
with onnxruntime `quantize_static` (QDQ) over random calibration windows; one export per configuration and session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn


class MLP(nn.Module):
    """Flatten, Linear, ReLU (removed by ORT: the quantizer's range), Linear, Tanh-free head."""

    def __init__(self, c: int = 4, t: int = 8, hidden: int = 16, classes: int = 4):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * t, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN1d(nn.Module):
    """Conv1d (stride 2, padded) + ReLU, Conv1d + ReLU, GlobalAveragePool, Flatten, Linear."""

    def __init__(self, c: int = 4, classes: int = 3, pad: int = 1):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(c, 8, 5, stride=2, padding=pad), nn.ReLU(), nn.Conv1d(8, 8, 3), nn.ReLU(),
                                 nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


SHAPES = {"mlp": (4, 8), "cnn1d": (4, 32)}


@dataclasses.dataclass(frozen=True)
class OrtConfig:
    family: str                # mlp | cnn1d
    pre: bool                  # quant_pre_process first
    per_channel: bool
    act: str                   # QUInt8 | QInt8
    symmetric: bool            # extra_options ActivationSymmetric
    pad: int = 1               # cnn1d: padding of the first conv

    @property
    def id(self) -> str:
        pad = f"-pad{self.pad}" if self.pad != 1 else ""
        return (f"{self.family}-{'pre' if self.pre else 'raw'}-{'pc' if self.per_channel else 'pt'}-"
                f"{self.act.lower()}-{'sym' if self.symmetric else 'asym'}{pad}")


def _build(cfg: OrtConfig) -> nn.Module:
    torch.manual_seed(0)
    return (MLP() if cfg.family == "mlp" else CNN1d(pad=cfg.pad)).eval()


def windows(shape: tuple[int, ...], n: int = 64, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


_CACHE: dict[OrtConfig, Path] = {}


def ort_onnx(tmp_path_factory, cfg: OrtConfig) -> Path:
    """The QDQ ONNX file of `cfg` (exported and quantized once per test session)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if cfg in _CACHE:
        return _CACHE[cfg]
    d = tmp_path_factory.mktemp(f"ort-{cfg.id}")
    shape = SHAPES[cfg.family]
    f32 = d / "float.onnx"
    torch.onnx.export(_build(cfg), torch.zeros(1, *shape), str(f32), input_names=["x"], output_names=["logits"],
                      dynamo=False)
    src = f32
    if cfg.pre:
        src = d / "pre.onnx"
        quant_pre_process(str(f32), str(src))
    calib = iter([{"x": w[None]} for w in windows(shape, n=32, seed=1)])

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(calib, None)

    out = d / "qdq.onnx"
    quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=cfg.per_channel,
                    activation_type=getattr(QuantType, cfg.act), weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": cfg.symmetric})
    _CACHE[cfg] = out
    return out


def onnxruntime_logits(path: Path, xs: np.ndarray) -> np.ndarray:
    """Dequantised logits of onnxruntime running the QDQ model (optimizations off), one window at a time."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x[None]})[0] for x in xs])


#: configurations compiled by the tests (the symmetric/asymmetric, per-tensor/per-channel, uint8/int8 and
#: pre-processed/raw axes each covered at least twice, CNNs with symmetric activations: padding reads zero codes).
CONFIGS = (
    OrtConfig("mlp", False, False, "QUInt8", False),
    OrtConfig("mlp", True, True, "QUInt8", False),
    OrtConfig("mlp", True, True, "QInt8", False),
    OrtConfig("mlp", False, True, "QInt8", True),
    OrtConfig("mlp", True, False, "QUInt8", True),
    OrtConfig("cnn1d", True, True, "QUInt8", True),
    OrtConfig("cnn1d", False, False, "QInt8", True),
)
#: configurations refused in one line: an asymmetric activation into a padded Conv, and out of a Conv.
REFUSED = (
    (OrtConfig("cnn1d", True, True, "QUInt8", False), "a padded Conv cannot carry its input's zero point"),
    (OrtConfig("cnn1d", True, True, "QInt8", False, pad=0), "(conv): output '"),
)
