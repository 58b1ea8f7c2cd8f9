"""The link faults again, on the emulated board: femba-micro's firmware.elf on QEMU rv32 over its UART pty, with a
flipped bit, a lost answer and a board reset (QMP system_reset) injected; nothing lost or counted twice."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgeflow.ir.from_onnx import load_onnx
from edgeflow.ir.graph import Graph
from edgeflow.link.faults import Fault, FaultyPort
from edgeflow.link.harness import StreamConfig, ok, stream
from edgeflow.link.model_info import model_hash
from edgeflow.link.session import Session, open_port

pytestmark = pytest.mark.link
CASE = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2"


def test_qemu_device_survives_faults(micro_windows, tmp_path):
    if shutil.which("qemu-system-riscv32") is None:
        pytest.skip("qemu-system-riscv32 missing (apt-get install qemu-system-misc)")
    if shutil.which("riscv64-unknown-elf-gcc") is None:
        pytest.skip("riscv64-unknown-elf-gcc missing (apt-get install gcc-riscv64-unknown-elf "
                    "picolibc-riscv64-unknown-elf)")
    from edgeflow.backends.rv32_virt import compile_rv32
    from edgeflow.runners import qemu_rv32 as emulator
    from edgeflow.target import load_target

    compile_rv32(load_onnx(CASE / "model.onnx"), load_target("rv32-virt"), tmp_path)
    graph = Graph.load(tmp_path)
    dev = emulator.start(tmp_path)
    try:
        port = FaultyPort(open_port(dev.port), [], on_reset=dev.reset, seed=1)
        session = Session(port, model_hash(tmp_path), timeout_s=10.0, retries=3, name=dev.port)
        info = session.handshake()
        chunks = -(-info.input_size // (info.max_payload - 8))
        port.tx_frames = port.rx_frames = 0
        port.faults = [Fault("flip", "tx", 5), Fault("lose", "rx", 1), Fault("reset", "tx", 3 * chunks + 5)]  # window 1
        session.timeout_s = 6.0  # a window takes ~1.6 s on QEMU (link + compute), ~4 s on a loaded machine
        summary, recs = stream(session, graph, micro_windows[:3], StreamConfig())
        port.close()
    finally:
        emulator.stop(tmp_path)
    assert port.all_fired
    assert ok(summary), summary
    assert [r.index for r in recs] == [0, 1, 2] and all(r.match for r in recs)
    link = summary["link"]
    assert link["resets"] == 1 and link["timeouts"] >= 1 and link["replays"] >= 1
    assert sum(link["device_errors"].values()) >= 1
    assert all(r.cycles == r.instret > 0 for r in recs if not r.replay)  # -icount: exact instruction counts
