"""Quantization-aware training from a float checkpoint, the scan's integer gap, and weight-size accounting."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeflow.cards import ModelCard
from edgeflow.quant.layers import QuantPolicy


@dataclass
class QuantConfig:
    card: ModelCard
    float_ckpt: Path
    policy: QuantPolicy
    method: str  # "qat" | "ptq"
    out: Path
    epochs: int = 4
    lr: float = 5e-4
    batch_size: int = 32
    calib_windows: int = 256
    seed: int = 0
    resume: bool = False
    progress: bool = True
    max_steps: int | None = None


def run_quantize(cfg: QuantConfig, splits=None) -> dict:
    """PTQ (calibrate only) or QAT (calibrate, then fine-tune); writes quant.pt and quant.json to cfg.out."""
    from edgeflow.quant.ptq import calibrate, calibrate_scan, from_float
    from edgeflow.train.common import TrainConfig, predict_proba, seed_everything
    from edgeflow.train.metrics import binary_metrics

    t0 = time.time()
    seed_everything(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    splits = splits or load_splits(cfg.card, cfg.seed)
    train, val, test = splits["train"], splits["val"], splits["test"]
    model = from_float(cfg.card, cfg.policy, cfg.float_ckpt)
    calib = train.x[np.random.default_rng(cfg.seed).permutation(len(train.x))[: cfg.calib_windows]]
    calibrate(model, calib)
    history: list[dict] = []
    if cfg.method == "qat":
        from edgeflow.train.finetune import finetune

        tcfg = TrainConfig(card=cfg.card, corpus=Path("."), out=cfg.out, pretrain_epochs=0,
                           finetune_epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                           max_steps=cfg.max_steps, progress=cfg.progress)
        start, optim_state, history = _resume(model, cfg)
        model, history = finetune(model, (train.x, train.y), (val.x, val.y), tcfg, _single(), start_epoch=start,
                                  optim_state=optim_state, history=history)
        calibrate_scan(model, calib[:64])  # state scales follow the fine-tuned weights
    model.eval()
    metrics = {
        "card": cfg.card.name, "method": cfg.method, "weight_bits": cfg.policy.weight_bits,
        "act_bits": cfg.policy.act_bits, "overrides": cfg.policy.overrides,
        "test": binary_metrics(test.y, predict_proba(model, test.x)),
        "val": binary_metrics(val.y, predict_proba(model, val.x)),
        "qat_history": history,
        "scan_gap": scan_gap(model, test.x[:8]),
        "weights": weight_bytes(model),
        "seconds": round(time.time() - t0, 1),
        "input_scale": model.input_scale(),
    }
    save_quant(cfg.out / "quant.pt", model, cfg, metrics)
    (cfg.out / "quant.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _resume(model: nn.Module, cfg: QuantConfig) -> tuple[int, dict | None, list[dict]]:
    """(next epoch, optimizer state, history) from the run's last QAT checkpoint when --resume is given."""
    from edgeflow.errors import CardError
    from edgeflow.train.checkpoint import read_checkpoint

    last = cfg.out / "finetune-last.pt"
    if not (cfg.resume and last.exists()):
        return 0, None, []
    state = read_checkpoint(last)
    res = model.load_state_dict(state["model"], strict=False)
    bad = [k for k in [*res.missing_keys, *res.unexpected_keys] if "quant" not in k]
    if bad:
        raise CardError(f"{last}: cannot resume, tensor '{bad[0]}' does not fit this quantization")
    return int(state["epoch"]) + 1, state["optimizer"], state["metrics"].get("history", [])


def _single():
    from edgeflow.train.common import Dist

    return Dist()


def load_splits(card: ModelCard, seed: int = 0, corpus: Path | None = None):
    from edgeflow.data.dataset import ensure_default_corpus, load_corpus, split_by_subject
    from edgeflow.data.eeg import Preprocess

    corpus = corpus or ensure_default_corpus()
    return split_by_subject(load_corpus(corpus, Preprocess.from_card(card)), seed=seed)


def save_quant(path: Path, model: nn.Module, cfg: QuantConfig, metrics: dict) -> None:
    from edgeflow.train.checkpoint import save_checkpoint

    save_checkpoint(path, model, cfg.card, f"quant-{cfg.method}", 0, None, metrics,
                    extra={"weight_bits": cfg.policy.weight_bits, "act_bits": cfg.policy.act_bits,
                           "overrides": cfg.policy.overrides, "method": cfg.method})


