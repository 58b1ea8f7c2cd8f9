"""Analytic per-layer table (shapes, params, MACs per window) of a model card, without building the model.

MACs count multiply-accumulates of Linear/Conv layers and attention matmuls, plus:
  - selective scan: 3 * d_inner * d_state per token (state update ~2, output contraction 1);
  - gating y * silu(z): d_inner per token;
  - LayerNorm: d_model per token (the affine scale; statistics not counted).
Additions (residuals, positional embedding, mean-pool) and non-linearities are not counted.
The reconstruction head and mask token (pre-training only) are left out of both params and MACs.
Shapes are per window, without the batch dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from edgeflow.cards import ModelCard

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerInfo:
    name: str        # module path in the built model (e.g. blocks.0.fwd.in_proj) or a step name
    kind: str
    in_shape: Shape
    out_shape: Shape
    params: int
    macs: int        # per window


def _linear(name: str, length: int, d_in: int, d_out: int, bias: bool, kind: str = "linear") -> LayerInfo:
    return LayerInfo(name, kind, (length, d_in), (length, d_out), d_in * d_out + (d_out if bias else 0),
                     length * d_in * d_out)


def _norm(name: str, length: int, d: int, kind: str = "layernorm") -> LayerInfo:
    return LayerInfo(name, kind, (length, d), (length, d), 2 * d, length * d)


def _stem(card: ModelCard) -> list[LayerInfo]:
    (pr, pt), e = card.arch.patch, card.arch.embed_channels
    rows, length, d = card.token_rows, card.n_tokens, card.d_model
    return [
        LayerInfo("patch_embed", "conv2d", (1, card.input.n_channels, card.input.window_samples),
                  (e, rows, length), e * pr * pt + e, e * pr * pt * rows * length),
        LayerInfo("pos_embed", "add", (length, d), (length, d), length * d, 0),
    ]


def _head(card: ModelCard) -> LayerInfo:
    d, nc = card.d_model, card.arch.n_classes
    return LayerInfo("head", "meanpool+linear", (card.n_tokens, d), (nc,), d * nc + nc, d * nc)


def mixer_rows(card: ModelCard, prefix: str) -> list[LayerInfo]:
    """Rows of one Mamba direction (a MambaMixer) named under `prefix`."""
    a = card.arch
    length, d, di, n, r, k = card.n_tokens, card.d_model, card.d_inner, a.d_state, a.dt_rank, a.d_conv
    return [
        _linear(f"{prefix}.in_proj", length, d, 2 * di, bias=False),
        LayerInfo(f"{prefix}.conv1d", "conv1d+silu", (length, di), (length, di), di * k + di,
                  length * di * k),
        _linear(f"{prefix}.x_proj", length, di, r + 2 * n, bias=False),
        _linear(f"{prefix}.dt_proj", length, r, di, bias=True, kind="linear+softplus"),
        LayerInfo(f"{prefix}.scan", "selective_scan", (length, di), (length, di), di * n + di,
                  length * 3 * di * n),
        LayerInfo(f"{prefix}.gate", "gating", (length, di), (length, di), 0, length * di),
        _linear(f"{prefix}.out_proj", length, di, d, bias=False),
    ]


def _femba_rows(card: ModelCard) -> list[LayerInfo]:
    rows = _stem(card)
    for i in range(card.arch.n_blocks):
        rows += mixer_rows(card, f"blocks.{i}.fwd")
        rows += mixer_rows(card, f"blocks.{i}.rev")
        rows.append(_norm(f"blocks.{i}.norm", card.n_tokens, card.d_model, kind="add3+layernorm"))
    return rows + [_head(card)]


def _transformer_rows(card: ModelCard) -> list[LayerInfo]:
    length, d, h = card.n_tokens, card.d_model, card.arch.n_heads
    hidden = card.arch.mlp_ratio * d
    attn_macs = length * length * d  # per matmul, summed over heads
    rows = _stem(card)
    for i in range(card.arch.n_blocks):
        p = f"blocks.{i}"
        rows += [
            _norm(f"{p}.norm1", length, d),
            _linear(f"{p}.attn.q", length, d, d, bias=True),
            _linear(f"{p}.attn.k", length, d, d, bias=True),
            _linear(f"{p}.attn.v", length, d, d, bias=True),
            LayerInfo(f"{p}.attn.scores", "matmul+softmax", (length, d), (h, length, length), 0, attn_macs),
            LayerInfo(f"{p}.attn.context", "matmul", (h, length, length), (length, d), 0, attn_macs),
            _linear(f"{p}.attn.o", length, d, d, bias=True, kind="linear+residual"),
            _norm(f"{p}.norm2", length, d),
            _linear(f"{p}.mlp.fc1", length, d, hidden, bias=True, kind="linear+gelu"),
            _linear(f"{p}.mlp.fc2", length, hidden, d, bias=True, kind="linear+residual"),
        ]
    rows.append(_norm("norm", length, d))
    return rows + [_head(card)]


def layer_table(card: ModelCard) -> list[LayerInfo]:
    """Every layer of the card's inference model, in execution order."""
    if card.kind == "femba":
        return _femba_rows(card)
    if card.kind == "transformer":
        return _transformer_rows(card)
    raise ValueError(f"no layer table for model.kind '{card.kind}'")


def totals(card: ModelCard) -> tuple[int, int]:
    """(params, MACs per window) of the inference model."""
    rows = layer_table(card)
    return sum(r.params for r in rows), sum(r.macs for r in rows)


def _shape(s: Shape) -> str:
    return "×".join(str(v) for v in s)


def render_table(card: ModelCard) -> Table:
    """Rich table for `edgeflow model info CARD`: one row a layer, then totals."""
    table = Table(title=f"{card.name} ({card.kind}): {card.n_tokens} tokens × d_model {card.d_model}")
    table.add_column("layer")
    table.add_column("kind")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    table.add_column("params", justify="right")
    table.add_column("MACs", justify="right")
    for r in layer_table(card):
        table.add_row(r.name, r.kind, _shape(r.in_shape), _shape(r.out_shape), f"{r.params:,}", f"{r.macs:,}")
    params, macs = totals(card)
    table.add_section()
    table.add_row("total", "", "", "", f"{params:,}", f"{macs:,}", style="bold")
    return table
