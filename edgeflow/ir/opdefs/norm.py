"""Row normalisation and pooling: integer layernorm (x, g, b) and the token mean (meanpool_tokens)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeflow.ir import ops
from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, TensorType, entries, rank
from edgeflow.ir.opdefs.elementwise import per_element


def infer_layernorm(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """x (T, C), g and b of C entries -> (T, C) int8."""
    t, c = rank(ins[0], 2, "input x")
    entries(ins[1], c, "gain g", "channel of x")
    entries(ins[2], c, "offset b", "channel of x")
    return [((t, c), "int8")]


def infer_meanpool(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """x (T, C) -> (1, C) int8: the mean over tokens, one row."""
    return [((1, rank(ins[0], 2, "input x")[1]), "int8")]


def _layernorm_ref(ins: Sequence, a: Mapping[str, Any]) -> list:
    x, g, b = ins
    return [ops.layernorm(x, ops.LayerNormConsts(x.shape[1], int(a["eps_q"]), g, b, int(a["g_frac"])))]


DEFS = (
    OpDef("layernorm", "norm", (Arg("x", dtypes=("int8",)), Arg("g", const=True), Arg("b", const=True)),
          infer_layernorm, _layernorm_ref, attrs=("eps_q", "g_frac"), macs=per_element, kernel="ef_layernorm_i8"),
    OpDef("meanpool_tokens", "norm", (Arg("x", dtypes=("int8",)),), infer_meanpool,
          lambda ins, a: [ops.meanpool_tokens(ins[0], a["m"], a["sh"])], attrs=("m", "sh"), macs=per_element,
          kernel="ef_meanpool_tokens_i8"),
)
