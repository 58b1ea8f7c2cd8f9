"""The emulated device: firmware.elf (generated network + kernels + link + device main loop) on QEMU virt rv32,
fed windows of an EDF recording over the pty by the streaming host; every answer bit-identical to the reference."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from edgeflow.backends.rv32_virt import compile_rv32, run_windows
from edgeflow.ir.from_onnx import load_onnx
from edgeflow.ir.graph import Graph
from edgeflow.link.harness import StreamConfig, ok, quantized_windows, stream
from edgeflow.link.model_info import model_hash
from edgeflow.link.protocol import FrameReader, Info, MsgType
from edgeflow.link.session import Session, open_port
from edgeflow.runners import qemu_rv32 as emulator

from .conftest import CASES, N_WINDOWS, need_cross, need_qemu

pytestmark = pytest.mark.device


@pytest.mark.parametrize("case", ["femba-micro-w2", "femba-mini-w2"])
def test_qemu_answers_bit_exact_on_edf_windows(case, rv32, eeg_windows, tmp_path):
    need_cross()
    need_qemu()
    build = tmp_path / "build"
    compile_rv32(load_onnx(CASES / case / "model.onnx"), rv32, build)
    graph = Graph.load(build)                 # what `edgeflow stream --build` checks against, and hashes
    xq = quantized_windows(eeg_windows, graph)
    dev = emulator.start(build)
    try:
        assert emulator.load(build) == dev and dev.alive()
        port = open_port(dev.port, write_timeout=emulator.WRITE_TIMEOUT_S)
        try:
            session = Session(port, model_hash(build), timeout_s=30.0, retries=2, name=dev.port)
            summary, records = stream(session, graph, xq, StreamConfig(timeout_s=30.0, out_dir=tmp_path / "s"))
        finally:
            port.close()
    finally:
        assert emulator.stop(build)
    assert not dev.alive() and emulator.load(build) is None
    assert ok(summary), summary
    # a healthy link: no frame rejected on either side (timeouts only mean a slow host, and are retried)
    assert summary["matching"] == N_WINDOWS and summary["link"]["bad_frames"] == 0
    assert not summary["link"]["device_errors"]
    # -icount shift=0: cycles == retired instructions; per-layer counts add up to (almost) the whole window
    for r in records:
        assert r.cycles == r.instret > 0
        assert 0.95 * r.instret <= sum(r.layer_instret) <= r.instret


def _boot_info(port, timeout_s: float = 10.0) -> Info:
    """Read the port until the firmware's boot INFO (seq 0, reason 0) arrives."""
    reader, deadline = FrameReader(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for f in reader.feed(port.read(max(1, port.in_waiting))):
            if f.type == MsgType.INFO and f.seq == 0:
                return Info.unpack(f.payload)
    raise AssertionError(f"no boot INFO within {timeout_s} s")


def test_reset_restarts_the_firmware_on_the_same_pty(rv32, tmp_path):
    need_cross()
    need_qemu()
    compile_rv32(load_onnx(CASES / "femba-micro-w2" / "model.onnx"), rv32, tmp_path)
    graph = Graph.load(tmp_path)
    x = quantized_windows(np.zeros((1, 22, 1280)), graph)[0].tobytes()
    with emulator.running(tmp_path / "firmware.elf") as dev:
        port = open_port(dev.port, write_timeout=emulator.WRITE_TIMEOUT_S)
        try:
            session = Session(port, model_hash(graph), timeout_s=30.0, retries=2, name=dev.port)
            first = session.infer(1, x)
            assert first.output.windows_run == 1 and port.in_waiting == 0
            dev.reset()                       # returns once QEMU reports the board reset
            boot = _boot_info(port)
            assert boot.reason == 0 and boot.model_hash == model_hash(graph)
            session.handshake()
            again = session.infer(2, x)       # a fresh boot: .bss zeroed, counting from 1 again
            assert again.output.windows_run == 1 and again.output.values == first.output.values
        finally:
            port.close()


def test_weights_streamed_from_l3_stay_bit_exact(rv32, tmp_path):
    """A smaller L2 makes the plan stream the tile blobs from L3: the ELF's sections hold exactly what the plan
    placed (resident constants in L2, the image in L3) and the answers do not change."""
    need_cross()
    need_qemu()
    small = dataclasses.replace(rv32, memory=tuple(dataclasses.replace(lvl, usable=55000) if lvl.name == "L2"
                                                   else lvl for lvl in rv32.memory))
    art = compile_rv32(load_onnx(CASES / "femba-micro-w2" / "model.onnx"), small, tmp_path)
    mem, sec = art.report["memory"], art.report["firmware"]["sections"]
    assert mem["weights_level"] == "L3" and (tmp_path / "src" / "ef_l3_image.c").exists()
    assert sec[".weights"] == mem["stream_bytes"] and sec[".l2_weights"] == mem["resident_bytes"]
    with np.load(CASES / "femba-micro-w2" / "inputs.npz") as z, np.load(CASES / "femba-micro-w2" / "outputs.npz") as o:
        x, want = z["x"][:3], o["logits_acc"][:3]
    assert np.array_equal(run_windows(art.binary, x, want.shape[1]), want)
