"""The C scan's int32 fast path over the shipped models' actual ranges (edgeflow/quant/scan_bounds.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeflow.ir.from_onnx import load_onnx
from edgeflow.ir.opdefs.scan import CHANNEL_CONSTS
from edgeflow.ir.reference import run
from edgeflow.quant.intscan import ScanConsts
from edgeflow.quant.scan_bounds import Q_LIMIT, SH_MAX, cut, headroom, narrow_steps, step_q

pytestmark = pytest.mark.unit

CASES = Path(__file__).resolve().parents[1] / "cases"
WINDOWS = 6  # of the case's 100 recorded windows, spread over the recording


def _consts(g, n) -> ScanConsts:
    arrays = [np.asarray(g.tensors[name].data) for name in n.inputs[4:]]
    return ScanConsts(arrays[0], int(n.attrs["ka_frac"]), *arrays[1:])


@pytest.mark.parametrize("case", ["femba-mini-w2", "femba-micro-w2"])
def test_shipped_scans_take_the_int32_path(case):
    g = load_onnx(CASES / case / "model.onnx")
    xs = np.load(CASES / case / "inputs.npz")["x"]
    scans = [n for n in g.nodes if n.op == "scan"]
    assert scans and len(CHANNEL_CONSTS) == len(scans[0].inputs) - 5
    worst = float("inf")
    for x in xs[:: max(1, len(xs) // WINDOWS)][:WINDOWS]:
        env = run(g, x)
        for n in scans:
            c = _consts(g, n)
            assert 1 <= c.sh_in.min() and c.sh_in.max() <= SH_MAX, f"{n.name}: sh_in outside the fast range"
            q_u, q_delta = env[n.inputs[0]], env[n.inputs[1]]
            assert narrow_steps(q_u, q_delta, c).all(), f"{n.name}: some steps need the int64 path"
            worst = min(worst, headroom(q_u, q_delta, c))
    assert worst >= 2.0, f"{case}: only {worst:.2f}x headroom below the int64 path"


def test_bound_classifies_edge_inputs():
    """The extreme codes of a fine state scale (sh_in 16) leave the fast path; small ones stay on it."""
    m_in = np.array([(1 << 31) - 1, 1 << 30], dtype=np.int32)
    c = ScanConsts(np.zeros((2, 4), np.uint16), 16, m_in, np.array([16, 40], np.int8), np.full(2, 1 << 14, np.int16),
                   np.zeros(2, np.int16), np.zeros(2, np.int8), np.full(2, 30, np.int8))
    q_u = np.array([[-128, -128], [3, 3]])
    q_delta = np.array([[127, 127], [2, 2]])
    assert cut(c.sh_in).tolist() == [15, 24]
    assert step_q(q_u, q_delta, c)[0, 0] >= Q_LIMIT
    assert narrow_steps(q_u, q_delta, c).tolist() == [[False, True], [True, True]]
