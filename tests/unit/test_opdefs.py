"""The op registry (edgeflow/ir/opdefs): complete (emitter, reference, kernel per op) and verify() refusing, per op,
a node whose shapes do not fit, with one line naming the node and both shapes."""

from __future__ import annotations

import re

import numpy as np
import pytest

from edgeflow.codegen.c_ops import EMITTERS
from edgeflow.errors import EdgeflowError
from edgeflow.ir.graph import Graph, IRError, Node, Tensor, known_ops, verify
from edgeflow.ir.opdefs import OPDEFS, macs, scratch_bytes
from edgeflow.ir.reference import run
from edgeflow.resources import firmware_dir

pytestmark = pytest.mark.unit

C, I32, I16, U16 = "const", "int32", "int16", "uint16"   # spec shorthands: constant flag, dtypes


def make_graph(op: str, ins: dict, outs: dict, attrs: dict, shapes: dict | None = None) -> Graph:
    """One node of `op`: ins name -> (shape[, dtype][, C]) (non-constant inputs become graph inputs), outs name ->
    (shape[, dtype]); `shapes` overrides the shape of any tensor (the wrong shape under test)."""
    g = Graph(f"one-{op}")
    shapes = shapes or {}
    for name, spec in ins.items():
        shape, dtype = tuple(shapes.get(name, spec[0])), next((s for s in spec[1:] if s != C), "int8")
        data = np.zeros(shape, dtype) if C in spec else None
        g.add_tensor(Tensor(name, shape, dtype, np.dtype(dtype).itemsize * 8, None if data is not None else 0.1,
                            data=data))
        if data is None:
            g.inputs.append(name)
    for name, spec in outs.items():
        dtype = spec[1] if len(spec) > 1 else "int8"
        g.add_tensor(Tensor(name, tuple(shapes.get(name, spec[0])), dtype, 32 if dtype == I32 else 8,
                            None if dtype == I32 else 0.1))
        g.outputs.append(name)
    g.add_node(Node(f"the.{op}", op, list(ins), list(outs), attrs))
    return g


def _vec(n: int, dtype: str = I32) -> tuple:
    return ((n,), dtype, C)


_LIN = {"x": ((80, 44),), "w": ((88, 44), C), "b": _vec(88), "m": _vec(88), "sh": _vec(88)}
_SCAN = {"u": ((80, 88),), "delta": ((80, 88),), "B": ((80, 4),), "C": ((80, 4),), "ka": ((88, 4), U16, C),
         "m_in": _vec(88), "sh_in": _vec(88, "int8"), "m_y": _vec(88, I16), "m_D": _vec(88, I16),
         "sh_D": _vec(88, "int8"), "sh_y": _vec(88, "int8")}
_HEADS = {f"h{i}": ((80, 22),) for i in range(4)}

