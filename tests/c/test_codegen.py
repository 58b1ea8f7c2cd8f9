"""Generated C (host backend) against the numpy reference, bit for bit: femba-micro, structural ops, errors."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from edgeflow.backends import BACKENDS
from edgeflow.backends.host import compile_host, run_binary
from edgeflow.codegen import c_ops
from edgeflow.codegen.c_ops import CodegenError
from edgeflow.codegen.c_tiled import render_runner
from edgeflow.codegen.prototypes import kernel_prototypes
from edgeflow.ir.from_onnx import load_onnx, quantize_input
from edgeflow.ir.graph import Graph, Node, Tensor
from edgeflow.ir.ops import add_requant_params
from edgeflow.ir.reference import run
from edgeflow.plan.arena import ArenaPlan, verify_arena
from edgeflow.plan.liveness import activation_buffers

from .models import femba_micro_onnx

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not found")]

N_WINDOWS = 128


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> Graph:
    return load_onnx(femba_micro_onnx(tmp_path_factory))


@pytest.fixture(scope="module")
def micro_build(micro, tmp_path_factory):
    return compile_host(micro, tmp_path_factory.mktemp("build"))


def _reference(graph: Graph, windows: np.ndarray) -> np.ndarray:
    return np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in windows])


def test_femba_micro_bit_exact(micro, micro_build):
    """The host binary, run once over N_WINDOWS quantized normal windows, equals reference.run exactly."""
    xs = np.random.default_rng(3).standard_normal((N_WINDOWS, 22, 1280)).astype(np.float32)
    q = np.stack([quantize_input(x, micro) for x in xs])
    n_out = int(np.prod(micro.tensors[micro.outputs[0]].shape))
    got = run_binary(micro_build.binary, q, n_out)
    want = _reference(micro, q)
    mismatched = int((got != want).any(axis=1).sum())
    print(f"femba-micro: {N_WINDOWS} windows, {mismatched} mismatched, arena {micro_build.plan['size']} bytes")
    assert mismatched == 0
    assert len({tuple(r) for r in want.tolist()}) > N_WINDOWS // 2      # the logits do depend on the input


def test_arena_plan_verifies(micro, micro_build):
    """plan.json holds a verified liveness plan covering every non-constant tensor; the header sizes the arena."""
    plan = json.loads((micro_build.out_dir / "plan.json").read_text())
    buffers = activation_buffers(micro)
    verify_arena(buffers, ArenaPlan(plan["offsets"], plan["size"], plan["algorithm"], plan["alignment"]))
    views = set(plan["flip_views"])
    assert views == {"blocks.0.rev.q_out.flip"}                          # x + fwd + flip(rev) by negative stride
    activations = {k for k, t in micro.tensors.items() if t.data is None and k not in micro.inputs}
    assert activations - views <= set(plan["offsets"]) and plan["size"] % 4 == 0
    assert plan["lower_bound"] <= plan["size"] < sum(b.size for b in buffers)
    header = (micro_build.out_dir / "src" / "network.h").read_text()
    assert f"#define EF_ARENA_BYTES {plan['size']} " in header
    report = json.loads((micro_build.out_dir / "report.json").read_text())
    assert [n["op"] for n in report["nodes"]] == [n.op for n in micro.nodes]
    assert report["arena_bytes"] == plan["size"] and report["macs"] > 0 and report["weight_bytes"] > 0
    weights = (micro_build.out_dir / "src" / "weights.h").read_text()
    assert "static const EF_WEIGHTS_DATA uint8_t ef_w_blocks_0_fwd_q_out_w_packed" in weights
    assert not re.search(r"\b(malloc|float|double)\b", (micro_build.out_dir / "src" / "network.c").read_text())
    # every arena buffer is one named view at its planned offset; the kernel calls use the names
    network = (micro_build.out_dir / "src" / "network.c").read_text()
    for b in plan["buffers"]:
        assert f"(EF_ARENA + {b['offset']});  /* {b['name']} */" in network, b["name"]
    body = network.split("void ef_network_run", 1)[1]
    assert "EF_ARENA" not in body and "a_blocks_0_fwd_q_u" in body
    # kernels with many arguments name them (designated initializers of the ef_args.h structs)
    _assert_named_calls(body, ("ef_scan_i8", "ef_dwconv1d_causal_i8", "ef_conv2d_patch_i8", "ef_layernorm_i8",
                               "ef_add_requant_i8", "ef_mul_requant_i8", "ef_meanpool_tokens_i8"))
    assert ".u = a_blocks_0_fwd_q_u, .u_stride = 88," in body and ".reverse = 0});" in body
    _assert_named_calls(render_runner(65536)[1], ("ef_linear_i8",))      # ef_tiled.c, the tiled layers' runner


def _assert_named_calls(c_text: str, expected: tuple[str, ...]) -> None:
    """Every call of a kernel with NAMED_MIN_PARAMS or more parameters goes through its ef_args.h adapter and
    names each parameter once, in the prototype's order; `expected` kernels are among them."""
    protos = kernel_prototypes()
    positional = {k for k in re.findall(r"\b(ef_\w+)\(", c_text) if k in protos and protos[k].named}
    assert not positional, f"called without names: {sorted(positional)}"
    found = re.findall(r"\b(ef_\w+)_args\(\(\1_args_t\)\{(.*?)\}\);", c_text, re.DOTALL)
    assert set(expected) <= {k for k, _ in found}
    for k, fields in found:
        assert re.findall(r"\.(\w+) = ", fields) == [q.name for q in protos[k].params], k


