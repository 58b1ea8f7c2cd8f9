"""Checkpoints: save/load a model with its card name, stage, epoch, optimizer and metrics."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeflow import __version__
from edgeflow.cards import ModelCard
from edgeflow.errors import CardError


def save_checkpoint(path: Path, model: nn.Module, card: ModelCard, stage: str, epoch: int,
                    optimizer: torch.optim.Optimizer | None = None, metrics: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write atomically (tmp file + rename) so an interrupted run never leaves a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "edgeflow_version": __version__,
        "card": card.name,
        "kind": card.kind,
        "stage": stage,
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "metrics": metrics or {},
        "extra": extra or {},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CardError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a corrupt file
        raise CardError(f"checkpoint {path} is not readable ({type(e).__name__}: {str(e)[:80]})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CardError(f"checkpoint {path} has no 'model' entry (not an edgeflow checkpoint)")
    return state


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict, naming the first tensor that is missing, unexpected or of another shape."""
    own = model.state_dict()
    for name, t in own.items():
        if name not in state:
            raise CardError(f"{source}: checkpoint does not fit the card: tensor '{name}' missing")
        if tuple(state[name].shape) != tuple(t.shape):
            raise CardError(f"{source}: checkpoint does not fit the card: tensor '{name}' has shape "
                            f"{tuple(state[name].shape)}, card expects {tuple(t.shape)}")
    for name in state:
        if name not in own:
            raise CardError(f"{source}: checkpoint does not fit the card: unexpected tensor '{name}'")
    model.load_state_dict(state)


def load_model(card: ModelCard, path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Build the card's float model and load a checkpoint into it (eval mode)."""
    from edgeflow.nn import build_model

    state = read_checkpoint(path)
    if state.get("card") not in (None, card.name):
        raise CardError(f"checkpoint {path} was trained for card '{state['card']}', not '{card.name}'")
    model = build_model(card)
    load_weights(model, state["model"], str(path))
    model.eval()
    return model, state
