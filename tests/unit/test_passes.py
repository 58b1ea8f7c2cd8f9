"""Passes: each is a pure Graph -> Graph that keeps the reference outputs bit-identical and verify() green."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeflow.ir.from_onnx import load_onnx
from edgeflow.ir.graph import Graph, IRError, Node, Tensor, verify
from edgeflow.ir.reference import run
from edgeflow.passes import PASSES, run_pipeline
from edgeflow.passes.compose_luts import compose_luts
from edgeflow.passes.dead_code import dead_code
from edgeflow.passes.fold_identity import fold_identity

pytestmark = pytest.mark.unit
CASES = Path(__file__).resolve().parents[1] / "cases"


def lut_graph() -> Graph:
    """x -> lut(t1) -> identity -> lut(t2) -> z, plus a dead lut branch."""
    rng = np.random.default_rng(1)
    g = Graph("luts")
    g.add_tensor(Tensor("x", (3, 5), "int8", 8, 0.1))
    for name in ("a", "b", "z", "dead"):
        g.add_tensor(Tensor(name, (3, 5), "int8", 8, 0.1))
    for t in ("t1", "t2", "t3"):
        g.add_tensor(Tensor(t, (256,), "int8", 8, 0.1, data=rng.integers(-128, 128, 256).astype(np.int8)))
    g.add_node(Node("l1", "lut", ["x", "t1"], ["a"]))
    g.add_node(Node("id", "identity", ["a"], ["b"]))
    g.add_node(Node("unused", "lut", ["x", "t3"], ["dead"]))
    g.add_node(Node("l2", "lut", ["b", "t2"], ["z"]))
    g.inputs, g.outputs = ["x"], ["z"]
    verify(g)
    return g


def _same_outputs(a: Graph, b: Graph, xs: np.ndarray) -> None:
    for x in xs:
        ra, rb = run(a, x)[a.outputs[0]], run(b, x)[b.outputs[0]]
        assert np.array_equal(ra, rb)


def test_each_pass_is_pure_and_exact():
    g = lut_graph()
    before = g.copy()
    xs = np.arange(-128, 127, dtype=np.int8)[: 3 * 5 * 16].reshape(16, 3, 5)
    for fn, gone in ((fold_identity, "id"), (dead_code, "unused")):
        h = fn(g)
        verify(h)
        assert g == before, f"{fn.__name__} changed its input graph"
        assert gone not in [n.name for n in h.nodes]
        _same_outputs(g, h, xs)
    h = compose_luts(fold_identity(g))
    assert [n.op for n in h.nodes].count("lut") == 2  # l1 and l2 fused; the dead one remains until dead_code
    _same_outputs(g, h, xs)


def test_pipeline_on_lut_graph_leaves_one_node():
    g = lut_graph()
    h = run_pipeline(g)
    assert [n.op for n in h.nodes] == ["lut"]
    assert "t3" not in h.tensors and "dead" not in h.tensors
    xs = np.random.default_rng(2).integers(-128, 128, (32, 3, 5)).astype(np.int8)
    _same_outputs(g, h, xs)


def test_graph_output_of_identity_is_kept():
    g = lut_graph()
    g.outputs = ["b"]
    h = fold_identity(g)
    assert "id" in [n.name for n in h.nodes]


def test_pipeline_names_the_pass_that_breaks_the_graph():
    def breaker(graph: Graph) -> Graph:
        h = graph.copy()
        h.nodes[0].inputs = ["nowhere", h.nodes[0].inputs[1]]
        return h

    with pytest.raises(IRError, match="after pass 'breaker'"):
        run_pipeline(lut_graph(), [("breaker", breaker)])


@pytest.mark.parametrize("case", ["femba-micro-w2", "vit-tiny-w2"])
def test_pipeline_keeps_golden_models_bit_exact(case):
    g = load_onnx(CASES / case / "model.onnx")
    h = run_pipeline(g)
    assert [name for name, _ in PASSES] == ["fold_identity", "compose_luts", "dead_code"]
    xs = np.load(CASES / case / "inputs.npz")
    x = xs[xs.files[0]][:3]
    _same_outputs(g, h, x.reshape(len(x), *g.tensors[g.inputs[0]].shape))
