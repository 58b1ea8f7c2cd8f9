"""PyTorch model blocks: selective scan (Mamba), FEMBA, transformer baseline."""

from __future__ import annotations

from torch import nn

from edgeflow.cards import ModelCard
from edgeflow.errors import CardError


def build_model(card: ModelCard) -> nn.Module:
    """The card's float model (FEMBA or transformer), freshly initialised."""
    if card.kind == "femba":
        from edgeflow.nn.femba import FEMBA

        return FEMBA(card)
    if card.kind == "transformer":
        from edgeflow.nn.transformer import EEGTransformer

        return EEGTransformer(card)
    raise CardError(f"{card.path or card.name}: no model for model.kind '{card.kind}'")
