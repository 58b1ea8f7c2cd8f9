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


class Residual(nn.Module):
    """Flatten, x + ReLU(Linear(x)), Linear: an Add of two activations (add_requant has no zero points)."""

    def __init__(self, n: int = 32, classes: int = 4):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(n, n), nn.Linear(n, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        return self.fc2(x + torch.relu(self.fc1(x)))


class EEGNet(nn.Module):
    """EEGNet-style: temporal Conv2d (padded), BatchNorm, depthwise spatial Conv2d (groups), BatchNorm, ELU,
    AveragePool, Flatten, Linear (torch's export folds each BatchNorm into its Conv). Input (B, 1, channels,
    samples)."""

    def __init__(self, channels: int = 8, samples: int = 64, f1: int = 4, d: int = 2, classes: int = 3):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, f1, (1, 9), padding=(0, 4), bias=False), nn.BatchNorm2d(f1),
                                 nn.Conv2d(f1, f1 * d, (channels, 1), groups=f1, bias=False), nn.BatchNorm2d(f1 * d),
                                 nn.ELU(), nn.AvgPool2d((1, 4)), nn.Flatten(),
                                 nn.Linear(f1 * d * (samples // 4), classes))
        with torch.no_grad():     # BatchNorm statistics that are not the identity (the export folds them)
            for bn in (self.net[1], self.net[3]):
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Attention(nn.Module):
    """Tokens (samples as tokens of the channels): Linear embedding, one attention head (Linear q / k / v, q.kᵀ
    / sqrt(d), Softmax, p.v), residual Add, LayerNorm, mean over tokens, Linear head. Input (B, channels, samples)."""

    def __init__(self, c: int = 4, d: int = 8, classes: int = 4):
        super().__init__()
        self.embed, self.q, self.k, self.v = nn.Linear(c, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.norm, self.head, self.d = nn.LayerNorm(d), nn.Linear(d, classes), d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.transpose(1, 2))
        a = torch.softmax(self.q(h) @ self.k(h).transpose(1, 2) / self.d ** 0.5, dim=-1)
        return self.head(self.norm(h + a @ self.v(h)).mean(1))


class MultiHead(nn.Module):
    """Two-head attention as plain torch writes it: one packed q/k/v Linear split in three, heads by reshape +
    transpose, batched q.kᵀ / sqrt(dh), Softmax, p.v, heads merged back, residual, mean over tokens, Linear."""

    def __init__(self, c: int = 4, d: int = 8, heads: int = 2, classes: int = 4):
        super().__init__()
        self.embed, self.qkv, self.head = nn.Linear(c, d), nn.Linear(d, 3 * d), nn.Linear(d, classes)
        self.h, self.d = heads, d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(x.transpose(1, 2))
        b, t, _ = z.shape
        q, k, v = (a.reshape(b, t, self.h, self.d // self.h).transpose(1, 2) for a in self.qkv(z).split(self.d, -1))
        a = torch.softmax(q @ k.transpose(-1, -2) / (self.d // self.h) ** 0.5, dim=-1) @ v
        return self.head((z + a.transpose(1, 2).reshape(b, t, self.d)).mean(1))


class Gated(nn.Module):
    """Flatten, h = Linear(x), g = Sigmoid(Linear(x)), Concat([h * g, h]), Linear: a Mul of two activations and a
    Concat of inputs with their own scales and zero points."""

    def __init__(self, n: int = 32, hidden: int = 12, classes: int = 4):
        super().__init__()
        self.h, self.g, self.head = nn.Linear(n, hidden), nn.Linear(n, hidden), nn.Linear(2 * hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        h = self.h(x)
        return self.head(torch.cat([h * torch.sigmoid(self.g(x)), h], dim=1))


class CausalConv(nn.Module):
    """Depthwise causal Conv1d (padding K-1, cut to the input's length: a Slice), ReLU, Flatten, Linear; with
    asymmetric activations onnxruntime drops the ReLU into the quantizer after the Slice's (two in a row)."""

    def __init__(self, c: int = 4, k: int = 3, t: int = 8, classes: int = 4):
        super().__init__()
        self.conv, self.head = nn.Conv1d(c, c, k, groups=c, padding=k - 1), nn.Linear(c * t, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(torch.relu(self.conv(x)[..., :x.shape[-1]]), 1))


SHAPES = {"mlp": (4, 8), "cnn1d": (4, 32), "res": (4, 8), "eegnet": (1, 8, 64), "attn": (4, 8), "gate": (4, 8),
          "causal": (4, 8), "mh": (4, 8)}


@dataclasses.dataclass(frozen=True)
class OrtConfig:
    family: str                # mlp | cnn1d | res | eegnet | attn | gate | causal | mh
    pre: bool                  # quant_pre_process first
    per_channel: bool
    act: str                   # QUInt8 | QInt8
    symmetric: bool            # extra_options ActivationSymmetric
    pad: int = 1               # cnn1d: padding of the first conv
    weights: str = "QInt8"     # weight_type (QUInt8: asymmetric weights, refused)
    opset: int = 0             # export opset (0: torch's default; < 17 decomposes LayerNorm)

    @property
    def id(self) -> str:
        pad = (f"-pad{self.pad}" if self.pad != 1 else "") + ("-w" + self.weights.lower() if self.weights != "QInt8"
                                                               else "") + (f"-op{self.opset}" if self.opset else "")
        return (f"{self.family}-{'pre' if self.pre else 'raw'}-{'pc' if self.per_channel else 'pt'}-"
                f"{self.act.lower()}-{'sym' if self.symmetric else 'asym'}{pad}")


def _build(cfg: OrtConfig) -> nn.Module:
    torch.manual_seed(0)
    return {"mlp": MLP, "cnn1d": lambda: CNN1d(pad=cfg.pad), "res": Residual, "eegnet": EEGNet,
            "attn": Attention, "gate": Gated, "causal": CausalConv,
            "mh": MultiHead}[cfg.family]().eval()


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
                      dynamo=False, **({"opset_version": cfg.opset} if cfg.opset else {}))
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
                    activation_type=getattr(QuantType, cfg.act), weight_type=getattr(QuantType, cfg.weights),
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


def output_limits(path: Path) -> tuple[float, float, float]:
    """(lowest, highest, scale) of the float logits onnxruntime can answer: its output quantizer saturates there
    (edgeflow keeps the int32 accumulator, unsaturated)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    dq = next(n for n in m.graph.node if n.output[0] == m.graph.output[0].name)
    s, z = float(init[dq.input[1]]), init[dq.input[2]]
    info = np.iinfo(z.dtype)
    return (info.min - int(z)) * s, (info.max - int(z)) * s, s


#: configurations compiled by the tests (the symmetric/asymmetric, per-tensor/per-channel, uint8/int8 and
#: pre-processed/raw axes each covered at least twice; the CNN's first conv is padded: padding reads the zero point).
CONFIGS = (
    OrtConfig("mlp", False, False, "QUInt8", False),
    OrtConfig("mlp", True, True, "QUInt8", False),
    OrtConfig("mlp", True, True, "QInt8", False),
    OrtConfig("mlp", False, True, "QInt8", True),
    OrtConfig("mlp", True, False, "QUInt8", True),
    OrtConfig("cnn1d", True, True, "QUInt8", True),
    OrtConfig("cnn1d", False, False, "QInt8", True),
    OrtConfig("cnn1d", True, True, "QUInt8", False),
    OrtConfig("cnn1d", False, False, "QInt8", False),
    OrtConfig("res", True, True, "QUInt8", True),
    OrtConfig("eegnet", True, True, "QUInt8", False),
    OrtConfig("eegnet", False, False, "QInt8", True),
    OrtConfig("eegnet", False, True, "QInt8", False),
    OrtConfig("attn", True, True, "QUInt8", False),
    OrtConfig("attn", False, False, "QInt8", False),
    OrtConfig("attn", False, True, "QUInt8", True),
    OrtConfig("attn", True, False, "QInt8", True),
    OrtConfig("res", True, True, "QUInt8", False),
    OrtConfig("gate", True, True, "QUInt8", False),
    OrtConfig("gate", False, False, "QInt8", True),
    OrtConfig("causal", True, True, "QUInt8", False),
    OrtConfig("mh", True, True, "QUInt8", False),
    OrtConfig("mh", False, False, "QInt8", True),
)
#: configurations refused in one line naming the node, with the message's core and hint: asymmetric (uint8)
#: weights; a LayerNorm decomposed by an old opset, which onnxruntime quantizes piece by piece.
REFUSED = ((OrtConfig("mlp", True, False, "QUInt8", False, weights="QUInt8"),
            "are not int8 codes (asymmetric weights", "weight_type=QuantType.QInt8"),
           (OrtConfig("attn", True, True, "QUInt8", False, opset=14), "ReduceMean must average tokens",
            "export with opset_version >= 17"))

#: configuration index -> the earlier configuration whose integer graph has the same structure (graph_structure:
#: the same ops, attributes and activation zero-point presence; per-tensor scales become per-row arrays like
#: per-channel ones, uint8 codes int8 codes with a shifted zero point): its C builds would repeat the twin's code
#: path with other constants (eegnet 12 even lowers to exactly 10's graph), so tests/c/test_ort_qdq.py builds C
#: only for the others (C_BUILT) and checks each twin's structure, lowering and onnxruntime agreement.
TWINS = {1: 0, 2: 0, 4: 3, 6: 5, 8: 7, 12: 10}
C_BUILT = tuple(c for i, c in enumerate(CONFIGS) if i not in TWINS)


def graph_structure(graph) -> list[tuple]:
    """What the generated C's code path depends on: each node's op, its attributes (integers as zero / non-zero,
    lists as they are), and its activation inputs' bits and whether their zero point is non-zero."""
    def attr(v):
        return (v != 0) if isinstance(v, int | np.integer) else tuple(v) if isinstance(v, list | tuple) else type(v)

    t = graph.tensors
    return [(n.op, sorted((k, attr(v)) for k, v in n.attrs.items()),
             [(t[i].bits, t[i].zero_point != 0) for i in n.inputs if i in t and t[i].data is None])
            for n in graph.nodes]
