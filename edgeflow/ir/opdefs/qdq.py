"""Zero-point op of onnxruntime QDQ models (family linear): requant, an int32 accumulator -> int8 with an output
zero point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, Shape, TensorType, entries, rank, size
from edgeflow.quant.intmath import requantize


def infer_requant(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    t, o = rank(ins[0], 2, "accumulator acc")
    entries(ins[1], o, "multiplier m", "column of acc")
    entries(ins[2], o, "shift sh", "column of acc")
    return [((t, o), "int8")]


def requant(acc: np.ndarray, m: np.ndarray, sh: np.ndarray, zp: int) -> np.ndarray:
    """y[t, o] = sat8(round_half_up(acc[t, o] m[o] / 2^sh[o]) + zp); C: ef_requant_zp_i8."""
    return requantize(np.asarray(acc), np.reshape(m, (1, -1)), np.reshape(sh, (1, -1)), int(zp)).astype(np.int8)


def per_element(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    return size(ins[0])


DEFS = (
    OpDef("requant", "linear", (Arg("acc", dtypes=("int32",)), Arg("m", const=True), Arg("sh", const=True)),
          infer_requant, lambda ins, a: [requant(ins[0], ins[1], ins[2], a["zp"])], attrs=("zp",),
          macs=per_element, kernel="ef_requant_zp_i8"),
)
