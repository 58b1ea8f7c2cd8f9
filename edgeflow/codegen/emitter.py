"""The state one network render shares: tensor names -> C expressions (arena, input, weights) from the plan."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeflow.codegen.c_weights import C_TYPES, WeightsWriter, c_ident
from edgeflow.errors import EdgeflowError
from edgeflow.ir.graph import Graph, Node
from edgeflow.plan.layout import pack_bits
from edgeflow.plan.liveness import scratch_name
from edgeflow.plan.memory import MemoryPlan


class CodegenError(EdgeflowError):
    """The graph cannot be rendered to C (unsupported op, shape or dtype), naming the node."""


def n_elems(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


def rows_cols(shape: tuple[int, ...]) -> tuple[int, int]:
    """A tensor as rows x row length: (L, C) -> (L, C); (C,) -> (1, C); (A, B, C) -> (A, B*C)."""
    if len(shape) <= 1:
        return 1, n_elems(shape)
    return int(shape[0]), n_elems(shape[1:])


def need(n: Node, lo: int, hi: int | None = None) -> None:
    """CodegenError unless node n has lo..hi inputs."""
    hi = lo if hi is None else hi
    if not lo <= len(n.inputs) <= hi:
        raise CodegenError(f"node '{n.name}' ({n.op}): expected {lo}..{hi} inputs, got {len(n.inputs)}")


@dataclass
class Emitter:
    """Turns tensor names into C expressions (arena pointers, the input, weight arrays) while nodes render; the
    external weight image's bytes collect in `ext` (offset -> blob) at the offsets the plan gave them."""

    graph: Graph
    plan: MemoryPlan
    weights: WeightsWriter
    node_weights: dict[str, int] = field(default_factory=dict)
    ext: dict[int, np.ndarray] = field(default_factory=dict)
    arena_views: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # buffer -> (ident, ctype, offset)

    @property
    def views(self) -> dict[str, str]:
        return self.plan.flip_views

    def act(self, name: str) -> str:
        """Pointer expression of an activation (arena offset, or the caller's input; a view: its base's)."""
        name = self.plan.aliases.get(name, name)
        t = self.graph.tensors[name]
        ctype = C_TYPES.get(t.dtype)
        if ctype is None:
            raise CodegenError(f"tensor '{name}': dtype {t.dtype} has no C type")
        if name in self.graph.inputs:
            return "input"
        if t.data is not None:
            return self.const(name)
        return self.arena(name, ctype)

    def arena(self, name: str, ctype: str) -> str:
        """The named view (`static ctype *const a_<name>`) of buffer `name` at its planned arena offset."""
        if name not in self.plan.arena.offsets:
            raise CodegenError(f"tensor '{name}' has no arena offset")
        if name not in self.arena_views:
            base, taken = c_ident(name, "a_"), {v[0] for v in self.arena_views.values()}
            ident, i = base, 1
            while ident in taken:
                ident, i = f"{base}_{i}", i + 1
            self.arena_views[name] = (ident, ctype, self.plan.arena.offsets[name])
        return self.arena_views[name][0]

    def view_decls(self) -> list[str]:
        """C declarations of the arena views used, in first-use order."""
        return [f"static EF_UNUSED {ctype} *const {ident} = ({ctype} *)(void *)(EF_ARENA + {off});  /* {name} */"
                for name, (ident, ctype, off) in self.arena_views.items()]

    def scratch(self, n: Node) -> str:
        return self.arena(scratch_name(n), "int32_t")

    def const(self, name: str, kind: str = "plain") -> str:
        t = self.graph.tensors[name]
        if t.data is None:
            raise CodegenError(f"tensor '{name}' must be a constant here")
        ident = self.weights.array(name, kind)
        self.node_weights[ident] = self.weights.nbytes[ident]
        return ident

    def opt_const(self, node: Node, i: int, kind: str = "plain") -> str:
        return self.const(node.inputs[i], kind) if len(node.inputs) > i else "NULL"

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.graph.tensors[name].shape)

    def bits(self, name: str) -> int:
        return pack_bits(self.graph.tensors[name].bits)
