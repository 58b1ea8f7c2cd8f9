"""The uneven-gather model (tests/c/own_models.py 'gather-channels': x[:, [0, 2, 3, 7], :] before a linear) on
pulp-open (GVSoC): the gather node's ef_gather_rows_i8 and the team-split linears give the reference's bytes on 8
cores."""

from __future__ import annotations

import numpy as np
import pytest

from edgeflow.backends import pulp_open
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.passes.pipeline import run_pipeline
from edgeflow.runners import gvsoc
from edgeflow.target import load_target
from tests.c.own_models import exported_model, int_windows, reference

from .conftest import need_gvsoc

pytestmark = pytest.mark.gvsoc


def test_uneven_gather_bit_exact_on_8_cores(tmp_path_factory, tmp_path):
    need_gvsoc()
    path, xs = exported_model(tmp_path_factory, "gather-channels")
    graph = run_pipeline(load_onnx(path))
    assert any(n.op == "gather" for n in graph.nodes)
    q = int_windows(graph, xs[:3])
    want = reference(graph, q)
    art = pulp_open.compile(graph, load_target("pulp-open"), tmp_path / "pulp")
    got, _ = gvsoc.run(art.binary, q, want.shape[1], cores=8)
    np.testing.assert_array_equal(got, want)
