"""Issue 16 finding 4: an ONNX file whose weight does not fit its input is refused at load and by `edgeflow build`
(one line naming the node and both shapes, no traceback, no build folder), never compiled into C that reads past
the weight array."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import edgeflow
from edgeflow.errors import EdgeflowError
from edgeflow.ir.from_onnx import FrontendError, load_onnx

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2" / "model.onnx"
IN_PROJ = "/blocks.0/fwd/in_proj/weight_quant/export_handler/Constant_2_output_0"   # [176, 44]: x and z rows
MESSAGE = ("node 'blocks.0.fwd.in_proj.0' (linear): input x has 44 features (x shape (80, 44)), weight w expects "
           "22 (w shape (88, 22))")


def _cut(dst: Path, name: str, axis: int, keep: int) -> Path:
    """The golden femba-micro with initializer `name` cut to its first `keep` entries along `axis`."""
    model = onnx.load(str(GOLDEN))
    init = next(i for i in model.graph.initializer if i.name == name)
    a = numpy_helper.to_array(init)
    init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(np.take(a, range(keep), axis=axis)), name))
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def cut_model(tmp_path_factory) -> Path:
    model = onnx.load(str(GOLDEN))
    assert [list(i.dims) for i in model.graph.initializer if i.name == IN_PROJ] == [[176, 44]]
    return _cut(tmp_path_factory.mktemp("cut") / "cut.onnx", IN_PROJ, 1, 22)


def test_load_onnx_refuses_a_weight_that_does_not_fit(cut_model):
    with pytest.raises(FrontendError) as info:
        load_onnx(cut_model)
    assert str(info.value) == f"{cut_model}: {MESSAGE}"


def test_build_refuses_it_with_one_line(cut_model, tmp_path):
    """`edgeflow build` exits non-zero with one stderr line (no traceback) and creates no build folder."""
    out = tmp_path / "build" / "cut-host"
    root = Path(edgeflow.__file__).resolve().parents[1]      # the edgeflow under test, as `python -m` imports it
    res = subprocess.run([sys.executable, "-m", "edgeflow", "build", "--target", "host", "--card", "femba-micro",
                          "--onnx", str(cut_model), "--out", str(out)], cwd=root, capture_output=True, text=True,
                         timeout=300)
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert len(lines) == 1 and MESSAGE in lines[0], res.stderr
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())     # no temporary build folder left either


@pytest.mark.parametrize("name, axis, keep, message", [
    ("/patch_embed/weight_quant/export_handler/Constant_2_output_0", 3, 8,
     "node 'patch_embed' (conv2d_patch): weight w has 16 taps a row, kernel (2, 16) expects 32 (w shape (4, 16))"),
    ("/blocks.0/fwd/out_proj/weight_quant/export_handler/Constant_2_output_0", 1, 44,
     "node 'blocks.0.fwd.out_proj' (linear): input x has 88 features (x shape (80, 88)), weight w expects 44"),
    ("/head/weight_quant/export_handler/Constant_2_output_0", 1, 22,
     "node 'head' (linear_acc): input x has 44 features (x shape (1, 44)), weight w expects 22"),
    ("blocks.0.fwd.A_log", 1, 2, "node 'blocks.0.fwd.q_y' (scan): input B has shape (80, 4), expected (80, 2)"),
    ("/blocks.0/fwd/conv1d/weight_quant/export_handler/Constant_2_output_0", 2, 2,
     "cannot lower its region (ValueError: cannot reshape array of size 176 into shape (88,4))"),
    ("pos_embed", 2, 22, "constant 'pos_embed' added after node '/patch_embed/Conv' has shape (1, 80, 22), the "
                         "conv output (1, 80, 44)"),
])
def test_other_cut_weights_are_refused_with_one_line(tmp_path, name, axis, keep, message):
    """Cutting other constants (patch conv, projections, head, scan A, depthwise taps, positional embedding)
    gives a one-line FrontendError too: from verify() or, where the frontend's own arrays do not fit, from it."""
    path = _cut(tmp_path / "cut.onnx", name, axis, keep)
    with pytest.raises(FrontendError) as info:
        load_onnx(path)
    msg = str(info.value)
    assert isinstance(info.value, EdgeflowError) and "\n" not in msg and message in msg, msg