def _structural_graph() -> Graph:
    """split -> concat -> transpose -> flip_time (copy) -> add_requant with a flip view -> reshape -> identity
    -> head."""
    r = np.random.default_rng(4)
    g = Graph("structural", inputs=["x"], outputs=["out"])
    act = {"x": (8, 6), "a": (8, 2), "b": (8, 4), "c": (8, 6), "d": (6, 8), "e": (6, 8), "f": (6, 8), "g": (6, 8),
           "h": (1, 48), "i": (1, 48)}
    for name, shape in act.items():
        g.add_tensor(Tensor(name, shape, "int8", 8, 0.1))
    g.add_tensor(Tensor("w", (3, 48), "int8", 4, np.full(3, 0.01), data=r.integers(-8, 8, (3, 48)).astype(np.int8)))
    g.add_tensor(Tensor("bias", (3,), "int32", 32, None, data=r.integers(-500, 500, 3).astype(np.int32)))
    g.add_tensor(Tensor("out", (1, 3), "int32", 32, None))
    mm, s = add_requant_params([0.1, 0.05], 0.1)
    for node in (Node("split", "split", ["x"], ["a", "b"], {"axis": -1, "sizes": [2, 4]}),
                 Node("concat", "concat", ["b", "a"], ["c"], {"axis": -1}),
                 Node("transpose", "transpose", ["c"], ["d"], {"perm": [1, 0]}),
                 Node("flip_copy", "flip_time", ["d"], ["e"]),
                 Node("flip_view", "flip_time", ["e"], ["f"]),
                 Node("add", "add_requant", ["e", "f"], ["g"], {"M": mm, "S": s}),
                 Node("reshape", "reshape", ["g"], ["h"], {"shape": [1, 48]}),
                 Node("identity", "identity", ["h"], ["i"]),
                 Node("head", "linear_acc", ["i", "w", "bias"], ["out"])):
        g.add_node(node)
    return g


def test_structural_ops_bit_exact(tmp_path):
    g = _structural_graph()
    art = compile_host(g, tmp_path)
    assert art.plan["flip_views"] == {"f": "e"}
    q = np.random.default_rng(5).integers(-128, 128, (64, 8, 6)).astype(np.int8)
    assert np.array_equal(run_binary(art.binary, q, 3), _reference(g, q))
    _assert_named_calls((art.out_dir / "src" / "network.c").read_text(), ("ef_add_requant_i8", "ef_linear_acc_i32"))


def test_unsupported_op_is_named(micro, tmp_path, monkeypatch):
    monkeypatch.delitem(c_ops.EMITTERS, "meanpool_tokens")
    with pytest.raises(CodegenError, match=r"^node 'head.in': op 'meanpool_tokens' is not supported by the C backend$"):
        compile_host(micro, tmp_path)


def test_unsupported_attribute_is_named(tmp_path):
    """A valid IR node the C renderer cannot handle (a split along rows) is refused naming the node."""
    g = Graph("rows", inputs=["x"], outputs=["out"])
    for name, shape in {"x": (8, 6), "a": (2, 6), "b": (6, 6), "c": (8, 6), "h": (1, 48)}.items():
        g.add_tensor(Tensor(name, shape, "int8", 8, 0.1))
    g.add_tensor(Tensor("w", (3, 48), "int8", 8, np.full(3, 0.01), data=np.ones((3, 48), np.int8)))
    g.add_tensor(Tensor("out", (1, 3), "int32", 32, None))
    for node in (Node("split0", "split", ["x"], ["a", "b"], {"axis": 0, "sizes": [2, 6]}),
                 Node("concat0", "concat", ["a", "b"], ["c"], {"axis": 0}),
                 Node("reshape", "reshape", ["c"], ["h"], {"shape": [1, 48]}),
                 Node("head", "linear_acc", ["h", "w"], ["out"])):
        g.add_node(node)
    with pytest.raises(CodegenError, match=r"node 'split0' \(split\): only the last axis of 2-d tensors"):
        compile_host(g, tmp_path)


def test_backend_registry():
    assert set(BACKENDS) >= {"host", "gap9", "rv32-virt"} and callable(BACKENDS["host"].compile)
    assert all(b.name == name for name, b in BACKENDS.items())
    assert all(b.tolerance == 0 for b in BACKENDS.values() if b.takes == "graph")  # the C targets: bit-exact
