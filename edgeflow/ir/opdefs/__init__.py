"""The op registry: one OpDef per IR op (inputs, attrs, shape inference, numpy reference, MACs, scratch bytes).

Families, one file each: linear, conv, cnn, elementwise, norm, scan, attention, structural, qdq, zp. verify()
(ir/graph.py) checks every node against its OpDef with `check_node`; the reference interpreter calls
`OpDef.reference`; the host report counts `macs`; the arena planner reserves `scratch_bytes`; the C
renderer has one emitter per op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgeflow.ir.opdefs import attention, cnn, conv, elementwise, linear, norm, qdq, scan, structural, zp
from edgeflow.ir.opdefs.base import Arg, OpDef, OutType, Shape, ShapeError, TensorType

#: op name -> definition, every op the IR knows (numeric and data movement).
_FAMILIES = (linear, conv, cnn, elementwise, norm, scan, attention, structural, qdq, zp)
OPDEFS: dict[str, OpDef] = {d.name: d for fam in _FAMILIES for d in fam.DEFS}


def opdef(op: str) -> OpDef:
    """The definition of `op`; ShapeError when the registry has none."""
    d = OPDEFS.get(op)
    if d is None:
        raise ShapeError(f"unknown op '{op}'")
    return d


def _check_inputs(d: OpDef, ins: Sequence[TensorType], input_names: Sequence[str]) -> None:
    lo, hi = d.arity()
    if len(ins) < lo or (hi is not None and len(ins) > hi):
        want = f"{lo}..{hi}" if hi != lo else str(lo)
        raise ShapeError(f"takes {want if hi is not None else f'{lo} or more'} inputs "
                         f"({', '.join(a.name + ('?' if a.optional else '') for a in d.inputs)}), got {len(ins)}")
    for i, (t, name) in enumerate(zip(ins, input_names, strict=True)):
        a = d.arg(i)
        if a.const and not t.const:
            raise ShapeError(f"input {a.name} ('{name}') must be a constant")
        if a.dtypes is not None and t.dtype not in a.dtypes:
            raise ShapeError(f"input {a.name} ('{name}') is {t.dtype}, expected {' or '.join(a.dtypes)}")


def check_node(op: str, ins: Sequence[TensorType], input_names: Sequence[str], outs: Sequence[OutType],
               output_names: Sequence[str], attrs: Mapping[str, Any]) -> None:
    """A node of `op` fits its definition: arity, constant inputs and dtypes, required attributes, and declared
    output (shape, dtype) equal to the inferred ones; ShapeError (one line naming inputs and both shapes)."""
    d = opdef(op)
    _check_inputs(d, ins, input_names)
    missing = [k for k in d.attrs if k not in attrs]
    if missing:
        raise ShapeError(f"missing attribute{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"(required: {', '.join(d.attrs)})")
    try:
        inferred = d.infer(ins, attrs)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        if isinstance(e, ShapeError):
            raise
        raise ShapeError(f"inputs or attributes do not fit: {e}") from None
    if len(inferred) != len(outs):
        raise ShapeError(f"has {len(outs)} outputs, expected {len(inferred)}")
    for name, (shape, dtype), (want_shape, want_dtype) in zip(output_names, outs, inferred, strict=True):
        if tuple(shape) != tuple(want_shape) or dtype != want_dtype:
            raise ShapeError(f"output '{name}' is declared {tuple(shape)} {dtype}, the inputs give "
                             f"{tuple(want_shape)} {want_dtype}")


def macs(op: str, ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    """Multiply-accumulates of one node of `op` (0 for data movement)."""
    return int(opdef(op).macs(ins, outs, attrs))


def scratch_bytes(op: str, ins: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    """Bytes of arena scratch one node of `op` needs while it runs (0 for most ops)."""
    return int(opdef(op).scratch(ins, attrs))


__all__ = ["OPDEFS", "Arg", "OpDef", "OutType", "Shape", "ShapeError", "TensorType", "check_node", "macs", "opdef",
           "scratch_bytes"]
