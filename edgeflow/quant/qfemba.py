"""Quantization-aware FEMBA: every tensor an integer kernel sees has one int8 quantizer.

The structure and parameter names mirror edgeflow.nn.femba.FEMBA, so a float checkpoint loads as is.
Per mixer, the quantized tensors (each with exactly one quantizer) are:

    x (block input)      -> in_proj (2/4/8-bit)            -> xz
    x_in  (conv1d.input_quant) -> conv1d (+Int32Bias)       -> q_conv -> SiLU LUT -> q_u  = u
    u -> x_proj -> dt (dt_proj.input_quant) -> dt_proj (+Int32Bias) -> q_dt -> softplus LUT -> q_delta
                -> B (q_B), C (q_C)
    scan(u, delta, A, B, C, D) -> q_y ;  z (q_z) -> SiLU LUT -> q_gate ;  q_y * q_gate -> q_yg
    q_yg -> out_proj -> q_out
Block: q_res(x + q_out_fwd + flip(q_out_rev)) -> LayerNorm -> q_norm.  Model: input quantizer (inside
patch_embed) -> patch_embed -> + pos_embed -> q_tok -> blocks -> mean -> head (input quantizer, Int32Bias).

The scan runs in float on the quantized (fake-quant) inputs during QAT; `edgeflow.quant.intscan` defines the
integer scan the device runs, and `scan_gap` measures the difference. In export mode the scan becomes one
`edgeflow.SelectiveScan` ONNX node whose `quant` attribute carries the calibrated state scales.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from torch import nn

from edgeflow.cards import ModelCard
from edgeflow.errors import CardError
from edgeflow.nn.mamba import DEFAULT_SCAN_MODE, selective_scan
from edgeflow.quant.layers import QuantPolicy, act, conv1d_depthwise, conv2d_patch, linear


def act_scale(q: nn.Module) -> float:
    """Scale of a QuantIdentity or of a layer's input quantizer."""
    proxy = q.act_quant if hasattr(q, "act_quant") else q.input_quant
    return float(proxy.scale().detach())