#: op -> (inputs, outputs, attrs, {tensor: wrong shape}, the message after "node 'the.<op>' (<op>): ").
CASES: dict[str, tuple] = {
    "linear": (_LIN, {"y": ((80, 88),)}, {}, {"w": (88, 22)},
               "input x has 44 features (x shape (80, 44)), weight w expects 22 (w shape (88, 22))"),
    "linear_acc": ({"x": ((1, 44),), "w": ((2, 44), C), "b": _vec(2)}, {"y": ((1, 2), I32)}, {}, {"b": (3,)},
                   "bias b has 3 entries, expected 2 (one per output row of w; b shape (3,))"),
    "requant": ({"acc": ((3, 8), I32), "m": _vec(8), "sh": _vec(8)}, {"y": ((3, 8),)}, {"zp": -128}, {"m": (4,)},
                "multiplier m has 4 entries, expected 8 (one per column of acc; m shape (4,))"),
    "conv2d_patch": ({"x": ((22, 1280),), "w": ((4, 32), C), "b": _vec(4), "m": _vec(4, I16),
                      "sh": _vec(4, "int8"), "addend": ((80, 44), I16, C)}, {"y": ((80, 44),)}, {"kernel": (2, 16)},
                     {"w": (4, 16)}, "weight w has 16 taps a row, kernel (2, 16) expects 32 (w shape (4, 16))"),
    "dwconv1d_causal": ({"x": ((80, 88),), "w": ((88, 4), C), "b": _vec(88), "m": _vec(88, I16),
                         "sh": _vec(88, "int8")}, {"y": ((80, 88),)}, {}, {"w": (44, 4)},
                        "input x has 88 channels, taps w expect 44 (w shape (44, 4))"),
    "lut": ({"x": ((80, 88),), "table": ((256,), C)}, {"y": ((80, 88),)}, {"fn": "silu"}, {"table": (128,)},
            "table has 128 entries, expected 256 (one per int8 code; table shape (128,))"),
    "mul_requant": ({"a": ((80, 88),), "b": ((80, 88),)}, {"y": ((80, 88),)}, {"m": 1 << 30, "sh": 36},
                    {"b": (80, 44)}, "input b has shape (80, 44), input a (80, 88) (must be equal)"),
    "add_requant": ({f"x{i}": ((80, 44),) for i in range(3)}, {"y": ((80, 44),)},
                    {"M": np.array([1, 2, 3], np.int32), "S": 29}, {"x2": (40, 44)},
                    "input x2 has shape (40, 44), input x0 (80, 44) (must be equal)"),
    "layernorm": ({"x": ((80, 44),), "g": _vec(44), "b": _vec(44)}, {"y": ((80, 44),)},
                  {"eps_q": 32, "g_frac": 26}, {"g": (40,)},
                  "gain g has 40 entries, expected 44 (one per channel of x; g shape (40,))"),
    "meanpool_tokens": ({"x": ((80, 44),)}, {"y": ((1, 44),)}, {"m": 1 << 30, "sh": 34}, {"y": (44,)},
                        "output 'y' is declared (44,) int8, the inputs give (1, 44) int8"),
    "scan": (_SCAN, {"y": ((80, 88),)}, {"ka_frac": 23, "direction": 0}, {"ka": (44, 4)},
             "input u has 88 channels, constant ka expects 44 (ka shape (44, 4))"),
    "matmul": ({"a": ((80, 22),), "b": ((22, 80),)}, {"y": ((80, 80),)}, {"m": 1 << 30, "sh": 38}, {"b": (80, 22)},
               "input a has 22 columns, input b 80 rows (a shape (80, 22), b shape (80, 22))"),
    "softmax_rows": ({"x": ((80, 80),)}, {"y": ((80, 80),)}, {"ke": 1, "frac": 24, "m": 1, "sh": 49},
                     {"y": (80, 40)}, "output 'y' is declared (80, 40) int8, the inputs give (80, 80) int8"),
    "add_zp": ({"x0": ((4, 6),), "x1": ((4, 6),)}, {"y": ((4, 6),)}, {"M": np.array([1, 2], np.int32), "S": 9,
                                                                       "C": -300}, {"x1": (4, 5)},
               "input x1 has shape (4, 5), input x0 (4, 6) (must be equal)"),
    "mul_zp": ({"a": ((8,),), "b": ((8,),)}, {"y": ((8,),)}, {"m": 1 << 30, "sh": 36, "za": 3, "zb": -128, "zy": 5},
               {"b": (7,)}, "input b has shape (7,), input a (8,) (must be equal)"),
    "matmul_zp": ({"a": ((8, 4),), "b": ((4, 8),)}, {"y": ((8, 8),)},
                  {"m": 1 << 30, "sh": 38, "za": -128, "zb": 9, "zy": 0}, {"b": (8, 4)},
                  "input a has 4 columns, input b 8 rows (a shape (8, 4), b shape (8, 4))"),
    "softmax_zp": ({"x": ((8, 8),)}, {"y": ((8, 8),)}, {"ke": 1, "frac": 24, "m": 1, "sh": 49, "zy": -128},
                   {"y": (8, 4)}, "output 'y' is declared (8, 4) int8, the inputs give (8, 8) int8"),
    "identity": ({"x": ((2, 3),)}, {"y": ((2, 3),)}, {}, {"y": (3, 2)},
                 "output 'y' is declared (3, 2) int8, the inputs give (2, 3) int8"),
    "reshape": ({"x": ((8, 6),)}, {"y": ((1, 48),)}, {"shape": [1, 48]}, {"x": (8, 5)},
                "attribute shape [1, 48] has 48 elements, input x (8, 5) has 40"),
    "transpose": ({"x": ((80, 22),)}, {"y": ((22, 80),)}, {"perm": [1, 0]}, {"y": (80, 22)},
                  "output 'y' is declared (80, 22) int8, the inputs give (22, 80) int8"),
    "slice": ({"x": ((6, 5),)}, {"y": ((3, 2),)}, {"offset": 29, "shape": [3, 2], "strides": [-10, -2]},
              {"x": (5, 5)}, "slice reads elements 7..29 of input x (5, 5) (25 elements)"),
    "gather": ({"x": ((8, 6),)}, {"y": ((4, 6),)}, {"offsets": [0, 12, 18, 42], "row_len": 6, "step": 1,
                                                  "shape": [4, 6]},
               {"x": (7, 6)}, "gather reads elements 0..47 of input x (7, 6) (42 elements)"),
    "split": ({"x": ((80, 88),)}, _HEADS, {"axis": 1, "sizes": [22] * 4}, {"x": (80, 80)},
              "attribute sizes [22, 22, 22, 22] must be positive and sum to 80 (axis 1 of x (80, 80))"),
    "concat": (_HEADS, {"y": ((80, 88),)}, {"axis": 1}, {"h1": (40, 22)},
               "input x1 has shape (40, 22), input x0 (80, 22) (may differ only along axis 1)"),
    "flip_time": ({"x": ((80, 44),)}, {"y": ((80, 44),)}, {}, {"y": (44, 80)},
                  "output 'y' is declared (44, 80) int8, the inputs give (80, 44) int8"),
    "conv": ({"x": ((4, 8, 64),), "w": ((8, 2, 3, 5), C), "b": _vec(8), "m": _vec(8), "sh": _vec(8)},
             {"y": ((8, 3, 32),)}, {"strides": [2, 2], "pads": [0, 2, 0, 2], "dilations": [1, 1], "group": 2},
             {"y": (8, 3, 64)}, "output 'y' is declared (8, 3, 64) int8, the inputs give (8, 3, 32) int8"),
    "pool": ({"x": ((8, 1, 64),), "m": _vec(5), "sh": _vec(5)}, {"y": ((8, 1, 16),)},
             {"mode": "avg", "kernel": [1, 4], "strides": [1, 4], "pads": [0, 0, 0, 0]}, {"m": (4,)},
             "multiplier m has 4 entries, expected 5 (one per counted window size; m shape (4,))"),
}


