"""Pre-training: masked patch reconstruction whose target is the low-pass-filtered signal."""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import butter, sosfiltfilt
from torch import nn

from edgeflow.train.checkpoint import save_checkpoint
from edgeflow.train.common import Dist, TrainConfig, make_loader, mean_across, progress_bar, train_epoch, unwrap


def lowpass(x: np.ndarray, sfreq: float, cutoff_hz: float) -> np.ndarray:
    """Zero-phase 4th-order Butterworth low-pass along time: the physiologically aware target."""
    sos = butter(4, cutoff_hz, btype="low", fs=sfreq, output="sos")
    return sosfiltfilt(sos, x, axis=-1).astype(np.float32)


def random_mask(batch: int, n_tokens: int, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """Boolean (batch, n_tokens) mask with exactly round(ratio * n_tokens) masked tokens per window."""
    k = max(1, int(round(ratio * n_tokens)))
    scores = torch.rand(batch, n_tokens, generator=gen)
    idx = scores.argsort(dim=1)[:, :k]
    mask = torch.zeros(batch, n_tokens, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    return mask


class MaskedReconstruction(nn.Module):
    """Wraps a model so DDP sees one forward: masked tokens' low-passed samples, mean squared error."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pred = self.model.reconstruct(x, mask)
        tgt = self.model.patchify(target)
        err = ((pred - tgt) ** 2).mean(dim=-1)
        return (err * mask).sum() / mask.sum().clamp(min=1)


def pretrain(model: nn.Module, x_train: np.ndarray, cfg: TrainConfig, d: Dist, start_epoch: int = 0,
             optim_state: dict | None = None) -> list[float]:
    """Run the pre-training epochs; returns the mean loss of each epoch (all ranks averaged)."""
    card = cfg.card
    target = lowpass(x_train, card.input.sample_rate, cfg.lowpass_hz)
    objective = MaskedReconstruction(model)
    if d.enabled:
        objective = nn.parallel.DistributedDataParallel(objective, find_unused_parameters=True)
    opt = torch.optim.AdamW(objective.parameters(), lr=cfg.lr, weight_decay=0.01)
    if optim_state:
        opt.load_state_dict(optim_state)
    loader, sampler = make_loader((torch.from_numpy(x_train), torch.from_numpy(target)), cfg.batch_size,
                                  True, d, cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 17 * d.rank)
    losses: list[float] = []
    steps = 0

    def loss_of(batch):
        xb, tb = batch
        return objective(xb, tb, random_mask(len(xb), card.n_tokens, card.train.mask_ratio, gen))

    with progress_bar(cfg.progress and d.is_main) as bar:
        for epoch in range(start_epoch, cfg.pretrain_epochs):
            if sampler is not None:
                sampler.set_epoch(epoch)
            mean, steps, done = train_epoch(objective, loader, loss_of, opt, bar,
                                            f"pretrain {epoch + 1}/{cfg.pretrain_epochs}", steps, cfg.max_steps)
            losses.append(mean_across(d, mean))
            if d.is_main:
                save_checkpoint(cfg.out / "pretrain-last.pt", unwrap(objective).model, card, "pretrain",
                                epoch, opt, {"pretrain_loss": losses})
            if done:
                break
    return losses
