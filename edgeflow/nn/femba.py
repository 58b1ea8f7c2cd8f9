"""FEMBA: patch embedding + positional embedding + bidirectional Mamba blocks + mean-pool classifier."""

from __future__ import annotations

import torch
from torch import nn

from edgeflow.cards import ModelCard
from edgeflow.errors import CardError
from edgeflow.nn.mamba import DEFAULT_SCAN_MODE, SCAN_MODES, BiMambaBlock
from edgeflow.nn.patching import PatchEncoder


class FEMBA(PatchEncoder):
    """FEMBA built from a card; token layout and heads come from `PatchEncoder` (see edgeflow.nn.patching)."""

    def __init__(self, card: ModelCard, scan_mode: str = DEFAULT_SCAN_MODE, chunk: int = 16):
        if card.kind != "femba":
            raise CardError(f"{card.path or card.name}: FEMBA needs model.kind = 'femba', got '{card.kind}'")
        super().__init__(card)
        a = card.arch
        self.blocks = nn.ModuleList(
            BiMambaBlock(card.d_model, card.d_inner, a.d_state, a.dt_rank, a.d_conv,
                         scan_mode=scan_mode, chunk=chunk)
            for _ in range(a.n_blocks)
        )

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        return tokens

    @property
    def scan_mode(self) -> str:
        return self.blocks[0].scan_mode if len(self.blocks) else DEFAULT_SCAN_MODE

    @scan_mode.setter
    def scan_mode(self, mode: str) -> None:
        if mode not in SCAN_MODES:
            raise ValueError(f"scan mode must be one of {SCAN_MODES}, got '{mode}'")
        for block in self.blocks:
            block.scan_mode = mode
