"""The OpDef record of the op registry and the shape-checking helpers the op families share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Shape = tuple[int, ...]
#: One inferred output: (shape, dtype).
OutType = tuple[Shape, str]


class ShapeError(ValueError):
    """A node whose inputs, attributes or outputs do not fit its op (verify() prefixes the node)."""


@dataclass(frozen=True)
class TensorType:
    """What shape inference sees of one input tensor: shape, dtype, bit width, storage layout, constant or not."""

    shape: Shape
    dtype: str = "int8"
    bits: int = 8
    layout: str = ""
    const: bool = False


@dataclass(frozen=True)
class Arg:
    """One input of an op: its name (used in error messages), whether it may be left out (only trailing inputs),
    whether it must be a constant (weights, tables), whether it takes any number >= 1 of tensors (variadic,
    last), and the dtypes it accepts (None: any)."""

    name: str
    optional: bool = False
    const: bool = False
    variadic: bool = False
    dtypes: tuple[str, ...] | None = None


Infer = Callable[[Sequence[TensorType], Mapping[str, Any]], list[OutType]]
Reference = Callable[[Sequence[np.ndarray], Mapping[str, Any]], list[np.ndarray]]
Macs = Callable[[Sequence[Shape], Sequence[Shape], Mapping[str, Any]], int]
Scratch = Callable[[Sequence[Shape], Mapping[str, Any]], int]


def no_macs(ins: Sequence[Shape], outs: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    """Data movement: no multiply-accumulates."""
    return 0


def no_scratch(ins: Sequence[Shape], attrs: Mapping[str, Any]) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    """Everything the compiler knows about one IR op, in one place.

    name       the IR op name (Node.op)
    family     the registry file it lives in (linear, conv, elementwise, norm, scan, attention, structural)
    inputs     the node's inputs in order (Arg: name, optional, constant, variadic, dtypes)
    attrs      attributes every node of this op must carry; optional_attrs: those it may carry (with defaults)
    infer      shape inference: input TensorTypes + attrs -> [(shape, dtype)] per output; ShapeError (one line,
               naming the inputs and both shapes) when the inputs do not fit each other or the attrs
    reference  the numpy reference: input arrays (node order) + attrs -> output arrays; defines correct output
    macs       multiply-accumulates of one node: (input shapes, output shapes, attrs) -> int (an estimate for scan)
    scratch    bytes of per-node arena scratch the C kernel needs: (input shapes, attrs) -> int
    kernel     the C kernel symbol of firmware/kernels/ef_kernels.h the node calls (None: inline copy code)
    """

    name: str
    family: str
    inputs: tuple[Arg, ...]
    infer: Infer
    reference: Reference
    attrs: tuple[str, ...] = ()
    optional_attrs: tuple[str, ...] = ()
    macs: Macs = no_macs
    scratch: Scratch = no_scratch
    kernel: str | None = None

    def arity(self) -> tuple[int, int | None]:
        """(fewest, most) inputs a node may have; most None when the last input is variadic."""
        lo = sum(1 for a in self.inputs if not a.optional)
        hi = None if any(a.variadic for a in self.inputs) else len(self.inputs)
        return lo, hi

    def arg(self, i: int) -> Arg:
        """The Arg the i-th input binds to (a variadic last Arg takes every remaining input)."""
        return self.inputs[min(i, len(self.inputs) - 1)]


# ---- helpers for the infer functions -----------------------------------------------------------------------

def size(shape: Sequence[int]) -> int:
    return int(np.prod(shape)) if len(shape) else 1


def rank(t: TensorType, n: int, what: str) -> Shape:
    """The shape of t, which must have n dimensions."""
    if len(t.shape) != n:
        raise ShapeError(f"{what} must be {n}-d, got shape {t.shape}")
    return t.shape


def entries(t: TensorType, n: int, what: str, per: str) -> None:
    """t must hold n values (one per `per`), in any shape ((n,), (1, n) ...)."""
    if size(t.shape) != n:
        raise ShapeError(f"{what} has {size(t.shape)} entries, expected {n} (one per {per}; {what.split()[-1]} "
                         f"shape {t.shape})")


def same_shapes(ins: Sequence[TensorType], names: Sequence[str]) -> Shape:
    """All inputs share one shape (returned)."""
    for t, name in zip(ins[1:], names[1:], strict=False):
        if t.shape != ins[0].shape:
            raise ShapeError(f"input {name} has shape {t.shape}, input {names[0]} {ins[0].shape} (must be equal)")
    return ins[0].shape


def int_attr(attrs: Mapping[str, Any], key: str) -> int:
    v = attrs[key]
    try:
        return int(v)
    except (TypeError, ValueError):
        raise ShapeError(f"attribute {key} must be an integer, got {v!r}") from None


def int_list(attrs: Mapping[str, Any], key: str) -> list[int]:
    v = attrs[key]
    try:
        return [int(x) for x in np.asarray(v).reshape(-1).tolist()]
    except (TypeError, ValueError):
        raise ShapeError(f"attribute {key} must be a list of integers, got {v!r}") from None


def axis_of(attrs: Mapping[str, Any], shape: Shape, default: int) -> int:
    """The attribute axis (default `default`) as an index into shape."""
    ax = int(attrs.get("axis", default))
    if not -len(shape) <= ax < len(shape):
        raise ShapeError(f"axis {ax} is outside a {len(shape)}-d tensor (shape {shape})")
    return ax % len(shape)
