"""Models the tests build (an MLP with ReLU at 8- and 4-bit weights, Transpose- and reshape(B, -1)-before-Linear
models, Concat of inputs with their own scales): they load, agree with onnxruntime, and compile bit-exact for host
and gap9 (on the host HAL); the layout ops are real IR nodes (a transpose copy, reshape views), never dropped."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.backends.gap9 import compile as compile_gap9
from edgeflow.backends.host import compile_host
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.passes.pipeline import run_pipeline
from edgeflow.runners.native import run_binary
from edgeflow.target import load_target

from .own_models import MODELS, agree_with_onnxruntime, exported_model, int_windows, reference

pytestmark = pytest.mark.c


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """name -> (ONNX path, float windows), each model exported once per session (shared with tests/device and
    tests/gvsoc through own_models.exported_model)."""
    return lambda name: exported_model(tmp_path_factory, name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_loads_agrees_with_onnxruntime_and_is_bit_exact_on_host_and_gap9(name, exported, tmp_path):
    path, xs = exported(name)
    graph = run_pipeline(load_onnx(path))
    agree_with_onnxruntime(name, graph, path, xs)
    q = int_windows(graph, xs)
    want = reference(graph, q)
    host = compile_host(graph, tmp_path / "host")
    assert np.array_equal(run_binary(host.binary, q, want.shape[1]), want)
    gap9 = compile_gap9(graph, load_target("gap9"), tmp_path / "gap9")
    assert np.array_equal(run_binary(gap9.binary, q, want.shape[1]), want)


@pytest.mark.parametrize("name", ["transpose-linear", "transpose-linear-square"])
def test_transpose_before_linear_is_a_copy_and_reshape_a_view(name, exported, tmp_path):
    """The Transpose(1, 2) is one transpose node before the per-step linear (even when C == T, where a dropped
    transpose would still pass every shape check), and reshape(B, -1) is a view the planner aliases."""
    graph = run_pipeline(load_onnx(exported(name)[0]))
    ops = [n.op for n in graph.nodes]
    assert ops == ["transpose", "linear", "reshape", "linear_acc"], ops
    tr = graph.nodes[0]
    assert tr.inputs == graph.inputs and list(tr.attrs["perm"]) == [1, 0]
    art = compile_host(graph, tmp_path, compile_binary=False)
    view = graph.nodes[2].outputs[0]
    assert art.plan["aliases"] == {view: graph.nodes[1].outputs[0]}
    assert view not in art.plan["offsets"]


def test_mlp_relu_is_a_table_after_the_linear(exported):
    graph = load_onnx(exported("mlp-w4")[0])
    assert [n.op for n in graph.nodes if n.op != "reshape"] == ["linear", "lut", "linear", "lut", "linear_acc"]
    luts = [n for n in graph.nodes if n.op == "lut"]
    assert {n.attrs.get("fn") for n in luts} <= {"relu", "clamp"}   # ReLU: a clamp-at-0 table (frontend_cnn)
    for n in luts:   # the table maps codes below the output's zero to it: max(code, 0) at the region's scale
        table = graph.tensors[n.inputs[1]].data.astype(int)
        assert (table[:128] == 0).all() and (np.diff(table) >= 0).all()
    assert max(graph.tensors[n.inputs[1]].bits for n in graph.nodes if n.op.startswith("linear")) == 4


def test_concat_requantizes_each_input_to_its_scale(exported):
    """Concat of inputs at their own scales: each input whose scale differs from the output's is requantized (a
    one-input add_requant) before the copy; the Slice of the first steps and its Mul by 0.5 are a slice copy and a
    requantized copy."""
    graph = run_pipeline(load_onnx(exported("concat-linear")[0]))
    ops = [n.op for n in graph.nodes]
    assert ops.count("concat") == 2 and ops.count("slice") == 1, ops
    for n in graph.nodes:
        if n.op == "concat":
            assert {graph.tensors[i].scale for i in n.inputs} == {graph.tensors[n.outputs[0]].scale}
            assert all(graph.producer(i).op == "add_requant" for i in n.inputs)


@pytest.mark.parametrize("name, row_len", [("gather-channels", 6), ("gather-steps", 1)])
def test_uneven_gather_is_a_gather_node_of_row_offsets(name, row_len, exported, tmp_path):
    """x[:, [0, 2, 3, 7], :] (whole channel rows at offsets 0, 2T, 3T, 7T) and x[:, :, [5, 0, 2, 2, 4]] (single
    elements, one twice) are one `gather` node each, reading the graph input, rendered as one ef_gather_rows_i8
    call over a static offsets table."""
    graph = run_pipeline(load_onnx(exported(name)[0]))
    gathers = [n for n in graph.nodes if n.op == "gather"]
    assert len(gathers) == 1 and gathers[0].inputs == graph.inputs and gathers[0].attrs["row_len"] == row_len
    if name == "gather-channels":
        assert gathers[0].attrs["offsets"] == [0, 12, 18, 42]
    art = compile_host(graph, tmp_path, compile_binary=False)
    src = (art.out_dir / "src" / "network.c").read_text()
    assert src.count("ef_gather_rows_i8_args((ef_gather_rows_i8_args_t)") == 1
    assert src.count("static const int32_t offsets[") == 1
