"""A cheap plan estimate from the model card alone (params x bits, largest live activations): refuses a model that
cannot fit the target before any model is built, calibrated or exported, in bounded memory (integer arithmetic)."""

from __future__ import annotations

from dataclasses import dataclass

from edgeflow.cards import ModelCard
from edgeflow.plan.levels import PlanError
from edgeflow.target import Target

# Leaf names of the quantized weight layers (edgeflow.quant.layers.WEIGHT_GROUPS; not imported: brevitas).
WEIGHT_GROUPS = ("patch_embed", "in_proj", "conv1d", "x_proj", "dt_proj", "out_proj", "head",
                 "q", "k", "v", "o", "fc1", "fc2")
MIN_WEIGHT_BITS = 2
ACT_BYTES = 1  # activations are int8


@dataclass(frozen=True)
class Estimate:
    """Lower bounds: a real plan needs at least these bytes (so a refusal is never wrong)."""

    weight_bytes: int   # every quantized layer's parameters at its bit width (biases counted at that width too)
    arena_bytes: int    # tensors that must be live together in the activation arena (L2)

    def to_dict(self) -> dict[str, int]:
        return {"weight_bytes": self.weight_bytes, "arena_bytes": self.arena_bytes}


def _bits(card: ModelCard, path: str, weight_bits: int | None) -> int:
    quant = {k: v for k, v in card.quant.items() if not isinstance(v, dict)}
    default = weight_bits if weight_bits is not None else MIN_WEIGHT_BITS
    return int(quant.get(path, quant.get(path.rsplit(".", 1)[-1], default)))


def arena_lower_bound(card: ModelCard) -> int:
    """Bytes of tensors live at the same time in any schedule: the window with the patch embedding's output;
    in a Mamba block the gate input z beside the scan output y; in a transformer the MLP hidden beside the
    residual stream."""
    i, length, d = card.input, card.n_tokens, card.d_model
    stem = i.n_channels * i.window_samples + length * d
    if card.kind == "femba":
        block = 2 * length * card.d_inner
    else:
        block = length * card.arch.mlp_ratio * d + length * d
    return max(stem, block) * ACT_BYTES


def estimate(card: ModelCard, weight_bits: int | None = None) -> Estimate:
    """Lower bounds of the card's weight and arena bytes; weight_bits None: the checkpoint's bits are unknown,
    the smallest width is assumed for the layers the card's [quant] section does not fix."""
    from edgeflow.nn.summary import layer_table

    total_bits = 0
    for row in layer_table(card):
        if row.name.rsplit(".", 1)[-1] in WEIGHT_GROUPS:
            total_bits += row.params * _bits(card, row.name, weight_bits)
    return Estimate(weight_bytes=total_bits // 8, arena_bytes=arena_lower_bound(card))


def check_fits(card: ModelCard, target: Target, weight_bits: int | None = None) -> Estimate | None:
    """PlanError (one line naming the card, the level and the bytes) when even the lower bounds cannot fit:
    the arena in L2, the weights in what L2 leaves free plus the largest level beside L2 (where tile blobs go).
    None for a card without an architecture (kind "sensor": its model is the user's ONNX, planned at build)."""
    if card.arch is None:
        return None
    est = estimate(card, weight_bits)
    where = card.path or card.name
    l2 = target.l2
    if est.arena_bytes > l2.usable:
        raise PlanError(f"{where}: cannot fit target '{target.name}': activations need at least {est.arena_bytes:,} "
                        f"bytes of L2 (window {card.input.window_s:g} s, {card.n_tokens} tokens x d_model "
                        f"{card.d_model}), usable {l2.usable:,}")
    outer = [lvl for lvl in target.memory if lvl.name not in ("L1", "L2") and lvl.name in l2.neighbours]
    biggest = max(outer, key=lambda lvl: lvl.usable, default=None)
    room = l2.usable - est.arena_bytes + (biggest.usable if biggest else 0)
    if est.weight_bytes > room:
        levels = f"L2 {l2.usable - est.arena_bytes:,} free" + (f" + {biggest.name} {biggest.usable:,}"
                                                                if biggest else "")
        bits = "" if weight_bits is None else f" at {weight_bits}-bit"
        raise PlanError(f"{where}: cannot fit target '{target.name}': weights need at least {est.weight_bytes:,} "
                        f"bytes{bits}, the levels hold {room:,} ({levels})")
    return est


def check_card_fits(card: ModelCard, target_name: str, weight_bits: int | None = None) -> Estimate | None:
    """check_fits for a target given by name (what `edgeflow build` calls before any expensive work); None for
    a name without a target.toml (the build names the available targets)."""
    from edgeflow.target import available_targets, load_target

    if target_name not in available_targets():
        return None
    return check_fits(card, load_target(target_name), weight_bits)

