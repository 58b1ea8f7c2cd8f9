"""brevitas building blocks: per-channel int2/4/8 weights, int8 activations, Int32Bias, bit-width policy."""

from __future__ import annotations

from dataclasses import dataclass, field

import brevitas.nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int32Bias

from edgeflow.errors import CardError

WEIGHT_BITS = (2, 4, 8)
ACT_BITS = (8,)
# Weight groups a card's [quant] section may set (leaf module names); exact module paths work too.
WEIGHT_GROUPS = ("patch_embed", "in_proj", "conv1d", "x_proj", "dt_proj", "out_proj", "head",
                 "q", "k", "v", "o", "fc1", "fc2")


@dataclass(frozen=True)
class QuantPolicy:
    """Bit widths: `weight_bits` for every quantized layer unless the card's [quant] section overrides it.

    Card example (FEMBA on the Edge's mixed precision: 2-bit projections, 8-bit embedding and head)::

        [quant]
        patch_embed = 8
        head = 8
        blocks.0.fwd.in_proj = 4     # an exact module path wins over a group name
    """

    weight_bits: int
    act_bits: int = 8
    overrides: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.weight_bits not in WEIGHT_BITS:
            raise CardError(f"unsupported weight bit width {self.weight_bits}; supported: {WEIGHT_BITS}")
        if self.act_bits not in ACT_BITS:
            raise CardError(f"unsupported activation bit width {self.act_bits}; supported: {ACT_BITS}")
        for name, bits in self.overrides.items():
            if bits not in WEIGHT_BITS:
                raise CardError(f"[quant] {name} = {bits}: unsupported weight bit width; supported: {WEIGHT_BITS}")
            leaf = name.rsplit(".", 1)[-1]
            if leaf not in WEIGHT_GROUPS:
                raise CardError(f"[quant] {name}: unknown layer; groups are {', '.join(WEIGHT_GROUPS)}")

    @classmethod
    def from_card(cls, card, weight_bits: int, act_bits: int = 8) -> QuantPolicy:
        raw = dict(card.quant)
        overrides = {k: int(v) for k, v in raw.items() if not isinstance(v, dict)}
        return cls(weight_bits=weight_bits, act_bits=act_bits, overrides=overrides)

    def bits(self, path: str) -> int:
        """Weight bits of the module at `path` (e.g. 'blocks.0.fwd.in_proj')."""
        if path in self.overrides:
            return self.overrides[path]
        return self.overrides.get(path.rsplit(".", 1)[-1], self.weight_bits)


def act(bits: int = 8) -> qnn.QuantIdentity:
    """A per-tensor signed activation quantizer (scale learned in QAT, zero point 0)."""
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=bits, return_quant_tensor=False)


def _wq(bits: int) -> dict:
    return {"weight_quant": Int8WeightPerChannelFloat, "weight_bit_width": bits}


def linear(n_in: int, n_out: int, bias: bool, bits: int, act_bits: int = 8) -> qnn.QuantLinear:
    """Per-output-channel symmetric weights; a layer with a bias quantizes its own input (Int32Bias needs
    the input scale), a layer without one takes an already-quantized input."""
    extra = {"input_quant": Int8ActPerTensorFloat, "input_bit_width": act_bits, "bias_quant": Int32Bias} \
        if bias else {}
    return qnn.QuantLinear(n_in, n_out, bias=bias, return_quant_tensor=False, **_wq(bits), **extra)


def conv1d_depthwise(channels: int, kernel: int, bits: int, act_bits: int = 8) -> qnn.QuantConv1d:
    return qnn.QuantConv1d(channels, channels, kernel_size=kernel, groups=channels, padding=kernel - 1,
                           bias=True, input_quant=Int8ActPerTensorFloat, input_bit_width=act_bits,
                           bias_quant=Int32Bias, return_quant_tensor=False, **_wq(bits))


def conv2d_patch(out_ch: int, patch: tuple[int, int], bits: int, act_bits: int = 8) -> qnn.QuantConv2d:
    """Patch embedding; its input quantizer is the model's input quantizer (the host's EEG scale)."""
    return qnn.QuantConv2d(1, out_ch, kernel_size=patch, stride=patch, bias=True,
                           input_quant=Int8ActPerTensorFloat, input_bit_width=act_bits,
                           bias_quant=Int32Bias, return_quant_tensor=False, **_wq(bits))
