"""Lookup tables fused into the layer before them (MemoryPlan.fused_luts): on a multi-core target every lut whose
input only a `linear` or a `dwconv1d_causal` reads is applied by that layer to each tile (block) in L1, its output
is the producer's buffer (an alias that keeps the buffer alive for the lut's readers), its layer renders no call,
the linear's descriptor carries the table and the conv calls ef_dwconv1d_causal_lut_i8; a single-core target
(host, rv32) keeps the lut layers. The bytes are
checked on GVSoC (tests/gvsoc/test_pulp_open.py: femba-micro and femba-mini bit-exact on 8 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeflow.codegen.c_network import render_network
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.plan.liveness import activation_buffers, fused_luts
from edgeflow.plan.memory import plan_memory
from edgeflow.target import load_target

pytestmark = pytest.mark.unit
CASES = Path(__file__).resolve().parents[1] / "cases"


@pytest.fixture(scope="module")
def micro():
    return load_onnx(CASES / "femba-micro-w2" / "model.onnx")


def test_luts_after_linears_fuse_on_the_cluster_only(micro):
    expect = {n.name: micro.producer(n.inputs[0]).name for n in micro.nodes
              if n.op == "lut" and micro.producer(n.inputs[0]).op in ("linear", "dwconv1d_causal")
              and len(micro.consumers(n.inputs[0])) == 1}
    # femba's dt_proj -> softplus, in_proj.1 -> SiLU gate, conv -> SiLU: every lut of the model
    assert fused_luts(micro) == expect and set(expect) == {n.name for n in micro.nodes if n.op == "lut"}
    assert {micro.node(p).op for p in expect.values()} == {"linear", "dwconv1d_causal"}
    plan = plan_memory(micro, load_target("pulp-open"))
    assert plan.fused_luts == expect and plan.to_dict()["fused_luts"] == expect
    for lut, lin in expect.items():
        out, src = micro.node(lut).outputs[0], micro.node(lin).outputs[0]
        assert plan.aliases[out] == src and out not in plan.arena.offsets
        step = next(s for s in plan.steps if s.node == lut)
        assert step.run == "fused" and plan.node_weight_bytes[lut] == 0
    for name in ("host", "rv32-virt"):
        assert plan_memory(micro, load_target(name)).fused_luts == {}


def test_fused_lut_base_lives_to_the_luts_last_reader(micro):
    fused = fused_luts(micro)
    lut = next(iter(fused))
    src, out = micro.node(lut).inputs[0], micro.node(lut).outputs[0]
    steps = {n.name: i for i, n in enumerate(micro.nodes)}
    last_reader = max(steps[c.name] for c in micro.consumers(out))
    bufs = {b.name: b for b in activation_buffers(micro, {out: src})}
    assert out not in bufs and bufs[src].last == last_reader > steps[lut]


def test_fused_lut_renders_no_call_and_the_table_in_the_descriptor(micro):
    plan = plan_memory(micro, load_target("pulp-open"))
    src = render_network(micro, plan)
    net, weights = src.files["network.c"], src.files["weights.h"]
    for lin in plan.fused_luts.values():
        assert f"the table applied by {lin} in L1 (no call)" in net
    assert "ef_lut_i8(" not in net
    convs = sum(1 for p in plan.fused_luts.values() if micro.node(p).op == "dwconv1d_causal")
    assert net.count("ef_dwconv1d_causal_lut_i8_args(") == convs and "ef_dwconv1d_causal_i8_args(" not in net
    descs = [ln for ln in weights.splitlines() if ln.startswith("static const ef_tiled_linear_t")]
    assert sum(not ln.rstrip().endswith(", NULL};") for ln in descs) == len(plan.fused_luts) - convs


def test_alias_chains_resolve_to_the_producers_buffer():
    """A reshape of a fused lut's output (an ONNX model's Relu -> QuantizeLinear -> Reshape) reads the producer's
    buffer: the merged alias map follows every chain to its base."""
    from edgeflow.plan.liveness import merge_aliases
    assert merge_aliases({"view": "lut_out", "v2": "view"}, {"lut_out": "lin_out"}) == {
        "view": "lin_out", "v2": "lin_out", "lut_out": "lin_out"}
    assert merge_aliases({"a": "b"}, {}) == {"a": "b"}
