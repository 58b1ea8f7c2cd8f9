"""L1-tiled linear layers (plan/memory.py, codegen/c_tiled.py, firmware/hal/ef_dma.h): bit-identical to the
untiled build, the DMA schedule and byte counts the planner promised, and TilingError when L1 is too small."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeflow.backends.c_pipeline import build_host_binary as build
from edgeflow.backends.host import compile_host, run_binary
from edgeflow.backends.toolchain import host_compiler
from edgeflow.ir.from_onnx import load_onnx, quantize_input
from edgeflow.ir.graph import Graph
from edgeflow.ir.reference import run
from edgeflow.plan.layout import linear_shape
from edgeflow.plan.tiling import TilingError, schedule
from edgeflow.resources import firmware_dir
from edgeflow.target import load_target

from .conftest import TEAM8_PARALLEL_FOR
from .models import femba_micro_onnx

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc missing")]

N_WINDOWS = 64
GAP9_L1 = next(m.usable for m in load_target("gap9").memory if m.name == "L1")  # 106496
# 1024: row tiles and (mostly) token tiles; 4096: row tiles (some token tiles); 16384 and GAP9: one tile each.
L1_SIZES = (1024, 4096, 16384, GAP9_L1)
CASES = Path(__file__).resolve().parent.parent / "cases"


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> Graph:
    return load_onnx(femba_micro_onnx(tmp_path_factory))


@pytest.fixture(scope="module")
def windows(micro) -> np.ndarray:
    xs = np.random.default_rng(5).standard_normal((N_WINDOWS, 22, 1280)).astype(np.float32)
    return np.stack([quantize_input(x, micro) for x in xs])


@pytest.fixture(scope="module")
def untiled(micro, windows, tmp_path_factory) -> np.ndarray:
    art = compile_host(micro, tmp_path_factory.mktemp("untiled"))
    n_out = int(np.prod(micro.tensors[micro.outputs[0]].shape))
    got = run_binary(art.binary, windows, n_out)
    want = np.stack([run(micro, q)[micro.outputs[0]].reshape(-1) for q in windows])
    assert np.array_equal(got, want)
    return want


@pytest.mark.parametrize("l1", L1_SIZES)
def test_tiled_micro_bit_identical(micro, windows, untiled, l1, tmp_path):
    art = compile_host(micro, tmp_path / "b", l1_bytes=l1)
    got = run_binary(art.binary, windows, untiled.shape[1])
    assert np.array_equal(got, untiled), f"L1 {l1}: {int((got != untiled).any(1).sum())} windows differ"
    nodes = art.plan["tiling"]["nodes"]
    assert set(nodes) == {n.name for n in micro.nodes if n.op == "linear"}
    assert all(v["l1_bytes_used"] <= l1 for v in nodes.values())
    if l1 <= 4096:
        assert min(v["n_tiles"] for v in nodes.values()) > 1
    if l1 == 1024:
        assert sum(v["n_token_tiles"] > 1 for v in nodes.values()) >= len(nodes) // 2
    # plan.json and report.json carry the per-node tiling facts
    plan = json.loads((tmp_path / "b" / "plan.json").read_text())
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert plan["tiling"]["l1_bytes"] == l1
    tiled = {n["name"]: n["tiling"] for n in report["nodes"] if "tiling" in n}
    assert set(tiled) == set(nodes)
    for name, t in tiled.items():
        assert t == {k: nodes[name][k] for k in ("n_tiles", "rows_per_tile", "tokens_per_tile", "l1_bytes_used",
                                                 "dma_bytes")}
    text = (tmp_path / "b" / "src" / "network.c").read_text()
    assert text.count("ef_tiled_linear_i8(") == len(nodes) and "ef_linear_i8(" not in text


# The cluster HALs' ef_parallel_for on 8 cores (TEAM8_PARALLEL_FOR): with EF_HAVE_PARALLEL_FOR the tiled runner
# splits tiles of few rows over row pairs x token quads (tile_tokens)
_TEAM8 = TEAM8_PARALLEL_FOR + r"""
int ef_hal_cores(void)
{
    return 8;
}
"""


@pytest.mark.parametrize("l1", (1024, 4096, 8192))
def test_tiled_micro_team_split_bit_identical(micro, windows, untiled, l1, tmp_path):
    """The cluster HALs' team split on the host: tiles of 3..9 rows split over row pairs x token quads (odd row
    counts: a last single row), the others over rows; bit-identical to the untiled build."""
    out = tmp_path / "b"
    art = compile_host(micro, out, compile_binary=False, l1_bytes=l1)
    few = [(n, t[1]) for n, v in art.plan["tiling"]["nodes"].items() for t in v["tiles"] if t[1] < 16 and t[3] >= 64]
    assert few and any(rn % 2 for _, rn in few), few  # the token-quad split and its odd row counts are exercised
    team = out / "src" / "team8.c"
    team.write_text(_TEAM8)
    binary = build(out, [*art.sources, team], hal=True, extra_cflags=["-DEF_HAVE_PARALLEL_FOR"])
    got = run_binary(binary, windows, untiled.shape[1])
    assert np.array_equal(got, untiled), f"L1 {l1}: {int((got != untiled).any(1).sum())} windows differ"


_STEP = re.compile(r"^ef_tiled (\S+) (start|wait|compute) (\d+)$")
_STATS = re.compile(r"^ef_tiled (\S+) stats starts=(\d+) waits=(\d+) bytes=(\d+) errors=(\d+)$")


def _pad4(n: int) -> int:
    return -(-n // 4) * 4


@pytest.mark.parametrize("l1", (1024, 4096))
def test_dma_schedule_and_counters(micro, windows, untiled, l1, tmp_path):
    """One window with EF_DMA_TRACE: per layer the steps are the planner's double-buffer schedule (start k+1
    before compute k), starts == waits == tiles + input loads, bytes == (weights + params) x token tiles + input."""
    out = tmp_path / "b"
    art = compile_host(micro, out, compile_binary=False, l1_bytes=l1)
    binary = build(out, art.sources, hal=True, extra_cflags=["-DEF_DMA_TRACE"])
    res = subprocess.run([str(binary)], input=windows[:1].tobytes(), capture_output=True, check=True)
    assert np.array_equal(np.frombuffer(res.stdout, dtype=np.int32), untiled[0])
    steps: dict[str, list[tuple[str, int]]] = {}
    stats: dict[str, tuple[int, ...]] = {}
    for line in res.stderr.decode().splitlines():
        if m := _STEP.match(line):
            steps.setdefault(m[1], []).append((m[2], int(m[3])))
        elif m := _STATS.match(line):
            stats[m[1]] = tuple(int(v) for v in m.groups()[1:])
    nodes, scans = art.plan["tiling"]["nodes"], art.plan["tiling"]["scans"]
    assert set(steps) == set(stats) == set(nodes) | set(scans)
    for name, info in scans.items():  # load, wait, compute per channel tile; bytes: exp2, B, C, u, delta, consts
        assert steps[name] == [(op, k) for k in range(info["n_tiles"]) for op in ("start", "wait", "compute")]
        t, d, n_st = info["steps"], info["d_inner"], info["d_state"]
        starts, waits, nbytes, errors = stats[name]
        assert starts == waits == info["dma_starts"] == 3 + info["n_tiles"] * 10, name  # u, delta, y: one 2-D each
        assert info["dma_bytes"] == 257 * 4 + 2 * t * n_st + d * (2 * t + 2 * n_st + 11)
        assert nbytes == info["dma_bytes"] + info["dma_out_bytes"] and info["dma_out_bytes"] == t * d
        assert errors == 0
    total_tiles = 0
    for name, info in nodes.items():
        want = [(s.op, s.tile) for s in schedule(info["n_tiles"])]
        assert steps[name] == want, name
        starts, waits, nbytes, errors = stats[name]
        n = next(n for n in micro.nodes if n.name == name)
        shape = linear_shape(micro, n)
        # each row tile's block: [bias, m words, sh int8 unless packed into m, packed rows], parts padded to 4
        rt = -(-shape.n_out // info["rows_per_tile"])
        sizes = [min(info["rows_per_tile"], shape.n_out - r * info["rows_per_tile"]) for r in range(rt)]
        weight_params = sum((_pad4(shape.bias_bytes * r) if shape.has_bias else 0) + _pad4(shape.m_bytes * r)
                            + (0 if shape.sh_packed else _pad4(r)) + _pad4(r * shape.row_bytes) for r in sizes)
        assert info["dma_weight_param_bytes"] == weight_params * info["n_token_tiles"]
        # the input: one transfer a token tile, or one a row when the rows are padded to a word in L1
        in_starts = info["n_token_tiles"] if info["l1_layout"]["in_stride"] == shape.n_in else shape.tokens
        assert starts == waits == 2 * info["n_tiles"] + in_starts == info["dma_starts"], name  # + the outputs
        assert info["dma_bytes"] == weight_params * info["n_token_tiles"] + shape.tokens * shape.n_in
        assert nbytes == info["dma_bytes"] + info["dma_out_bytes"]
        assert info["dma_out_bytes"] == shape.tokens * shape.n_out
        assert errors == 0
        total_tiles += info["n_tiles"]
    assert total_tiles > 2 * len(nodes)


def _layouts(micro: Graph) -> tuple[Graph, list[str]]:
    """A copy of micro with three linears set to the three parameter layouts; returns (graph, their names):
    a zero bias (dropped) with 15-bit m packed into uint16 words; an int16 bias with shifts spanning 5 values
    (int32 m + int8 shift array); an int32 bias with Q31 multipliers (m * 2^16, sh + 16: the same scale) packed
    into uint32 words."""
    g = copy.deepcopy(micro)
    lin = [n for n in g.nodes if n.op == "linear"]
    zero = next(n for n in lin if not np.any(g.tensors[n.inputs[2]].data))
    other, q31 = [n for n in lin if n is not zero][:2]
    rng = np.random.default_rng(3)
    bias, sh = (g.tensors[name] for name in (other.inputs[2], other.inputs[4]))
    bias.data = rng.integers(-3000, 3000, np.shape(bias.data)).astype(np.asarray(bias.data).dtype)
    shifts = np.array(sh.data, copy=True)
    shifts.flat[::2] = shifts.min() + 4  # every other row: a 16x smaller scale, so the span is 5 values
    shifts.flat[1::2] = shifts.min()
    sh.data = shifts
    bias, m, sh = (g.tensors[name] for name in q31.inputs[2:5])
    bias.data = rng.integers(-100_000, 100_000, np.shape(bias.data)).astype(np.asarray(bias.data).dtype)
    m.data = (np.asarray(m.data).astype(np.int64) << 16).astype(np.asarray(m.data).dtype)
    sh.data = (np.asarray(sh.data) + 16).astype(np.asarray(sh.data).dtype)
    return g, [zero.name, other.name, q31.name]


@pytest.mark.parametrize("l1", (4096, GAP9_L1))
def test_param_layouts_bit_exact(micro, windows, l1, tmp_path):
    """The three per-row parameter layouts in one build: C == numpy reference, and the blobs have the sizes the
    planner computed for each layout."""
    g, names = _layouts(micro)
    nodes = {n.name: n for n in g.nodes}
    shapes = [linear_shape(g, nodes[name]) for name in names]
    assert [(s.has_bias, s.bias_bytes if s.has_bias else 0, s.m_bytes, s.sh_packed) for s in shapes] == \
        [(False, 0, 2, True), (True, 2, 4, False), (True, 4, 4, True)]
    assert [s.param_bytes_per_row for s in shapes] == [2, 7, 8]
    art = compile_host(g, tmp_path / "b", l1_bytes=l1)
    want = np.stack([run(g, q)[g.outputs[0]].reshape(-1) for q in windows[:16]])
    assert not np.array_equal(want, np.stack([run(micro, q)[micro.outputs[0]].reshape(-1) for q in windows[:16]]))
    got = run_binary(art.binary, windows[:16], want.shape[1])
    assert np.array_equal(got, want), f"L1 {l1}: {int((got != want).any(1).sum())} windows differ"
    weights = (tmp_path / "b" / "src" / "weights.h").read_text()
    for text in ("[m|sh uint16 |", "[bias int16 | m int32 | sh int8 |", "[bias int32 | m|sh uint32 |"):
        assert text in weights, text
    blob_bytes = {n["name"]: n["weight_bytes"] for n in art.report["nodes"]}
    for name, (bias_b, m_b, sh_array) in zip(names, ((0, 2, False), (2, 4, True), (4, 4, False)), strict=True):
        plan = art.plan["tiling"]["nodes"][name]
        rows = [t[1] for t in plan["tiles"][:plan["n_row_tiles"]]]
        row_bytes = plan["row_bytes"]
        assert blob_bytes[name] == sum(_pad4(bias_b * r) + _pad4(m_b * r) + (_pad4(r) if sh_array else 0)
                                       + _pad4(r * row_bytes) for r in rows), name


def test_l1_too_small_raises(micro, tmp_path):
    with pytest.raises(TilingError, match=r"smallest tile.*L1 has 128"):
        compile_host(micro, tmp_path / "b", l1_bytes=128)


@pytest.mark.parametrize("l1", (4096, 16384, GAP9_L1))
def test_golden_mini_tiled(l1, tmp_path):
    folder = CASES / "femba-mini-w2"
    graph = load_onnx(folder / "model.onnx")
    x = np.load(folder / "inputs.npz")["x"]
    acc = np.load(folder / "outputs.npz")["logits_acc"]
    art = compile_host(graph, tmp_path / "b", l1_bytes=l1)
    got = run_binary(art.binary, x, acc.shape[1])
    assert np.array_equal(got, acc), f"L1 {l1}: {int((got != acc).any(1).sum())} windows differ"
    print(f"femba-mini L1 {l1}: tiles", {k: v["n_tiles"] for k, v in art.plan["tiling"]["nodes"].items()})


_HAL_TEST = r"""
#include <stdio.h>
#include <string.h>
#include "ef_dma.h"
int main(void)
{
    static unsigned char src[100], dst[100];
    ef_dma_stats_t s;
    ef_dma_handle_t a, b;
    memset(src, 7, sizeof src);
    a = ef_dma_start(dst, src, 60);
    b = ef_dma_start(dst + 60, src, 40);
    ef_dma_wait(a);
    ef_dma_wait(b);
    ef_dma_wait(b);
    ef_dma_get_stats(&s);
    printf("%lu %lu %lu %lu %lu %d\n", (unsigned long)s.starts, (unsigned long)s.waits, (unsigned long)s.bytes,
           (unsigned long)s.max_in_flight, (unsigned long)s.errors, memcmp(src, dst, sizeof dst) == 0);
    ef_dma_reset_stats();
    ef_dma_get_stats(&s);
    printf("%lu %lu\n", (unsigned long)s.starts, (unsigned long)s.bytes);
    return 0;
}
"""


def test_hal_memcpy_counters(tmp_path):
    hal = firmware_dir() / "hal"
    (tmp_path / "t.c").write_text(_HAL_TEST)
    exe = tmp_path / "t"
    subprocess.run(["gcc", *host_compiler().cflags, "-I", str(hal), str(tmp_path / "t.c"),
                    str(hal / "ef_dma_memcpy.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "2 2 100 2 1 1"  # the second wait on b is an error, not a wait
    assert out[1] == "0 0"