def test_every_op_has_an_emitter_and_every_emitter_an_op():
    assert set(OPDEFS) == set(EMITTERS), set(OPDEFS) ^ set(EMITTERS)
    assert known_ops() == frozenset(OPDEFS) and "flip" not in OPDEFS


def test_every_op_has_a_reference_family_and_kernel():
    header = (firmware_dir() / "kernels" / "ef_kernels.h").read_text()
    for name, d in OPDEFS.items():
        assert d.name == name and callable(d.reference) and callable(d.infer) and d.family
        assert d.family in ("linear", "conv", "elementwise", "norm", "scan", "attention", "structural")
        assert d.kernel is None or re.search(rf"\b{d.kernel}\s*\(", header), (name, d.kernel)
        assert all(not a.variadic for a in d.inputs[:-1]), f"{name}: only the last input may be variadic"
        opt = [a.optional for a in d.inputs]
        assert opt == sorted(opt), f"{name}: optional inputs must come last"


def test_every_op_has_a_wrong_shape_case():
    assert set(CASES) == set(OPDEFS)


@pytest.mark.parametrize("op", sorted(CASES))
def test_valid_node_verifies_and_wrong_shape_is_refused(op):
    ins, outs, attrs, bad, message = CASES[op]
    verify(make_graph(op, ins, outs, attrs))
    with pytest.raises(IRError) as info:
        verify(make_graph(op, ins, outs, attrs, bad))
    msg = str(info.value)
    assert isinstance(info.value, EdgeflowError) and "\n" not in msg
    assert msg == f"node 'the.{op}' ({op}): {message}"


@pytest.mark.parametrize("op", ["linear", "conv2d_patch", "dwconv1d_causal", "lut", "mul_requant", "add_requant",
                                "layernorm", "meanpool_tokens", "matmul", "identity", "reshape", "transpose",
                                "slice", "gather", "split", "concat", "flip_time", "conv", "pool", "requant"])
def test_reference_output_shape_is_the_inferred_one(op):
    """The numpy reference run on the valid node gives exactly the declared (= inferred) output shapes."""
    ins, outs, attrs, _, _ = CASES[op]
    g = make_graph(op, ins, outs, attrs)
    d = OPDEFS[op]
    arrays = [np.ones(g.tensors[t].shape, g.tensors[t].dtype) for t in g.nodes[0].inputs]   # shifts >= 1
    got = [np.shape(r) for r in d.reference(arrays, attrs)]
    want = [tuple(s) for s in (spec[0] for spec in outs.values())]
    if op == "meanpool_tokens":       # numpy gives (C,); the IR stores the one pooled row as (1, C)
        got = [(1, *s) for s in got]
    assert got == want


