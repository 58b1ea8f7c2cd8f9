"""Checkpoints: save/load a model with its card name, stage, epoch, optimizer and metrics."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeflow import __version__
from edgeflow.cards import ModelCard
from edgeflow.errors import CardError, brief


def _plain(v: Any) -> Any:
    """Metadata as plain Python values (dict/list/str/int/float/bool/None) and tensors: exactly what
    `torch.load(weights_only=True)` accepts, so a checkpoint never needs the unpickler that can run code."""
    if isinstance(v, torch.Tensor):
        return v.detach().cpu()
    if isinstance(v, dict):
        return {str(k) if not isinstance(k, int) else k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if hasattr(v, "tolist") and callable(v.tolist):  # numpy scalars and arrays
        return v.tolist()
    if v is None or isinstance(v, bool | int | float | str):
        return v
    raise TypeError(f"checkpoint metadata of type {type(v).__name__} is not a plain value")


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
        "metrics": _plain(metrics or {}),
        "extra": _plain(extra or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def _load_reason(e: Exception) -> str:
    """torch's reason in one line: the weights-only unpickler's own verdict when it refused the file (torch's first
    line only says how to bypass it), else torch's first line, both cut at a word boundary."""
    refused = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(e))
    return f"weights-only unpickler: {brief(refused.group(1))}" if refused else brief(str(e)) or type(e).__name__


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with torch's restricted unpickler (weights_only=True): tensors and plain values only,
    so a crafted file can fail to load but never run code."""
    path = Path(path)
    if not path.is_file():
        raise CardError(f"checkpoint {path} not found" if not path.exists() else f"checkpoint {path} is not a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt file
        raise CardError(f"checkpoint {path} is not readable ({type(e).__name__}: {_load_reason(e)})") from None
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