def load_quant(card: ModelCard, path: Path) -> tuple[nn.Module, dict]:
    """Rebuild a quantized model from quant.pt (policy read from the checkpoint)."""
    from edgeflow.errors import CardError
    from edgeflow.quant.ptq import build_quant_model
    from edgeflow.train.checkpoint import read_checkpoint

    state = read_checkpoint(path)
    extra = state.get("extra", {})
    if "weight_bits" not in extra:
        raise CardError(f"{path} is not a quantized checkpoint (run `edgeflow quantize` first)")
    if state.get("card") != card.name:
        raise CardError(f"{path} was quantized for card '{state.get('card')}', not '{card.name}'")
    policy = QuantPolicy(extra["weight_bits"], extra["act_bits"], dict(extra.get("overrides", {})))
    model = build_quant_model(card, policy)
    # activation-scale entries appear in a brevitas state dict only once calibrated, so they load as
    # unexpected keys; every other tensor must match by name
    res = model.load_state_dict(state["model"], strict=False)
    bad = [k for k in [*res.missing_keys, *res.unexpected_keys] if "quant" not in k]
    if bad:
        raise CardError(f"{path}: checkpoint does not fit the card: tensor '{bad[0]}' missing or unexpected")
    model.eval()
    return model, state


@torch.no_grad()
def scan_gap(model: nn.Module, x: np.ndarray) -> dict:
    """Largest gap, over every scan, between the QAT float scan (then its output quantizer) and the integer
    scan of edgeflow.quant.intscan on the same int8 codes; in LSB of the scan output."""
    from edgeflow.quant.intscan import ScanQuant, float_scan_from_codes, int_scan, scan_error_report
    from edgeflow.quant.ptq import scan_inputs
    from edgeflow.quant.qfemba import act_scale

    worst = {"max_abs_lsb": 0.0, "mean_abs_lsb": 0.0, "code_mismatch": 0.0, "frac_gt1_lsb": 0.0}
    if not model.mixers:  # no selective scan (transformer): no gap
        return worst
    for mixer, (u, delta, B, C) in zip(model.mixers, scan_inputs(model, x), strict=True):
        s = {k: act_scale(getattr(mixer, f"q_{k}")) for k in ("u", "delta", "B", "C", "y")}
        q = ScanQuant.build(s["u"], s["delta"], s["B"], s["C"], (-torch.exp(mixer.A_log)).double().numpy(),
                            mixer.D.double().numpy(), mixer.state_scale.double().numpy(), s["y"])
        consts = q.constants()
        codes = [np.rint(a / s[k]).astype(np.int64) for a, k in ((u, "u"), (delta, "delta"), (B, "B"), (C, "C"))]
        for b in range(len(u)):
            qy = int_scan(codes[0][b], codes[1][b], codes[2][b], codes[3][b], consts)
            yf = float_scan_from_codes(codes[0][b], codes[1][b], codes[2][b], codes[3][b], q)
            r = scan_error_report(qy, yf, s["y"])
            for k in worst:
                worst[k] = max(worst[k], r[k])
    return worst


def weight_bytes(model: nn.Module) -> dict:
    """Device weight bytes: rows packed to whole bytes at their bit width, + int32 bias and requant per row."""
    per_bits: dict[int, dict[str, int]] = {}
    other = 0
    quantized = set()
    for name, mod in model.named_modules():
        if hasattr(mod, "weight_quant") and hasattr(mod, "weight"):
            bits = int(mod.quant_weight().bit_width)
            w = mod.weight
            rows, per_row = w.shape[0], int(np.prod(w.shape[1:]))
            entry = per_bits.setdefault(bits, {"params": 0, "bytes": 0})
            entry["params"] += w.numel()
            entry["bytes"] += rows * ((per_row * bits + 7) // 8) + rows * 8  # packed rows + m, shift
            if getattr(mod, "bias", None) is not None:
                entry["bytes"] += 4 * rows
            quantized.add(f"{name}.weight")
            quantized.add(f"{name}.bias")
    for name, p in model.named_parameters():
        if name not in quantized and "quant" not in name:
            other += p.numel()
    total = sum(e["bytes"] for e in per_bits.values()) + 2 * other  # the rest as int16 constants
    return {"by_bits": {str(k): v for k, v in sorted(per_bits.items())}, "other_params": other,
            "total_bytes": total}
