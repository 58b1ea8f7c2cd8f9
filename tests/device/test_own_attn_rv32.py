"""The test-built attention model (tests/c/own_attn_models.py: brevitas QuantMultiheadAttention, 8- and 4-bit) as
rv32 firmware on QEMU over the link protocol, bit-exact with the numpy reference; and streamed as a user would:
`edgeflow build --onnx --card accel-har --target rv32-virt` -> `flash` -> `stream` of a CSV recording, every answer
bit-exact -> `flash --stop`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeflow.backends.rv32_virt import compile_rv32, run_windows
from edgeflow.cli import main
from edgeflow.ir.from_onnx import load_onnx, quantize_input
from edgeflow.ir.reference import run
from tests.c.own_attn_models import FAMILIES, AttnTiny, attn_onnx
from tests.c.own_cnn_models import export_model, windows
from tests.link.sensor_model import WINDOW, accel_signal, write_csv

from .conftest import need_cross, need_qemu

pytestmark = pytest.mark.device


@pytest.mark.parametrize("family, bits", [("attn", 8), ("attn", 4)])
def test_own_attn_on_qemu_bit_exact(rv32, tmp_path_factory, tmp_path, family, bits):
    need_cross()
    need_qemu()
    graph = load_onnx(attn_onnx(tmp_path_factory, family, bits))
    assert [n.op for n in graph.nodes].count("softmax_rows") == 2
    q = np.stack([quantize_input(x, graph) for x in windows(FAMILIES[family][1], n=16)])
    want = np.stack([run(graph, x)[graph.outputs[0]].reshape(-1) for x in q])
    art = compile_rv32(graph, rv32, tmp_path)
    assert art.report["firmware"]["sections"][".text"] > 0
    assert np.array_equal(run_windows(art.binary, q, want.shape[1]), want)


def test_own_attn_streams_on_qemu_rv32(tmp_path, capsys, monkeypatch):
    need_cross()
    need_qemu()
    onnx = export_model(AttnTiny(8, channels=3, samples=WINDOW, patch=10), (3, WINDOW), tmp_path / "attn-har.onnx")
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--onnx", str(onnx), "--card", "accel-har", "--target", "rv32-virt"]) == 0
    build = tmp_path / "build" / "attn-har-rv32-virt"
    sig = np.round(accel_signal(5.0, seed=4), 5)
    csv = write_csv(tmp_path / "walk.csv", sig)
    capsys.readouterr()
    assert main(["flash", "--target", "rv32-virt", str(build)]) == 0
    try:
        assert main(["stream", "--build", str(build), "--input", str(csv), "--no-progress"]) == 0
        summary = json.loads((build / "stream" / "summary.json").read_text())
        rows = [json.loads(ln) for ln in (build / "stream" / "windows.jsonl").read_text().splitlines()]
        assert summary["windows"] == summary["matching"] == len(rows) == 1 + (len(sig) - WINDOW) // 50 == 4
        assert summary["lost"] == summary["mismatched"] == 0
        assert all(r["values"] == r["expected"] for r in rows)
        assert len({tuple(r["values"]) for r in rows}) > 1               # the answers depend on the window
    finally:
        assert main(["flash", "--stop", str(build)]) == 0
