"""Shared training plumbing: config, torchrun/DDP setup, data loaders, progress bars, evaluation."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from edgeflow.cards import ModelCard


@dataclass
class TrainConfig:
    card: ModelCard
    corpus: Path
    out: Path
    pretrain_epochs: int
    finetune_epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    max_steps: int | None = None  # per stage; for smoke tests and the DDP test
    resume: bool = False
    progress: bool = True
    lowpass_hz: float = 30.0


@dataclass(frozen=True)
class Dist:
    """Process-group facts; world 1 when not launched by torchrun."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup_dist() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")  # CPU training; NCCL is the GPU choice
    return Dist(rank=dist.get_rank(), world=dist.get_world_size())


def teardown_dist(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def mean_across(d: Dist, value: float) -> float:
    if not d.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item() / d.world)


def make_loader(tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool, d: Dist,
                seed: int) -> tuple[DataLoader, DistributedSampler | None]:
    ds = TensorDataset(*tensors)
    sampler = DistributedSampler(ds, num_replicas=d.world, rank=d.rank, shuffle=shuffle, seed=seed) \
        if d.enabled else None
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                        generator=gen, drop_last=False)
    return loader, sampler


@contextmanager
def progress_bar(enabled: bool):
    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
    with Progress(*cols, disable=not enabled, transient=False) as p:
        yield p


def train_epoch(net: nn.Module, loader: DataLoader, loss_of, opt: torch.optim.Optimizer, bar: Progress, label: str,
                steps: int, max_steps: int | None) -> tuple[float, int, bool]:
    """One epoch of `loss_of(batch) -> loss` steps; returns (mean loss, total steps, hit max_steps)."""
    task = bar.add_task(label, total=len(loader), info="")
    net.train()
    total, count = 0.0, 0
    for batch in loader:
        loss = loss_of(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total, count, steps = total + float(loss.detach()), count + 1, steps + 1
        bar.update(task, advance=1, info=f"loss {total / count:.4f}")
        if max_steps is not None and steps >= max_steps:
            return total / count, steps, True
    return total / max(count, 1), steps, False


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def predict_proba(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Positive-class probability for each window (binary task; class 1 = abnormal)."""
    model.eval()
    x = torch.as_tensor(x)
    out = []
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        out.append(torch.softmax(logits, dim=-1)[:, 1].cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
