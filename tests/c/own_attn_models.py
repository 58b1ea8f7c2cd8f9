"""A small EEG transformer the tests build themselves: token embedding (QuantLinear over 8-sample patches),
brevitas' QuantMultiheadAttention (packed q/k/v, Div by sqrt(d_head)), residual Add, LayerNorm, mean over tokens,
QuantLinear head; 8- and 4-bit weights, QCDQ export (dynamo=False), cached per session."""

from __future__ import annotations

from pathlib import Path

import brevitas.nn as qnn
import torch
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int32Bias
from torch import nn

from .own_cnn_models import export_model


def _q(rqt: bool = False) -> qnn.QuantIdentity:
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=rqt)


class AttnTiny(nn.Module):
    """Input (B, channels, samples): `patch` samples per token -> (B, tokens, channels * patch) -> QuantLinear to d,
    self-attention (brevitas QuantMultiheadAttention, batch_first, heads), residual, LayerNorm, mean, head.
    quant_scores=False keeps brevitas' default (Q·Kᵀ not quantized before the Softmax), which edgeflow refuses;
    batch_first=False feeds the attention (tokens, batch, d); out_quant quantizes out_proj's output as well."""

    def __init__(self, bits: int, channels: int = 4, samples: int = 64, patch: int = 8, d: int = 16, heads: int = 2,
                 classes: int = 3, quant_scores: bool = True, batch_first: bool = True, out_quant: bool = False):
        super().__init__()
        self.patch, self.tokens, self.batch_first = patch, samples // patch, batch_first
        wq = {"weight_quant": Int8WeightPerChannelFloat, "weight_bit_width": bits, "bias_quant": Int32Bias}
        self.q_in = _q()
        self.embed = qnn.QuantLinear(channels * patch, d, bias=True, input_quant=Int8ActPerTensorFloat, **wq)
        self.q_tok = _q()
        self.mha = qnn.QuantMultiheadAttention(
            d, heads, batch_first=batch_first, softmax_input_quant=Int8ActPerTensorFloat if quant_scores else None,
            out_proj_output_quant=Int8ActPerTensorFloat if out_quant else None,
            in_proj_weight_quant=Int8WeightPerChannelFloat, in_proj_weight_bit_width=bits,
            out_proj_weight_quant=Int8WeightPerChannelFloat, out_proj_weight_bit_width=bits)
        self.q_attn = _q()
        self.q_res = _q()
        self.norm = nn.LayerNorm(d)
        self.q_norm = _q()
        self.q_pool = _q(rqt=True)
        self.head = qnn.QuantLinear(d, classes, bias=True, **wq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        x = self.q_in(x).reshape(b, c, self.tokens, self.patch).permute(0, 2, 1, 3).reshape(b, self.tokens, -1)
        x = self.q_tok(self.embed(x))
        y = x if self.batch_first else x.transpose(0, 1)
        a = self.mha(y, y, y, need_weights=False)[0]
        a = self.q_attn(a if self.batch_first else a.transpose(0, 1))
        x = self.q_norm(self.norm(self.q_res(x + a)))
        return self.head(self.q_pool(x.mean(dim=1)))


#: family -> (model class, input shape without batch)
FAMILIES = {"attn": (AttnTiny, (4, 64))}
_EXPORTS: dict[tuple[str, int], Path] = {}


def attn_onnx(tmp_path_factory, family: str, bits: int) -> Path:
    """The exported ONNX of `family` at `bits`-bit weights, built once per test session."""
    key = (family, bits)
    if key not in _EXPORTS:
        cls, shape = FAMILIES[family]
        torch.manual_seed(bits)
        folder = tmp_path_factory.mktemp(f"{family}{bits}")
        _EXPORTS[key] = export_model(cls(bits), shape, folder / f"{family}-w{bits}.onnx", seed=bits)
    return _EXPORTS[key]
