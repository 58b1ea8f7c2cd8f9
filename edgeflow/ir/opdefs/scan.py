"""The integer selective scan (Mamba): u, delta, B, C activations and the per-channel constants of intscan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeflow.ir import ops
from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, Shape, ShapeError, TensorType, entries, rank, size
from edgeflow.quant.intscan import ScanConsts

#: The per-channel constants after ka (d_inner, d_state), each with d_inner entries (ScanConsts fields).
CHANNEL_CONSTS = ("m_in", "sh_in", "m_y", "m_D", "sh_D", "sh_y")


def infer_scan(ins: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[OutType]:
    """u, delta (T, D); B, C (T, N); ka (D, N); six constants of D entries -> y (T, D) int8."""
    t, d = rank(ins[0], 2, "input u")
    if ins[1].shape != (t, d):
        raise ShapeError(f"input delta has shape {ins[1].shape}, input u {ins[0].shape} (must be equal)")
    d_ka, n = rank(ins[4], 2, "constant ka")
    if d_ka != d:
        raise ShapeError(f"input u has {d} channels, constant ka expects {d_ka} (ka shape {ins[4].shape})")
    for k, name in ((2, "B"), (3, "C")):
        if ins[k].shape != (t, n):
            raise ShapeError(f"input {name} has shape {ins[k].shape}, expected {(t, n)} (steps of u, states of ka "
                             f"{ins[4].shape})")
    for k, name in enumerate(CHANNEL_CONSTS, start=5):
        entries(ins[k], d, f"constant {name}", "channel of u")
    return [((t, d), "int8")]


def scan_macs(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    """dA*h + dB*u and C*h per state element (an estimate)."""
    return size(outs[0]) * ins[4][1] * 3


def scan_scratch(ins: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    """The int32 state h (d_inner x d_state) in the arena."""
    return 4 * size(ins[4])


def _scan_ref(ins: Sequence, a: Mapping[str, Any]) -> list:
    u, dl, b, c, ka, m_in, sh_in, m_y, m_d, sh_d, sh_y = ins
    k = ScanConsts(ka, int(a["ka_frac"]), m_in, sh_in, m_y, m_d, sh_d, sh_y)
    return [ops.scan(u, dl, b, c, k, int(a.get("direction", 0)))]


DEFS = (
    OpDef("scan", "scan", (*(Arg(n, dtypes=("int8",)) for n in ("u", "delta", "B", "C")),
                           Arg("ka", const=True, dtypes=("uint16",)), *(Arg(n, const=True) for n in CHANNEL_CONSTS)),
          infer_scan, _scan_ref, attrs=("ka_frac",), optional_attrs=("direction",), macs=scan_macs,
          scratch=scan_scratch, kernel="ef_scan_i8"),
)
