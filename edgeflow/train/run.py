"""`edgeflow train`: corpus -> split by subject -> pre-train -> fine-tune -> test metrics and checkpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from edgeflow.train.checkpoint import read_checkpoint, save_checkpoint
from edgeflow.train.common import Dist, TrainConfig, predict_proba, seed_everything, setup_dist, teardown_dist
from edgeflow.train.finetune import finetune
from edgeflow.train.metrics import binary_metrics
from edgeflow.train.pretrain import pretrain


def _load_splits(cfg: TrainConfig, d: Dist):
    from edgeflow.data.dataset import load_corpus, split_by_subject
    from edgeflow.data.eeg import Preprocess

    pp = Preprocess.from_card(cfg.card)
    if d.enabled and not d.is_main:  # rank 0 builds the window cache first; the others then read it
        torch.distributed.barrier()
    ws = load_corpus(cfg.corpus, pp)
    if d.enabled and d.is_main:
        torch.distributed.barrier()
    return ws, split_by_subject(ws, seed=cfg.seed)


def _resume_point(cfg: TrainConfig) -> tuple[str, int, dict | None]:
    """(stage, next epoch, checkpoint) to continue from; ('pretrain', 0, None) for a fresh run."""
    if not cfg.resume:
        return "pretrain", 0, None
    for stage in ("finetune", "pretrain"):
        p = cfg.out / f"{stage}-last.pt"
        if p.exists():
            state = read_checkpoint(p)
            return stage, int(state["epoch"]) + 1, state
    return "pretrain", 0, None


def run_training(cfg: TrainConfig) -> dict:
    """Train the card's model on the corpus; rank 0 writes model.pt and metrics.json into cfg.out."""
    from edgeflow.nn import build_model
    from edgeflow.train.checkpoint import load_weights

    d = setup_dist()
    seed_everything(cfg.seed)
    t0 = time.time()
    cfg.out.mkdir(parents=True, exist_ok=True)
    ws, splits = _load_splits(cfg, d)
    train, val, test = splits["train"], splits["val"], splits["test"]
    model = build_model(cfg.card)
    stage, epoch, state = _resume_point(cfg)
    if state is not None:
        load_weights(model, state["model"], str(cfg.out))
    pre_losses: list[float] = []
    if stage == "pretrain" and cfg.pretrain_epochs > 0:
        pre_losses = pretrain(model, train.x, cfg, d, start_epoch=epoch,
                              optim_state=state["optimizer"] if state else None)
    t_pre = time.time() - t0
    ft_epoch, ft_optim, history = 0, None, None
    if stage == "finetune" and state is not None:
        ft_epoch, ft_optim = epoch, state["optimizer"]
        history = state["metrics"].get("history", [])
    model, history = finetune(model, (train.x, train.y), (val.x, val.y), cfg, d, start_epoch=ft_epoch,
                              optim_state=ft_optim, history=history)
    test_metrics = binary_metrics(test.y, predict_proba(model, test.x))
    elapsed = time.time() - t0
    metrics = {
        "card": cfg.card.name,
        "corpus": str(cfg.corpus),
        "windows": {k: int(len(v.y)) for k, v in splits.items()},
        "subjects": {k: int(len(set(v.subject.tolist()))) for k, v in splits.items()},
        "pretrain_loss": pre_losses,
        "finetune_history": history,
        "test": test_metrics,
        "train_seconds": round(elapsed, 1),
        "pretrain_seconds": round(t_pre, 1),
        "world_size": d.world,
        "threads": torch.get_num_threads(),
        "params": int(sum(p.numel() for p in model.parameters())),
    }
    if d.is_main:
        save_checkpoint(cfg.out / "model.pt", model, cfg.card, "final", len(history) - 1 if history else 0,
                        None, metrics)
        (cfg.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    teardown_dist(d)
    return metrics


def default_out(card_name: str) -> Path:
    return Path("runs") / card_name
