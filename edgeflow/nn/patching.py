"""Shared EEG patch encoder: Conv2d patch embedding, token layout, mask token, positional embedding, heads.

Token layout (the compiler relies on it). The input window (batch, channels, time) is viewed as
(batch, 1, channels, time); `patch_embed` = Conv2d(1 -> E, kernel = stride = (pr, pt)) gives
(batch, E, rows, L) with rows = channels // pr and L = time // pt. Token t is column t, and its
feature vector is flattened embed-channel major:

    feature index f = e * rows + row        (e in [0, E), row in [0, rows))

i.e. tokens = conv_out.permute(0, 3, 1, 2).reshape(batch, L, E * rows). Token t covers samples
t*pt .. t*pt + pt - 1 of every channel. `patchify` gives the matching reconstruction targets with
value index = channel * pt + sample.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeflow.cards import ModelCard

PRETRAIN_ONLY = ("mask_token", "rec_head")  # parameters used only by masked pre-training


def feature_index(e: int, row: int, rows: int) -> int:
    """Token feature index of embed channel `e` at patch row `row` (see the module docstring)."""
    return e * rows + row


def patchify(x: torch.Tensor, patch_len: int) -> torch.Tensor:
    """(batch, channels, time) -> (batch, time // pt, channels * pt) with value index channel*pt + sample."""
    batch, channels, time = x.shape
    n_tokens = time // patch_len
    x = x[..., : n_tokens * patch_len].reshape(batch, channels, n_tokens, patch_len)
    return x.permute(0, 2, 1, 3).reshape(batch, n_tokens, channels * patch_len)


def inference_param_count(model: nn.Module) -> int:
    """Parameters of `model` excluding the pre-training-only ones (mask_token, rec_head)."""
    return sum(p.numel() for name, p in model.named_parameters() if name.split(".")[0] not in PRETRAIN_ONLY)


class PatchEncoder(nn.Module):
    """Base for FEMBA and the transformer: patch embedding -> tokens -> encoder -> mean-pool head.

    Subclasses set up their encoder and implement `encode(tokens) -> tokens`.
    """

    def __init__(self, card: ModelCard):
        super().__init__()
        self.card = card
        self.n_channels = card.input.n_channels
        self.window_samples = card.input.window_samples
        self.patch = tuple(card.arch.patch)
        self.embed_channels = card.arch.embed_channels
        self.rows = card.token_rows
        self.n_tokens = card.n_tokens
        self.d_model = card.d_model
        self.patch_embed = nn.Conv2d(1, self.embed_channels, kernel_size=self.patch, stride=self.patch)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.d_model))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.n_tokens, self.d_model))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.head = nn.Linear(self.d_model, card.arch.n_classes)
        self.rec_head = nn.Linear(self.d_model, self.n_channels * self.patch[1])

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) -> patch-embedded tokens (batch, L, d_model), feature f = e*rows + row."""
        if x.dim() != 3 or x.shape[1] != self.n_channels or x.shape[2] != self.window_samples:
            raise ValueError(f"expected input (batch, {self.n_channels}, {self.window_samples}), "
                             f"got {tuple(x.shape)}")
        emb = self.patch_embed(x.unsqueeze(1))                            # (batch, E, rows, L)
        return emb.permute(0, 3, 1, 2).reshape(x.shape[0], self.n_tokens, self.d_model)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens entering the encoder: patch embedding, masked tokens replaced by mask_token, + pos_embed."""
        tokens = self.tokenize(x)
        if mask is not None:
            if mask.shape != tokens.shape[:2]:
                raise ValueError(f"mask must be (batch, {self.n_tokens}), got {tuple(mask.shape)}")
            tokens = torch.where(mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        return tokens + self.pos_embed

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """The model's encoder on (batch, L, d_model) tokens."""
        raise NotImplementedError

    def features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, channels, time) [+ bool mask (batch, L)] -> encoded tokens (batch, L, d_model)."""
        return self.encode(self.embed(x, mask))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) -> class logits (batch, n_classes), mean-pooled over tokens."""
        return self.head(self.features(x).mean(dim=1))

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked pre-training: predicted samples (batch, L, channels * pt), aligned with `patchify`."""
        return self.rec_head(self.features(x, mask))

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction targets (batch, L, channels * patch_len) of a (batch, channels, time) window."""
        return patchify(x, self.patch[1])
