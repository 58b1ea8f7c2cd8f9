"""The IR: tensors with explicit integer types and scales, one node type, a graph, JSON/npz storage and verify()."""

from __future__ import annotations

import copy as _copy
import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.errors import EdgeflowError
from edgeflow.ir.opdefs import OPDEFS

#: dtype name -> storage width in bits.
DTYPES: dict[str, int] = {"int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "int32": 32, "int64": 64, "float32": 32}
#: dtypes whose tensors may have scale None (accumulators, biases, multipliers, shifts: raw integers).
UNSCALED_DTYPES = frozenset({"int32", "int64"})
GRAPH_FILE = "graph.json"
WEIGHTS_FILE = "weights.npz"
FORMAT_VERSION = 1


class IRError(EdgeflowError):
    """An invalid IR graph (one line naming the node or tensor)."""


def known_ops() -> frozenset[str]:
    """Every op name verify() accepts: the ops of the registry (edgeflow.ir.opdefs)."""
    return frozenset(OPDEFS)


def _same(a: Any, b: Any) -> bool:
    """Structural equality that compares numpy arrays by dtype, shape and values."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and bool(np.array_equal(a, b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@dataclass(eq=False)
class Tensor:
    """A value of the graph. Integer tensors carry scale (float, or 1-d per-channel array) and zero point;
    `data` holds the values of constants (weights, tables); `layout` names a storage layout ("" = plain)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    bits: int
    scale: float | np.ndarray | None
    zero_point: int = 0
    data: np.ndarray | None = None
    layout: str = ""

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def __eq__(self, other: object) -> bool:
        keys = ("name", "shape", "dtype", "bits", "scale", "zero_point", "data", "layout")
        return isinstance(other, Tensor) and all(_same(getattr(self, k), getattr(other, k)) for k in keys)


@dataclass(eq=False)
class Node:
    """One operation: op name, input and output tensor names, attributes (ints, floats, strings, arrays)."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and all(_same(getattr(self, k), getattr(other, k))
                                               for k in ("name", "op", "inputs", "outputs", "attrs"))


@dataclass(eq=False)
class Graph:
    """Tensors by name, nodes in execution order, graph input/output tensor names, free-form metadata."""

    name: str
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Graph) and all(_same(getattr(self, k), getattr(other, k))
                                                for k in ("name", "tensors", "nodes", "inputs", "outputs", "meta"))

    # ---- queries -------------------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise IRError(f"graph '{self.name}': no node '{name}'")

    def producer(self, tensor_name: str) -> Node | None:
        """The node writing `tensor_name` (None for graph inputs and constants)."""
        return next((n for n in self.nodes if tensor_name in n.outputs), None)

    def consumers(self, tensor_name: str) -> list[Node]:
        """Nodes reading `tensor_name`, in node order."""
        return [n for n in self.nodes if tensor_name in n.inputs]

    # ---- edits (in place; passes copy() first) ------------------------------------------------------------
    def add_tensor(self, tensor: Tensor) -> Tensor:
        if tensor.name in self.tensors:
            raise IRError(f"graph '{self.name}': tensor '{tensor.name}' already exists")
        self.tensors[tensor.name] = tensor
        return tensor

    def add_node(self, node: Node) -> Node:
        if any(n.name == node.name for n in self.nodes):
            raise IRError(f"graph '{self.name}': node '{node.name}' already exists")
        self.nodes.append(node)
        return node

    def replace_node(self, name: str, new: Node | list[Node]) -> None:
        """Put `new` (one node or several, in order) where node `name` was."""
        idx = next((i for i, n in enumerate(self.nodes) if n.name == name), None)
        if idx is None:
            raise IRError(f"graph '{self.name}': no node '{name}' to replace")
        repl = [new] if isinstance(new, Node) else list(new)
        others = {n.name for i, n in enumerate(self.nodes) if i != idx}
        for n in repl:
            if n.name in others:
                raise IRError(f"graph '{self.name}': node '{n.name}' already exists")
        self.nodes[idx:idx + 1] = repl

    # ---- whole-graph transforms ------------------------------------------------------------------------
    def copy(self) -> Graph:
        """A deep copy of the structure (tensors, nodes, attrs, meta); constant arrays are shared, not copied."""
        tensors = {k: Tensor(t.name, tuple(t.shape), t.dtype, t.bits, _copy.deepcopy(t.scale), t.zero_point,
                             t.data, t.layout) for k, t in self.tensors.items()}
        nodes = [Node(n.name, n.op, list(n.inputs), list(n.outputs), _copy.deepcopy(n.attrs)) for n in self.nodes]
        return Graph(self.name, tensors, nodes, list(self.inputs), list(self.outputs), _copy.deepcopy(self.meta))

    def topo_sort(self) -> Graph:
        """A copy with nodes in topological order; among ready nodes the earliest in the current list goes first
        (deterministic, and the identity on an already ordered graph). IRError on a cycle."""
        prod: dict[str, int] = {}
        for i, n in enumerate(self.nodes):
            for t in n.outputs:
                prod.setdefault(t, i)
        deps = [{prod[t] for t in n.inputs if t in prod} for n in self.nodes]
        users: list[list[int]] = [[] for _ in self.nodes]
        for i, d in enumerate(deps):
            for j in d:
                users[j].append(i)
        missing = [len(d) for d in deps]
        ready = [i for i, m in enumerate(missing) if m == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            i = heapq.heappop(ready)
            order.append(i)
            for u in users[i]:
                missing[u] -= 1
                if missing[u] == 0:
                    heapq.heappush(ready, u)
        if len(order) < len(self.nodes):
            stuck, seen, done = min(set(range(len(self.nodes))) - set(order)), set(), set(order)
            while stuck not in seen:  # walk unresolved dependencies until one repeats: it lies on a cycle
                seen.add(stuck)
                stuck = min(deps[stuck] - done)
            raise IRError(f"graph '{self.name}': cycle through node '{self.nodes[stuck].name}'")
        g = self.copy()
        g.nodes = [g.nodes[i] for i in order]
        return g

    # ---- storage -----------------------------------------------------------------------------------------
    def to_json(self) -> str:
        """The graph as JSON; constant data is referenced by key ("data": "c0") and stored by `save` in an npz."""
        keys = _constant_keys(self)
        tensors = []
        for t in self.tensors.values():
            tensors.append({"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "bits": t.bits,
                            "scale": _enc(t.scale), "zero_point": t.zero_point,
                            "data": keys.get(t.name), "layout": t.layout})
        nodes = [{"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs, "attrs": _enc(n.attrs)}
                 for n in self.nodes]
        doc = {"format": FORMAT_VERSION, "name": self.name, "inputs": self.inputs, "outputs": self.outputs,
               "meta": _enc(self.meta), "tensors": tensors, "nodes": nodes}
        return json.dumps(doc, indent=1)

    def constants(self) -> dict[str, np.ndarray]:
        """npz key -> array of every constant tensor (the keys `to_json` writes)."""
        return {key: self.tensors[name].data for name, key in _constant_keys(self).items()}  # type: ignore[misc]

    @classmethod
    def from_json(cls, text: str, constants: dict[str, np.ndarray] | None = None) -> Graph:
        """Inverse of `to_json`; `constants` maps the data keys to arrays (IRError if one is missing)."""
        doc = json.loads(text)
        if doc.get("format") != FORMAT_VERSION:
            raise IRError(f"graph json: format {doc.get('format')!r} is not {FORMAT_VERSION}")
        consts = constants or {}
        g = cls(doc["name"], inputs=list(doc["inputs"]), outputs=list(doc["outputs"]), meta=_dec(doc["meta"]))
        for t in doc["tensors"]:
            data = None
            if t["data"] is not None:
                if t["data"] not in consts:
                    raise IRError(f"tensor '{t['name']}': constant data '{t['data']}' missing from the weights")
                data = np.asarray(consts[t["data"]])
            g.add_tensor(Tensor(t["name"], tuple(t["shape"]), t["dtype"], t["bits"], _dec(t["scale"]),
                                t["zero_point"], data, t["layout"]))
        for n in doc["nodes"]:
            g.nodes.append(Node(n["name"], n["op"], list(n["inputs"]), list(n["outputs"]), _dec(n["attrs"])))
        return g

    def save(self, directory: str | Path) -> Path:
        """Write <directory>/graph.json and <directory>/weights.npz; returns the directory."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / GRAPH_FILE).write_text(self.to_json() + "\n", encoding="utf-8")
        np.savez(d / WEIGHTS_FILE, **self.constants())
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Graph:
        """Read a graph written by `save`."""
        d = Path(directory)
        try:
            text = (d / GRAPH_FILE).read_text(encoding="utf-8")
            with np.load(d / WEIGHTS_FILE, allow_pickle=False) as npz:
                consts = {k: npz[k] for k in npz.files}
        except OSError as exc:
            raise IRError(f"{d}: cannot read graph: {exc}") from None
        return cls.from_json(text, consts)

    def summary(self) -> str:
        """A readable table: one line per node with its op, inputs and output shapes/dtypes/bits."""
        def desc(name: str) -> str:
            t = self.tensors.get(name)
            return f"{name}?" if t is None else f"{name}{list(t.shape)}:{t.dtype}/{t.bits}"
        n_const = sum(t.data.nbytes for t in self.tensors.values() if t.data is not None)
        lines = [f"graph '{self.name}': {len(self.nodes)} nodes, {len(self.tensors)} tensors, {n_const} constant bytes",
                 "  inputs:  " + ", ".join(desc(t) for t in self.inputs),
                 "  outputs: " + ", ".join(desc(t) for t in self.outputs)]
        width = max((len(n.name) for n in self.nodes), default=0)
        for n in self.nodes:
            lines.append(f"  {n.name:<{width}}  {n.op:<16} {', '.join(n.inputs)} -> "
                         + ", ".join(desc(t) for t in n.outputs))
        return "\n".join(lines)


def _constant_keys(g: Graph) -> dict[str, str]:
    """Constant tensor name -> npz key (c0, c1, ... in tensor order; names may hold characters npz dislikes)."""
    names = [t.name for t in g.tensors.values() if t.data is not None]
    return {name: f"c{i}" for i, name in enumerate(names)}


def _enc(v: Any) -> Any:
    """JSON encoding that keeps numpy arrays (dtype, shape), numpy scalars and tuples."""
    if isinstance(v, np.ndarray):
        return {"__ndarray__": v.tolist(), "dtype": str(v.dtype), "shape": list(v.shape)}
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return {"__tuple__": [_enc(x) for x in v]}
    if isinstance(v, list):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise IRError(f"attribute dict keys must be strings, got {list(v)}")
        return {k: _enc(x) for k, x in v.items()}
    if v is None or isinstance(v, bool | int | float | str):
        return v
    raise IRError(f"value of type {type(v).__name__} cannot be stored in graph json")


def _dec(v: Any) -> Any:
    if isinstance(v, dict):
        if "__ndarray__" in v:
            return np.asarray(v["__ndarray__"], dtype=v["dtype"]).reshape(v["shape"])
        if "__tuple__" in v:
            return tuple(_dec(x) for x in v["__tuple__"])
        return {k: _dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_dec(x) for x in v]
    return v


# ---- verify ----------------------------------------------------------------------------------------------

def verify(graph: Graph) -> None:
    """Check the invariants every pass keeps and every node against its OpDef (arity, attributes, shapes);
    IRError (one line naming the node or tensor) on the first problem. The checks live in ir/verify.py."""
    from edgeflow.ir.verify import verify_graph

    verify_graph(graph)


__all__ = ["DTYPES", "UNSCALED_DTYPES", "Graph", "IRError", "Node", "Tensor", "known_ops",
           "verify"]
