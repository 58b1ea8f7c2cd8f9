"""Fine-tuning: normal/abnormal classification, best epoch chosen on the validation split."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from edgeflow.train.checkpoint import read_checkpoint, save_checkpoint
from edgeflow.train.common import (
    Dist,
    TrainConfig,
    make_loader,
    mean_across,
    predict_proba,
    progress_bar,
    train_epoch,
    unwrap,
)
from edgeflow.train.metrics import binary_metrics


def finetune(model: nn.Module, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
             cfg: TrainConfig, d: Dist, start_epoch: int = 0, optim_state: dict | None = None,
             history: list[dict] | None = None) -> tuple[nn.Module, list[dict]]:
    """Train the classifier; returns the model holding the best-validation-AUROC weights and the history."""
    # the pre-training-only parameters (mask_token, rec_head) get no gradient here
    net = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if d.enabled else model
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.01)
    if optim_state:
        opt.load_state_dict(optim_state)
    sched = None  # cosine decay on a fresh run; a resumed run keeps the restored learning rate
    if start_epoch == 0:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.finetune_epochs, 1))
    loader, sampler = make_loader((torch.from_numpy(train[0]), torch.from_numpy(train[1])), cfg.batch_size,
                                  True, d, cfg.seed + 1)
    loss_fn = nn.CrossEntropyLoss()
    history = list(history or [])
    best_auc, best_state = -1.0, None
    best_file = cfg.out / "finetune-best.pt"
    if history and best_file.exists():  # resuming: the best epoch so far stays the one to beat
        best_state = read_checkpoint(best_file)["model"]
        best_auc = max(h["val"]["auroc"] for h in history)
    steps = 0
    with progress_bar(cfg.progress and d.is_main) as bar:
        for epoch in range(start_epoch, cfg.finetune_epochs):
            if sampler is not None:
                sampler.set_epoch(epoch)
            mean, steps, done = train_epoch(net, loader, lambda b: loss_fn(net(b[0]), b[1]), opt, bar,
                                            f"finetune {epoch + 1}/{cfg.finetune_epochs}", steps, cfg.max_steps)
            if sched is not None:
                sched.step()
            val_metrics = binary_metrics(val[1], predict_proba(unwrap(net), val[0]))
            entry = {"epoch": epoch, "loss": mean_across(d, mean), "val": val_metrics}
            history.append(entry)
            if cfg.progress and d.is_main:
                bar.console.print(f"  epoch {epoch + 1}: loss {entry['loss']:.4f}  "
                                  f"val AUROC {val_metrics['auroc']:.3f}")
            auc = val_metrics["auroc"] if np.isfinite(val_metrics["auroc"]) else 0.0
            if auc > best_auc or best_state is None:
                best_auc, best_state = auc, copy.deepcopy(unwrap(net).state_dict())
                if d.is_main:
                    save_checkpoint(best_file, unwrap(net), cfg.card, "finetune", epoch,
                                    None, {"val": val_metrics})
            if d.is_main:
                save_checkpoint(cfg.out / "finetune-last.pt", unwrap(net), cfg.card, "finetune", epoch, opt,
                                {"history": history})
            if done:
                break
    model = unwrap(net)
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, history