class QuantMambaMixer(nn.Module):
    """One quantized Mamba direction (see the module docstring for its quantizers)."""

    def __init__(self, card: ModelCard, policy: QuantPolicy, path: str):
        super().__init__()
        a, di, ds = card.arch, card.d_inner, card.arch.d_state
        self.d_inner, self.d_state, self.dt_rank = di, ds, a.dt_rank
        self.scan_mode = DEFAULT_SCAN_MODE
        self.export_mode = False
        self.direction = 0
        ab = policy.act_bits
        self.in_proj = linear(card.d_model, 2 * di, False, policy.bits(f"{path}.in_proj"), ab)
        self.conv1d = conv1d_depthwise(di, a.d_conv, policy.bits(f"{path}.conv1d"), ab)
        self.x_proj = linear(di, a.dt_rank + 2 * ds, False, policy.bits(f"{path}.x_proj"), ab)
        self.dt_proj = linear(a.dt_rank, di, True, policy.bits(f"{path}.dt_proj"), ab)
        self.A_log = nn.Parameter(torch.zeros(di, ds))
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = linear(di, card.d_model, False, policy.bits(f"{path}.out_proj"), ab)
        for name in ("q_conv", "q_u", "q_dt", "q_delta", "q_B", "q_C", "q_y", "q_z", "q_gate", "q_yg", "q_out"):
            setattr(self, name, act(ab))
        # per-channel state scale of the integer scan, set by `calibrate_scan` (0 = not calibrated yet)
        self.register_buffer("state_scale", torch.zeros(di))

    def scan_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Quantized (u, delta, B, C, z) of a (batch, L, d_model) input."""
        length = x.shape[1]
        x_in, z = self.in_proj(x).split([self.d_inner, self.d_inner], dim=-1)
        x_conv = self.q_conv(self.conv1d(x_in.transpose(1, 2))[..., :length].transpose(1, 2))
        u = self.q_u(F.silu(x_conv))
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = self.q_delta(F.softplus(self.q_dt(self.dt_proj(dt))))
        return u, delta, self.q_B(B), self.q_C(C), self.q_z(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, delta, B, C, z = self.scan_inputs(x)
        A = -torch.exp(self.A_log)
        if self.export_mode:
            from edgeflow.export.scan_op import selective_scan_export

            y = selective_scan_export(u, delta, A, B, C, self.D, direction=0, quant=self.scan_quant_json())
        else:
            y = selective_scan(u, delta, A, B, C, self.D, mode=self.scan_mode)
        y = self.q_y(y)
        gate = self.q_gate(F.silu(z))
        return self.q_out(self.out_proj(self.q_yg(y * gate)))

    def scan_quant_json(self) -> str:
        """The scan's quantization facts the compiler needs beyond the ONNX tensors' own scales."""
        return json.dumps({"state_scale": [float(v) for v in self.state_scale.tolist()],
                           "state_bits": 24, "headroom": 2.0, "scheme": "edgeflow.intscan/1"})


class QuantBiMambaBlock(nn.Module):
    """q_norm(LayerNorm(q_res(x + fwd(x) + flip(rev(flip(x))))))."""

    def __init__(self, card: ModelCard, policy: QuantPolicy, path: str):
        super().__init__()
        self.fwd = QuantMambaMixer(card, policy, f"{path}.fwd")
        self.rev = QuantMambaMixer(card, policy, f"{path}.rev")
        self.rev.direction = 1
        self.norm = nn.LayerNorm(card.d_model)
        self.q_res = act(policy.act_bits)
        self.q_norm = act(policy.act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y_fwd = self.fwd(x)
        y_rev = torch.flip(self.rev(torch.flip(x, dims=[1])), dims=[1])
        return self.q_norm(self.norm(self.q_res(x + y_fwd + y_rev)))


class QuantPatchTokens:
    """Shared by the quantized models: int8 input window -> patch embedding + pos_embed -> q_tok tokens.

    Needs `patch_embed` (whose input quantizer is the model's input quantizer), `pos_embed`, `q_tok`,
    `n_tokens`, `d_model`; token layout as edgeflow.nn.patching (feature f = e * rows + row).
    """

    def input_scale(self) -> float:
        """Scale of the int8 input window: the host quantizes normalised EEG with it."""
        return act_scale(self.patch_embed)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.patch_embed(x.unsqueeze(1))                                # (batch, E, rows, L)
        tok = emb.permute(0, 3, 1, 2).reshape(x.shape[0], self.n_tokens, self.d_model)
        return self.q_tok(tok + self.pos_embed)


class QuantFEMBA(QuantPatchTokens, nn.Module):
    """QAT FEMBA built from a card and a bit-width policy; `forward(x) -> logits` like the float model."""

    def __init__(self, card: ModelCard, policy: QuantPolicy):
        super().__init__()
        if card.kind != "femba":
            raise CardError(f"{card.name}: QuantFEMBA needs a FEMBA card, got kind '{card.kind}'")
        self.card, self.policy = card, policy
        self.n_tokens, self.d_model = card.n_tokens, card.d_model
        self.patch_embed = conv2d_patch(card.arch.embed_channels, tuple(card.arch.patch),
                                        policy.bits("patch_embed"), policy.act_bits)
        self.pos_embed = nn.Parameter(torch.zeros(1, card.n_tokens, card.d_model))
        self.q_tok = act(policy.act_bits)
        self.blocks = nn.ModuleList(QuantBiMambaBlock(card, policy, f"blocks.{i}")
                                    for i in range(card.arch.n_blocks))
        self.head = linear(card.d_model, card.arch.n_classes, True, policy.bits("head"), policy.act_bits)

    @property
    def mixers(self) -> list[QuantMambaMixer]:
        return [m for b in self.blocks for m in (b.fwd, b.rev)]

    def set_scan_mode(self, mode: str) -> None:
        for m in self.mixers:
            m.scan_mode = mode

    def set_export_mode(self, on: bool) -> None:
        for m in self.mixers:
            m.export_mode = on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tokens(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h.mean(dim=1))


FLOAT_ONLY = ("mask_token", "rec_head")  # pre-training parameters the quantized model does not have


def load_float_weights(qmodel: nn.Module, float_state: dict[str, torch.Tensor], source: str) -> None:
    """Copy a float checkpoint into a quantized model; names the first tensor that does not fit."""
    own = qmodel.state_dict()
    for name, t in float_state.items():
        if name.split(".")[0] in FLOAT_ONLY:
            continue
        if name not in own:
            raise CardError(f"{source}: checkpoint does not fit the card: unexpected tensor '{name}'")
        if tuple(own[name].shape) != tuple(t.shape):
            raise CardError(f"{source}: checkpoint does not fit the card: tensor '{name}' has shape "
                            f"{tuple(t.shape)}, card expects {tuple(own[name].shape)}")
    for name, _ in qmodel.named_parameters():
        if "quant" not in name and name not in float_state:
            raise CardError(f"{source}: checkpoint does not fit the card: tensor '{name}' missing")
    qmodel.load_state_dict({k: v for k, v in float_state.items() if k.split(".")[0] not in FLOAT_ONLY},
                           strict=False)
