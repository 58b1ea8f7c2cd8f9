"""`edgeflow bench` end to end on femba-micro (2 windows): results.json, every peer's check, the plots."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeflow.bench.run import ALL_PEERS
from edgeflow.cli import main

pytestmark = [pytest.mark.c, pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc missing")]

CASE = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2"


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    rc = main(["bench", "--models", "femba-micro", "--weights", "2", "--windows", "2", "--rv32-windows", "1",
               "--out", str(out)])
    return rc, out


def test_bench_results_every_peer_checked(bench_out):
    rc, out = bench_out
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["ok"] is True and res["config"]["windows"] == 2
    (row,) = res["rows"]
    assert (row["card"], row["bits"]) == ("femba-micro", 2) and row["macs"] > 0
    peers = row["host"]["peers"]
    assert set(peers) == {"edgeflow-c", "onnxruntime", "pytorch", "tvm"}
    for name, p in peers.items():
        if not p["available"]:  # only a missing optional tool may skip, and it says why
            assert name == "tvm" and p["reason"]
            continue
        assert p["check"]["ok"], (name, p["check"])
        assert p["cpu"]["n"] == 2 and p["wall"]["n"] == 2 and p["cpu"]["min"] <= p["cpu"]["median"]
    assert peers["edgeflow-c"]["check"]["mismatched"] == 0
    fused = peers["onnxruntime"]["check"]["fused"]  # checked with QDQ fusion off; the timed fused answers reported
    assert fused["max_abs_diff"] >= 0 and 0 <= fused["argmax_agree"] <= 1
    assert row["host"]["ratio_cpu"]["edgeflow-c"] == 1.0
    po = row["pulp-open"]
    assert po["check"]["ok"] and po["cycles_per_window"] > 0 if po["available"] else "not available" in po["reason"]
    rv = row["rv32"]
    if rv["available"]:
        assert rv["check"]["ok"] and rv["instret_per_mac"] > 0 and len(rv["layers"]) > 10
        assert sum(x["instret"] for x in rv["layers"]) <= rv["instret_per_window"] * 1.01
    else:
        assert rv["reason"].startswith("not available")
    mem = row["memory"]
    assert 0 < mem["l1_peak"] and mem["l2_arena"] > 0 and mem["weight_bytes"] > 0
    assert mem["weight_bytes"] < mem["int8"]["weight_bytes"] < mem["float32"]["weight_bytes"]
    assert mem["float32"]["weight_bytes"] == 4 * row["n_params"]


def test_bench_plots_written(bench_out):
    _, out = bench_out
    for name in ("memory.png", "ratios.png", *(["layers.png"] if shutil.which("qemu-system-riscv32") else [])):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


def test_bench_timing_driver_matches_golden_case(tmp_path):
    """The C peer's persistent timing driver gives the golden case's accumulators, one window per request."""
    from edgeflow.bench.host import Peer, compile_bench_binary
    from edgeflow.build import build

    build(CASE / "model.onnx", "host", tmp_path / "host", name="femba-micro")
    binary = compile_bench_binary(tmp_path / "host")
    xq = np.load(CASE / "inputs.npz")["x"][:3]
    want = np.load(CASE / "outputs.npz")["logits_acc"][:3]
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    peer = Peer("edgeflow-c", proc, {}, xq, want.shape[1])
    try:
        for i in (2, 0, 1):  # any order: the process keeps no state between windows
            cpu, wall, got = peer.call(i)
            assert np.array_equal(got, want[i]) and cpu > 0 and wall > 0
    finally:
        peer.close()
    assert proc.returncode == 0


def test_bench_user_errors_are_one_line(capsys, tmp_path):
    assert main(["bench", "--weights", "3", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--weights 3" in err and err.strip().count("\n") == 0
    assert "memory" in ALL_PEERS and "pulp-open" in ALL_PEERS
