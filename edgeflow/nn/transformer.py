"""Transformer baseline: FEMBA's patching and heads around explicit pre-norm encoder layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeflow.cards import ModelCard
from edgeflow.errors import CardError
from edgeflow.nn.patching import PatchEncoder


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q, k, v, o projections (no fused qkv, for quantization)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.scale = self.d_head ** -0.5
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        batch, length, _ = t.shape
        return t.reshape(batch, length, self.n_heads, self.d_head).transpose(1, 2)  # (batch, H, L, d_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, d_model = x.shape
        q = self._heads(self.q(x))
        k = self._heads(self.k(x))
        v = self._heads(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale     # (batch, H, L, L)
        attn = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(attn, v)                                    # (batch, H, L, d_head)
        ctx = ctx.transpose(1, 2).reshape(batch, length, d_model)
        return self.o(ctx)


class MLP(nn.Module):
    """Two Linear layers with GELU between."""

    def __init__(self, d_model: int, d_hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Pre-norm layer: x + attn(norm1(x)), then + mlp(norm2(x))."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_ratio * d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class EEGTransformer(PatchEncoder):
    """Transformer baseline built from a card: same tokens as FEMBA, pre-norm layers, final LayerNorm."""

    def __init__(self, card: ModelCard):
        if card.kind != "transformer":
            raise CardError(f"{card.path or card.name}: EEGTransformer needs model.kind = 'transformer', "
                            f"got '{card.kind}'")
        super().__init__(card)
        a = card.arch
        self.blocks = nn.ModuleList(EncoderLayer(card.d_model, a.n_heads, a.mlp_ratio)
                                    for _ in range(a.n_blocks))
        self.norm = nn.LayerNorm(card.d_model)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        for layer in self.blocks:
            tokens = layer(tokens)
        return self.norm(tokens)
