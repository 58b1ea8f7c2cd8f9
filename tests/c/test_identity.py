"""Model identity: the model hash covers the model's content, never its name, file name or build folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgeflow.build import build
from edgeflow.link.model_info import model_hash

pytestmark = pytest.mark.c

MICRO = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2" / "model.onnx"


def test_one_model_built_twice_has_one_hash(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / ".tmp-export.model.onnx"
    shutil.copyfile(MICRO, a)
    shutil.copyfile(MICRO, b)
    build(a, "host", tmp_path / "one", name="femba-micro")
    build(b, "host", tmp_path / "elsewhere" / "two", name="femba-micro")
    build(b, "host", tmp_path / "three")  # no name given: the file's stem, still the same content
    hashes = {model_hash(tmp_path / d) for d in ("one", "elsewhere/two", "three")}
    assert len(hashes) == 1
    network_c = (tmp_path / "one" / "src" / "network.c").read_text()
    assert "femba-micro" in network_c or "femba_micro" in network_c
    assert ".tmp-export" not in (tmp_path / "elsewhere" / "two" / "src" / "network.c").read_text()


def test_other_content_has_another_hash(tmp_path):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(MICRO))
    init = max(m.graph.initializer, key=lambda t: len(t.raw_data) or 0)
    arr = numpy_helper.to_array(init).copy()
    flat = arr.reshape(-1)
    flat[0] = flat[1] if flat[0] != flat[1] else flat[0] + 1  # one value changed, same shape
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    changed = tmp_path / "changed.onnx"
    onnx.save(m, str(changed))
    build(MICRO, "host", tmp_path / "orig", name="m")
    build(changed, "host", tmp_path / "changed", name="m")
    assert model_hash(tmp_path / "orig") != model_hash(tmp_path / "changed")
