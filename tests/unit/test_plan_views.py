"""Reshape views in the memory plan: a view has no buffer of its own, its base lives as long as the view is read,
chains of views and views of the graph input resolve to the base, and the C renders the view as its base."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.ir.graph import Graph, Node, Tensor, verify
from edgeflow.plan.liveness import activation_buffers, aliases
from edgeflow.plan.memory import plan_memory

pytestmark = pytest.mark.unit


def _graph() -> Graph:
    """x (4, 6) -> transpose a (6, 4) -> reshape v (24,) -> reshape v2 (2, 12) -> add y, which also reads
    reshape xi (24,) of the input -> lut b -> reshape bv (2, 12)."""
    g = Graph("views")
    shapes = {"x": (4, 6), "a": (6, 4), "v": (24,), "v2": (2, 12), "xi": (24,), "b": (24,), "bv": (2, 12),
              "y": (2, 12)}
    for name, shape in shapes.items():
        g.add_tensor(Tensor(name, shape, "int8", 8, 0.1))
    g.add_tensor(Tensor("t", (256,), "int8", 8, None, 0, np.zeros(256, np.int8)))
    g.inputs, g.outputs = ["x"], ["y"]
    g.add_node(Node("a", "transpose", ["x"], ["a"], {"perm": [1, 0]}))
    g.add_node(Node("v", "reshape", ["a"], ["v"], {"shape": [24]}))
    g.add_node(Node("v2", "reshape", ["v"], ["v2"], {"shape": [2, 12]}))
    g.add_node(Node("xi", "reshape", ["x"], ["xi"], {"shape": [24]}))
    g.add_node(Node("b", "lut", ["xi", "t"], ["b"]))
    g.add_node(Node("bv", "reshape", ["b"], ["bv"], {"shape": [2, 12]}))
    g.add_node(Node("y", "add_requant", ["v2", "bv"], ["y"], {"M": [1 << 20, 1 << 20], "S": 20}))
    verify(g)
    return g


def test_views_have_no_buffer_and_keep_their_base_alive():
    g = _graph()
    assert aliases(g) == {"v": "a", "v2": "a", "xi": "x", "bv": "b"}
    bufs = {b.name: b for b in activation_buffers(g)}
    assert set(bufs) == {"a", "b", "y"}
    assert (bufs["a"].first, bufs["a"].last) == (0, 6)     # read through v2 by the last node
    plan = plan_memory(g)
    assert plan.aliases == aliases(g) and plan.to_dict()["aliases"] == aliases(g)
    assert plan.arena.offsets["a"] != plan.arena.offsets["b"]
