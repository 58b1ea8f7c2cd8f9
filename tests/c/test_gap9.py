"""GAP9 backend: tiled + memory-planned build, GAP SDK project, weights streamed from L3 when L2 is full, and
one-line errors for a layer too large for L1 and activations too large for L2. Bit-exact on the host HAL."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from edgeflow.backends import BACKENDS
from edgeflow.backends.gap9 import compile as compile_gap9
from edgeflow.backends.host import run_binary
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.ir.reference import run
from edgeflow.plan.layout import linear_shape
from edgeflow.plan.levels import PlanError
from edgeflow.plan.tiling import TilingError
from edgeflow.resources import firmware_dir
from edgeflow.target import load_target

pytestmark = pytest.mark.c
CASE = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2"


@pytest.fixture(scope="module")
def micro():
    return load_onnx(CASE / "model.onnx")


@pytest.fixture(scope="module")
def windows(micro):
    x = np.load(CASE / "inputs.npz")["x"][:12]
    return x.reshape(len(x), *micro.tensors[micro.inputs[0]].shape)


def _reference(graph, xs):
    return np.stack([np.asarray(run(graph, x)[graph.outputs[0]]).reshape(-1) for x in xs])


def _with_levels(**sizes: int):
    """The gap9 target with some levels' usable bytes replaced."""
    t = load_target("gap9")
    mem = tuple(dataclasses.replace(m, usable=sizes.get(m.name, m.usable)) for m in t.memory)
    return dataclasses.replace(t, memory=mem)


def _n_out(art) -> int:
    return art.report["nodes"][-1]["output_bytes"] // 4


def test_gap9_build_in_l2_is_bit_exact_and_has_sdk_project(micro, windows, tmp_path):
    assert "gap9" in BACKENDS
    art = compile_gap9(micro, load_target("gap9"), tmp_path)
    got = run_binary(art.binary, windows, _n_out(art))
    assert np.array_equal(got, _reference(micro, windows))
    mem = art.report["memory"]
    assert mem["weights_level"] == "L2" and all(v["fits"] for v in mem["levels"].values())
    assert mem["levels"]["L1"]["used"] <= 106496
    mk = (tmp_path / "src" / "Makefile").read_text()
    assert "pmsis_rules.mk" in mk and "gap9/ef_hal_gap9.c" in mk and "READFS_FILES" not in mk
    for f in ("gap9/network_cl.c", "gap9/device_gap9.c", "kernels/ef_linear.c", "hal/ef_dma.h"):
        assert (tmp_path / "src" / f).exists(), f
    # the target's kernel variant (Xpulpv2 on GAP9's cores) with its own header, beside the portable files
    fw_kernels = firmware_dir() / "kernels"
    got_linear = (tmp_path / "src" / "kernels" / "ef_linear.c").read_text()
    assert got_linear == (fw_kernels / "xpulpv2" / "ef_linear.c").read_text()
    assert (tmp_path / "src" / "kernels" / "ef_xpulp.h").is_file()
    assert not (tmp_path / "weights.bin").exists()
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["memory"] == mem and plan["tiling"]["nodes"]


def test_weights_streamed_from_l3_when_l2_is_full(micro, windows, tmp_path):
    # arena + resident (~52 K) fit, the tile blobs (~7 K) do not; MRAM too small
    target = _with_levels(L2=55_000, MRAM=1_000)
    art = compile_gap9(micro, target, tmp_path)
    mem = art.report["memory"]
    assert mem["weights_level"] == "L3"
    blobs = art.plan["memory"]["external_blobs"].values()
    image = (tmp_path / "weights.bin").read_bytes()
    assert len(image) == sum(b["bytes"] + (-b["bytes"] % 4) for b in blobs) >= mem["stream_bytes"]
    assert "READFS_FILES = ../weights.bin" in (tmp_path / "src" / "Makefile").read_text()
    got = run_binary(art.binary, windows, _n_out(art))
    assert np.array_equal(got, _reference(micro, windows))
    assert "EF_HAS_EXT_IMAGE 1" in (tmp_path / "src" / "ef_tiled.h").read_text()


def test_activations_too_large_for_l2_name_the_level(micro, tmp_path):
    with pytest.raises(PlanError, match=r"L2 needs \d+ bytes \(activation arena \d+ \+ resident constants \d+\), "
                                        r"usable 40000"):
        compile_gap9(micro, _with_levels(L2=40_000), tmp_path)


def test_weights_that_fit_no_level_name_every_level(micro, tmp_path):
    with pytest.raises(PlanError, match=r"weights need \d+ bytes; no level holds them: L2 .*MRAM \(1000\), "
                                        r"L3 \(1000\)"):
        compile_gap9(micro, _with_levels(L2=55_000, MRAM=1_000, L3=1_000), tmp_path)


def test_layer_one_byte_too_large_for_l1_names_the_layer(micro, tmp_path):
    need = {}
    for n in micro.nodes:
        if n.op == "linear":
            shape = linear_shape(micro, n)  # smallest tile: 1 token x 1 row, double-buffered
            need[n.name] = (2 * shape.tile_block_bytes(1) + 2 * -(-shape.n_in // 4) * 4 + 4
                            if shape.tokens > 1 else 2 * shape.tile_block_bytes(1) + -(-shape.n_in // 4) * 4 + 4)
    worst = max(need, key=need.get)
    with pytest.raises(TilingError, match=rf"layer '{worst}' needs {need[worst]} bytes .*L1 has {need[worst] - 1}"):
        compile_gap9(micro, _with_levels(L1=need[worst] - 1), tmp_path / "small")
    art = compile_gap9(micro, _with_levels(L1=need[worst]), tmp_path / "fits")  # one byte more: it builds
    assert art.report["memory"]["levels"]["L1"]["used"] <= need[worst]


def test_weights_go_to_mram_first_when_it_holds_them(micro, tmp_path):
    art = compile_gap9(micro, _with_levels(L2=55_000), tmp_path)
    assert art.report["memory"]["weights_level"] == "MRAM"
    mk = (tmp_path / "src" / "Makefile").read_text()
    assert "-DEF_EXT_MRAM" in mk and "READFS_FILES" not in mk
    assert (tmp_path / "weights.bin").stat().st_size >= art.report["memory"]["stream_bytes"]


def test_placement_is_exact_weights_stay_in_l2_when_they_fit(micro, tmp_path):
    """Placement uses the exact constant bytes (known from the layouts before rendering): with L2 exactly
    arena + resident + blobs the weights stay resident; one byte less and they stream from MRAM."""
    probe = compile_gap9(micro, load_target("gap9"), tmp_path / "probe").report["memory"]
    exact = probe["arena_bytes"] + probe["resident_bytes"] + probe["stream_bytes"]
    art = compile_gap9(micro, _with_levels(L2=exact), tmp_path / "tight")
    assert art.report["memory"]["weights_level"] == "L2"
    assert art.report["memory"]["levels"]["L2"]["used"] == exact
    assert not (tmp_path / "tight" / "weights.bin").exists()
    art = compile_gap9(micro, _with_levels(L2=exact - 1), tmp_path / "over")
    assert art.report["memory"]["weights_level"] == "MRAM" and (tmp_path / "over" / "weights.bin").exists()