def test_requant_applies_the_output_zero_point_before_saturating():
    """requant: sat8(round_half_up(acc m / 2^sh) + zp); saturation after the offset (not before)."""
    acc = np.array([[200, -200, 3, -3, 0, 1000]], np.int32)
    m, sh = np.full(6, 1 << 14, np.int32), np.full(6, 15, np.int32)     # acc / 2, rounded half up
    y = OPDEFS["requant"].reference([acc, m, sh], {"zp": -100})[0]
    assert y.tolist() == [[0, -128, -98, -101, -100, 127]]
    assert OPDEFS["requant"].reference([acc, m, sh], {"zp": 0})[0].tolist() == [[100, -100, 2, -1, 0, 127]]


def test_arity_attributes_constants_and_dtypes_are_checked():
    def refused(g: Graph, message: str) -> None:
        with pytest.raises(IRError) as info:
            verify(g)
        assert str(info.value) == message

    lin = dict(_LIN)
    refused(make_graph("linear", {k: v for k, v in lin.items() if k != "sh"}, {"y": ((80, 88),)}, {}),
            "node 'the.linear' (linear): takes 5 inputs (x, w, b, m, sh), got 4")
    refused(make_graph("mul_requant", *CASES["mul_requant"][:2], {"m": 1}),
            "node 'the.mul_requant' (mul_requant): missing attribute sh (required: m, sh)")
    refused(make_graph("linear", {**lin, "w": ((88, 44),)}, {"y": ((80, 88),)}, {}),
            "node 'the.linear' (linear): input w ('w') must be a constant")
    refused(make_graph("lut", {"x": ((80, 88), I32), "table": ((256,), C)}, {"y": ((80, 88),)}, {}),
            "node 'the.lut' (lut): input x ('x') is int32, expected int8")
    refused(make_graph("add_requant", *CASES["add_requant"][:2], {"M": np.ones(2, np.int32), "S": 29}),
            "node 'the.add_requant' (add_requant): 3 inputs but attribute M has 2 multipliers")
    refused(make_graph("split", *CASES["split"][:2], {"axis": 1, "sizes": [22] * 3 + [11, 11]}),
            "node 'the.split' (split): has 4 outputs, expected 5")


def test_reference_runs_through_the_registry():
    """reference.run on a linear node is the registry's numpy function (ops.linear), reshaped to the output."""
    ins, outs, attrs, _, _ = CASES["linear"]
    g = make_graph("linear", ins, outs, attrs)
    g.tensors["w"].data = np.eye(88, 44, dtype=np.int8)
    g.tensors["m"].data = np.full(88, 1 << 14, np.int32)
    g.tensors["sh"].data = np.full(88, 14, np.int32)
    x = np.arange(80 * 44).reshape(80, 44) % 100 - 50
    y = run(g, x)["y"]
    assert y.dtype == np.int8 and np.array_equal(y[:, :44], x) and not y[:, 44:].any()


def test_macs_and_scratch():
    assert macs("linear", [(80, 44), (88, 44)], [(80, 88)], {}) == 80 * 88 * 44
    assert macs("conv2d_patch", [(22, 1280)], [(80, 44)], {"kernel": (2, 16)}) == 80 * 44 * 32
    assert macs("scan", [(80, 88)] * 4 + [(88, 4)], [(80, 88)], {}) == 80 * 88 * 4 * 3
    assert macs("add_requant", [(80, 44)] * 3, [(80, 44)], {}) == 3 * 80 * 44
    assert macs("split", [(80, 88)], [(80, 22)] * 4, {}) == 0
    assert scratch_bytes("scan", [(80, 88)] * 4 + [(88, 4)], {}) == 4 * 88 * 4
    assert scratch_bytes("linear", [(80, 44), (88, 44)], {}) == 0


def test_compile_host_refuses_a_wrong_shape_before_writing_c(tmp_path):
    """The C path verifies first: a graph built in Python (not through load_onnx) with a cut weight emits nothing."""
    from edgeflow.backends.host import compile_host

    ins, outs, attrs, bad, message = CASES["linear"]
    with pytest.raises(IRError, match=re.escape(message)):
        compile_host(make_graph("linear", ins, outs, attrs, bad), tmp_path / "out", compile_binary=False)
    assert not (tmp_path / "out").exists()
