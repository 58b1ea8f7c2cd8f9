"""IR graph: building, verify() errors naming the culprit, topological sort, copy and json/npz round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest

from edgeflow.errors import EdgeflowError
from edgeflow.ir import ops
from edgeflow.ir.graph import Graph, IRError, Node, Tensor, known_ops, verify

pytestmark = pytest.mark.unit


def small_graph() -> Graph:
    """x (4, 8) int8 -> linear (4-bit per-channel weights) -> lut -> z (4, 6) int8."""
    rng = np.random.default_rng(0)
    g = Graph("small", meta={"model": "test", "window": (4, 8)})
    g.add_tensor(Tensor("x", (4, 8), "int8", 8, 0.05))
    g.add_tensor(Tensor("w", (6, 8), "int8", 4, np.linspace(0.01, 0.02, 6),
                        data=rng.integers(-8, 8, (6, 8)).astype(np.int8)))
    g.add_tensor(Tensor("b", (6,), "int32", 32, None, data=rng.integers(-100, 100, 6).astype(np.int32)))
    g.add_tensor(Tensor("m", (6,), "int32", 32, None, data=np.full(6, 1 << 30, dtype=np.int32)))
    g.add_tensor(Tensor("sh", (6,), "int32", 32, None, data=np.full(6, 33, dtype=np.int32)))
    g.add_tensor(Tensor("y", (4, 6), "int8", 8, 0.1))
    g.add_tensor(Tensor("table", (256,), "int8", 8, 0.02, data=(np.arange(256) - 128).astype(np.int8) // 2))
    g.add_tensor(Tensor("z", (4, 6), "int8", 8, 0.02))
    g.add_node(Node("fc", "linear", ["x", "w", "b", "m", "sh"], ["y"], {"weight_bits": 4}))
    g.add_node(Node("act", "lut", ["y", "table"], ["z"], {"fn": "silu", "m": np.array([3, 4], dtype=np.int32)}))
    g.inputs, g.outputs = ["x"], ["z"]
    return g


def chain_graph(n: int = 8) -> Graph:
    """x -> n1 -> n2 ... with a skip branch, for ordering tests."""
    g = Graph("chain")
    g.add_tensor(Tensor("t0", (2, 3), "int8", 8, 0.1))
    for i in range(1, n + 1):
        g.add_tensor(Tensor(f"t{i}", (2, 3), "int8", 8, 0.1))
        ins = [f"t{i - 1}"] + ([f"t{i - 2}"] if i >= 2 else [])
        g.add_node(Node(f"n{i}", "add_requant", ins, [f"t{i}"], {"M": np.full(len(ins), 1 << 20), "S": 20}))
    g.inputs, g.outputs = ["t0"], [f"t{n}"]
    return g


def fails(g: Graph, *parts: str) -> str:
    with pytest.raises(IRError) as info:
        verify(g)
    msg = str(info.value)
    assert "\n" not in msg and isinstance(info.value, EdgeflowError)
    for p in parts:
        assert p in msg, msg
    return msg


def test_small_graph_verifies_and_runs():
    g = small_graph()
    verify(g)
    assert {"linear", "lut", "reshape", "concat"} <= known_ops()
    x = np.arange(32, dtype=np.int8).reshape(4, 8) - 16
    t = g.tensors
    y = ops.linear(x, t["w"].data, t["b"].data, t["m"].data, t["sh"].data)
    z = ops.lut(y, t["table"].data)
    assert y.shape == t["y"].shape and z.shape == t["z"].shape


def test_producer_consumers():
    g = small_graph()
    assert g.producer("y").name == "fc" and g.producer("x") is None and g.producer("w") is None
    assert [n.name for n in g.consumers("y")] == ["act"] and g.consumers("z") == []
    assert g.node("act").op == "lut"


def test_summary_mentions_nodes_and_shapes():
    s = small_graph().summary()
    assert "graph 'small': 2 nodes" in s and "fc" in s and "lut" in s and "z[4, 6]:int8/8" in s


def test_topo_sort_restores_order():
    g = chain_graph()
    verify(g)
    names = [n.name for n in g.nodes]
    for seed in range(5):
        h = g.copy()
        random.Random(seed).shuffle(h.nodes)
        s = h.topo_sort()
        assert [n.name for n in s.nodes] == names
        verify(s)
    assert g.topo_sort() == g


def test_topo_sort_is_deterministic_for_independent_nodes():
    g = Graph("par", inputs=["x"], outputs=["a", "b"])
    for t in ("x", "a", "b"):
        g.add_tensor(Tensor(t, (2,), "int8", 8, 1.0))
    g.add_node(Node("nb", "identity", ["x"], ["b"]))
    g.add_node(Node("na", "identity", ["x"], ["a"]))
    assert [n.name for n in g.topo_sort().nodes] == ["nb", "na"]


def test_copy_is_deep_but_shares_constants():
    g = small_graph()
    h = g.copy()
    assert h == g
    assert h.tensors["w"].data is g.tensors["w"].data
    h.nodes[0].attrs["weight_bits"] = 2
    h.nodes[0].inputs.append("q")
    h.tensors["x"].scale = 0.5
    assert g.nodes[0].attrs["weight_bits"] == 4 and "q" not in g.nodes[0].inputs and g.tensors["x"].scale == 0.05


def test_json_round_trip(tmp_path):
    g = small_graph()
    d = g.save(tmp_path / "g")
    assert (d / "graph.json").is_file() and (d / "weights.npz").is_file()
    h = Graph.load(d)
    assert h == g
    assert h.tensors["w"].data.dtype == np.int8 and isinstance(h.tensors["w"].scale, np.ndarray)
    assert h.meta["window"] == (4, 8) and h.nodes[1].attrs["m"].dtype == np.int32
    verify(h)
    h.tensors["w"].data = h.tensors["w"].data.copy()
    h.tensors["w"].data[0, 0] += 1
    assert h != g


def test_json_keeps_constants_out():
    g = small_graph()
    text = g.to_json()
    assert '"data": "c0"' in text and str(g.tensors["w"].data.tolist()[0]) not in text
    with pytest.raises(IRError, match="tensor 'w': constant data 'c0' missing"):
        Graph.from_json(text)
    assert Graph.from_json(text, g.constants()) == g


def test_replace_node():
    g = small_graph()
    g.add_tensor(Tensor("z0", (4, 6), "int8", 8, 0.02))
    g.replace_node("act", [Node("act0", "lut", ["y", "table"], ["z0"]), Node("act1", "identity", ["z0"], ["z"])])
    verify(g)
    assert [n.name for n in g.nodes] == ["fc", "act0", "act1"]
    with pytest.raises(IRError, match="node 'fc' already exists"):
        g.replace_node("act1", Node("fc", "identity", ["z0"], ["z"]))
    with pytest.raises(IRError, match="tensor 'x' already exists"):
        g.add_tensor(Tensor("x", (1,), "int8", 8, 1.0))


# ---- verify errors: one per rule, each naming the culprit ---------------------------------------------------

def test_unknown_op():
    g = small_graph()
    g.nodes[1].op = "gelu_magic"
    fails(g, "node 'act'", "unknown op 'gelu_magic'")


def test_dangling_input():
    g = small_graph()
    g.nodes[1].inputs[1] = "tabel"
    fails(g, "node 'act'", "input 'tabel' is not a tensor")


def test_input_never_produced():
    g = small_graph()
    g.add_tensor(Tensor("ghost", (4, 6), "int8", 8, 0.1))
    g.nodes[1].inputs[0] = "ghost"
    fails(g, "node 'act'", "input 'ghost' is never produced")


def test_two_producers():
    g = small_graph()
    g.add_node(Node("fc2", "identity", ["x"], ["y"]))
    fails(g, "node 'fc2'", "tensor 'y' already produced by node 'fc'")


def test_graph_input_produced():
    g = small_graph()
    g.nodes[1].outputs = ["x"]
    fails(g, "node 'act'", "writes graph input 'x'")


def test_constant_produced():
    g = small_graph()
    g.nodes[1].outputs = ["table"]
    fails(g, "node 'act'", "writes constant tensor 'table'")


def test_output_never_produced():
    g = small_graph()
    g.add_tensor(Tensor("extra", (4, 6), "int8", 8, 0.1))
    g.outputs.append("extra")
    fails(g, "graph output 'extra' is never produced")


def test_output_missing():
    g = small_graph()
    g.outputs = ["zz"]
    fails(g, "graph output 'zz' is not a tensor")


def test_not_topological():
    g = small_graph()
    g.nodes.reverse()
    fails(g, "node 'act'", "not in topological order", "'y'", "node 'fc'")


def test_cycle():
    g = chain_graph(4)
    g.nodes[0].inputs.append("t3")
    fails(g, "cycle through node 'n1'")


def test_cycle_names_a_node_on_the_cycle():
    g = Graph("cyc", inputs=["x"], outputs=["d"])
    for t in ("x", "a", "b", "d"):
        g.add_tensor(Tensor(t, (2,), "int8", 8, 1.0))
    g.add_node(Node("down", "identity", ["b"], ["d"]))      # first in the list, but only downstream of the cycle
    g.add_node(Node("na", "add_requant", ["x", "b"], ["a"]))
    g.add_node(Node("nb", "identity", ["a"], ["b"]))
    msg = fails(g, "cycle through node")
    assert "'na'" in msg or "'nb'" in msg


def test_self_cycle():
    g = chain_graph(3)
    g.nodes[1].inputs.append("t2")
    fails(g, "cycle through node 'n2'")


def test_duplicate_node_name():
    g = small_graph()
    g.nodes[1].name = "fc"
    fails(g, "node 'fc'", "used twice")


@pytest.mark.parametrize("edit, expected", [
    (dict(dtype="int7"), "dtype 'int7'"),
    (dict(bits=9), "bits 9 outside 1..8 for int8"),
    (dict(bits=0), "bits 0 outside"),
    (dict(scale=None), "int8 activation needs a scale"),
    (dict(scale=0.0), "scale must be a finite float > 0"),
    (dict(scale=float("nan")), "scale must be a finite float > 0"),
    (dict(scale=np.array([0.1, -0.1])), "scale must be a finite float > 0"),
    (dict(shape=(4, 0)), "shape (4, 0) must be a tuple of positive ints"),
    (dict(shape=[4, 6]), "must be a tuple"),
    (dict(zero_point=200), "zero_point 200 outside [-128, 127]"),
    (dict(dtype="float32", bits=32), "float32 needs bits 32, scale None"),
])
def test_bad_activation_tensor(edit, expected):
    g = small_graph()
    for k, v in edit.items():
        setattr(g.tensors["y"], k, v)
    fails(g, "tensor 'y'", expected)


def test_int32_may_be_unscaled_and_float32_valid():
    g = small_graph()
    g.tensors["acc"] = Tensor("acc", (4, 6), "int32", 32, None)   # an accumulator (y itself must stay int8: linear)
    g.tensors["f"] = Tensor("f", (3,), "float32", 32, None, data=np.zeros(3, np.float32))
    verify(g)


@pytest.mark.parametrize("data, expected", [
    (np.zeros((6, 8), dtype=np.int16), "constant data is int16 (6, 8), declared int8 (6, 8)"),
    (np.zeros((8, 6), dtype=np.int8), "constant data is int8 (8, 6), declared int8 (6, 8)"),
    (np.full((6, 8), 9, dtype=np.int8), "constant values [9, 9] outside 4-bit [-8, 7]"),
    ([[0] * 8] * 6, "constant data is list"),
])
def test_bad_constant(data, expected):
    g = small_graph()
    g.tensors["w"].data = data
    fails(g, "tensor 'w'", expected)


def test_tensor_key_mismatch():
    g = small_graph()
    g.tensors["y"].name = "yy"
    fails(g, "tensor 'y'", "different name ('yy')")


def test_graph_input_constant_or_missing():
    g = small_graph()
    g.inputs = ["w"]
    fails(g, "graph input 'w' is a constant")
    g.inputs = ["q"]
    fails(g, "graph input 'q' is not a tensor")
