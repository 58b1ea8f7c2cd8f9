"""A user's own non-EEG model, made the way a user makes one: a small brevitas network on 3-axis accelerometer
windows (3 channels x 100 samples, the shipped accel-har card), calibrated, exported with
`export_onnx_qcdq(..., dynamo=False)`; and accelerometer recordings as CSV and NPY files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHANNELS, RATE, WINDOW = 3, 50.0, 100   # the accel-har card: x, y, z at 50 Hz, 2 s windows
N_CLASSES = 4


def har_model(seed: int = 0, bits: int = 8):
    """Per-axis features (a Linear over each axis' 100 samples), SiLU, the mean over the axes, a class head."""
    import brevitas.nn as qnn
    import torch
    from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int32Bias
    from torch import nn

    def qlinear(n_in: int, n_out: int) -> qnn.QuantLinear:
        return qnn.QuantLinear(n_in, n_out, bias=True, weight_quant=Int8WeightPerChannelFloat, weight_bit_width=bits,
                               input_quant=Int8ActPerTensorFloat, bias_quant=Int32Bias, return_quant_tensor=False)

    class Har(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = qlinear(WINDOW, 16)
            self.q_feat = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)
            self.q_act = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)
            self.head = qlinear(16, N_CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:   # x: (batch, 3 axes, 100 samples)
            h = self.q_feat(self.features(x))          # its input_quant is the input's
            h = self.q_act(nn.functional.silu(h))
            return self.head(h.mean(dim=1))

    torch.manual_seed(seed)
    return Har()


def accel_signal(seconds: float, seed: int = 0) -> np.ndarray:
    """(samples, 3) m/s^2: gravity on z, a walking rhythm on every axis, sensor noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * RATE))) / RATE
    step = np.stack([np.sin(2 * np.pi * 1.8 * t + p) for p in (0.0, 1.0, 2.0)], axis=1) * [2.5, 1.5, 3.0]
    return step + [0.0, 0.0, 9.81] + 0.4 * rng.standard_normal((len(t), 3))


def export_har(folder: Path, name: str = "har", seed: int = 0, bits: int = 8) -> Path:
    """The model calibrated on accelerometer windows (as the accel-har card scales them) and exported."""
    import torch
    from brevitas.export import export_onnx_qcdq

    model = har_model(seed, bits)
    sig = accel_signal(40.0, seed + 1) * 0.10197                       # the card's scale: m/s^2 -> g
    x = np.stack([sig[k:k + WINDOW].T for k in range(0, len(sig) - WINDOW, 25)]).astype(np.float32)
    model.train()
    with torch.no_grad():
        for k in range(0, len(x), 8):                                    # calibrate the activation scales
            model(torch.from_numpy(x[k:k + 8]))
    model.eval()
    path = Path(folder) / f"{name}.onnx"
    export_onnx_qcdq(model, args=torch.from_numpy(x[:1]), export_path=str(path), dynamo=False)
    return path


def write_csv(path: Path, sig: np.ndarray, header: str | None = "x,y,z") -> Path:
    lines = ([header] if header else []) + [",".join(f"{v:.5f}" for v in row) for row in sig]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)
