"""Post-training quantization: build the quantized model from float weights and calibrate it on N windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from brevitas.graph.calibrate import calibration_mode
from torch import nn

from edgeflow.cards import ModelCard
from edgeflow.errors import CardError
from edgeflow.quant.layers import QuantPolicy

QUANTIZABLE = ("femba", "transformer")


def check_quantizable(card: ModelCard) -> None:
    if card.kind not in QUANTIZABLE:
        raise CardError(f"{card.name}: quantization of model kind '{card.kind}' is not supported yet "
                        f"(supported: {', '.join(QUANTIZABLE)})")


def build_quant_model(card: ModelCard, policy: QuantPolicy) -> nn.Module:
    """The card's quantization-aware model (QuantFEMBA or QuantEEGTransformer)."""
    from edgeflow.quant.qfemba import QuantFEMBA
    from edgeflow.quant.qtransformer import QuantEEGTransformer

    check_quantizable(card)
    return QuantEEGTransformer(card, policy) if card.kind == "transformer" else QuantFEMBA(card, policy)


def from_float(card: ModelCard, policy: QuantPolicy, float_ckpt: Path) -> nn.Module:
    """Quantized model holding the float checkpoint's weights (activation scales not yet calibrated)."""
    from edgeflow.quant.qfemba import load_float_weights
    from edgeflow.train.checkpoint import read_checkpoint

    state = read_checkpoint(float_ckpt)
    if state.get("card") not in (None, card.name):
        raise CardError(f"checkpoint {float_ckpt} was trained for card '{state['card']}', not '{card.name}'")
    model = build_quant_model(card, policy)
    load_float_weights(model, state["model"], str(float_ckpt))
    return model


@torch.no_grad()
def calibrate(model: nn.Module, x: np.ndarray, batch_size: int = 32, progress=None) -> None:
    """Set every activation scale from statistics over the calibration windows (brevitas calibration mode),
    then the scan's per-channel state scales."""
    model.eval()
    xt = torch.as_tensor(x)
    with calibration_mode(model):
        for i in range(0, len(xt), batch_size):
            model(xt[i:i + batch_size])
            if progress is not None:
                progress()
    calibrate_scan(model, x[: min(len(x), 64)])


@torch.no_grad()
def calibrate_scan(model: nn.Module, x: np.ndarray) -> None:
    """Per-channel state scale of every scan from the quantized scan inputs on calibration windows."""
    from edgeflow.quant.intscan import calibrate_state_scale

    if not model.mixers:  # no selective scan (transformer)
        return
    for mixer, (u, delta, B, C) in zip(model.mixers, scan_inputs(model, x), strict=True):
        A = (-torch.exp(mixer.A_log)).double().numpy()
        s_h = calibrate_state_scale(u, delta, A, B, C)
        mixer.state_scale.copy_(torch.from_numpy(s_h).float())


@torch.no_grad()
def scan_inputs(model: nn.Module, x: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """(u, delta, B, C) as float64 arrays, one tuple per mixer in `model.mixers` order, for windows x."""
    captured: dict[int, tuple[np.ndarray, ...]] = {}
    hooks = []
    for i, mixer in enumerate(model.mixers):
        def hook(mod, args, out, i=i):
            captured[i] = tuple(t.detach().double().numpy() for t in out[:4])
        orig = mixer.scan_inputs
        hooks.append((mixer, orig))

        def wrapped(h, orig=orig, hook=hook, mixer=mixer):
            out = orig(h)
            hook(mixer, (h,), out)
            return out
        mixer.scan_inputs = wrapped
    try:
        model.eval()
        model(torch.as_tensor(x))
    finally:
        for mixer, _ in hooks:
            del mixer.scan_inputs  # drop the instance attribute: the class method is visible again
    return [captured[i] for i in range(len(hooks))]


def untrained_quant_model(card: ModelCard, bits: int, n_calib: int = 4, seed: int = 1) -> tuple[nn.Module, np.ndarray]:
    """A randomly initialised quantized model of `card`, calibrated on unit-variance random windows (the scale of
    IQR-normalised EEG): for planning and compiling a model whose checkpoint is not at hand (its answers are
    meaningless, its sizes and cycle counts are real). Returns (model, windows)."""
    from edgeflow.nn import build_model
    from edgeflow.quant.layers import QuantPolicy
    from edgeflow.quant.qfemba import load_float_weights

    torch.manual_seed(seed)
    q = build_quant_model(card, QuantPolicy.from_card(card, bits))
    load_float_weights(q, build_model(card).state_dict(), "random init")
    shape = (n_calib, card.input.n_channels, card.input.window_samples)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    calibrate(q, x)
    return q, x
