"""Soak: many windows streamed to the device main loop through random link faults (garbage, dropped bytes,
flipped bits, truncations, lost frames, both directions), device stalls and two device resets; every window is
answered exactly once, with its own seq, bit-exact with the golden outputs. The retry/resync counts are printed.

Short run (default suite): 120 windows to the native device built under ASan + UBSan. Slow runs: 1000 windows
to the same, and 1000 windows to femba-micro's firmware on QEMU rv32 (EDGEFLOW_SOAK_WINDOWS overrides)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgeflow.link.faults import Fault, FaultyPort
from edgeflow.link.session import Session, open_port

pytestmark = pytest.mark.link
CASE = Path(__file__).resolve().parents[1] / "cases" / "femba-micro-w2"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
BYTE_FAULTS = ("garbage", "drop", "flip", "truncate", "lose")


@dataclass
class Dut:
    """The device under test: its port, and how to reset, pause and resume it."""

    port: str
    reset: Callable[[], None]
    pause: Callable[[], None]
    resume: Callable[[], None]
    timeout_s: float
    stall_s: tuple[float, float]  # a stall lasts between these (the longer ones outlast the answer timeout)


@dataclass
class Plan:
    """The random faults of one soak: byte faults by frame index, resets, and the windows that stall."""

    faults: list[Fault]
    stalls: set[int]

    @classmethod
    def make(cls, n_windows: int, chunks: int, seed: int) -> Plan:
        rng = random.Random(seed)
        n_tx = n_windows * chunks
        faults = [Fault(rng.choice(BYTE_FAULTS), "tx", i) for i in sorted(rng.sample(range(n_tx), n_windows // 8))]
        faults += [Fault(rng.choice(BYTE_FAULTS), "rx", i) for i in sorted(rng.sample(range(n_windows),
                                                                                      n_windows // 12))]
        taken = {f.frame for f in faults if f.direction == "tx"}
        for at in (0.3, 0.7):  # two device resets, mid-window, on a frame without another fault
            frame = int(at * n_tx) + chunks // 2
            while frame in taken:
                frame += 1
            faults.append(Fault("reset", "tx", frame))
        reset_windows = {int(at * n_windows) for at in (0.3, 0.7)}
        free = [w for w in range(2, n_windows) if all(abs(w - r) > 3 for r in reset_windows)]
        return cls(faults, set(rng.sample(free, max(3, n_windows // 40))))

    def kinds(self) -> Counter[str]:
        return Counter(f"{f.direction}-{f.kind}" for f in self.faults)


def soak(dut: Dut, expected_hash: bytes, n_windows: int, seed: int = 16) -> dict:
    """Stream n_windows golden windows (cycled) through the planned faults; returns counts (asserts inside)."""
    with np.load(CASE / "inputs.npz") as z:
        xs = z["x"]
    with np.load(CASE / "outputs.npz") as z:
        golden = z["logits_acc"]
    port = FaultyPort(open_port(dut.port, write_timeout=dut.timeout_s), [], on_reset=dut.reset, seed=seed)
    session = Session(port, expected_hash, timeout_s=dut.timeout_s, retries=8, name=dut.port)
    info = session.handshake()
    chunks = -(-info.input_size // (info.max_payload - 8))
    plan = Plan.make(n_windows, chunks, seed)
    port.tx_frames = port.rx_frames = 0
    port.faults = plan.faults
    rng = random.Random(seed + 1)
    answered: Counter[int] = Counter()
    attempts = 0
    t0 = time.monotonic()
    try:
        for i in range(n_windows):
            seq = i % 0xEFFF + 1
            stall = None
            if i in plan.stalls:  # the device stops mid-window for a while
                stall = threading.Timer(rng.uniform(0.0, 0.02), _stall, (dut, rng.uniform(*dut.stall_s)))
                stall.start()
            ans = session.infer(seq, xs[i % len(xs)].tobytes())
            if stall is not None:
                stall.join()
            assert list(ans.output.values) == golden[i % len(xs)].tolist(), f"window {i} (seq {seq}) differs"
            answered[i] += 1
            attempts += ans.attempts
    finally:
        port.close()
    assert sorted(answered) == list(range(n_windows)) and set(answered.values()) == {1}
    assert port.all_fired, [f for f in plan.faults if not f.fired]
    link = session.stats.to_dict()
    assert link["retries"] >= len(plan.faults) // 2 and link["resets"] >= 1 and link["resyncs"] >= 2
    report = {"windows": n_windows, "answered_once": len(answered), "bit_exact": n_windows, "attempts": attempts,
              "faults": dict(plan.kinds()), "stalls": len(plan.stalls), "wall_s": round(time.monotonic() - t0, 1),
              **link}
    print(f"\nsoak on {dut.port}: {report}")
    return report


def _stall(dut: Dut, seconds: float) -> None:
    dut.pause()
    try:
        time.sleep(seconds)
    finally:
        dut.resume()


# ---- the native device, built under ASan + UBSan ------------------------------------------------------------------
@pytest.fixture(scope="module")
def sanitized_device(native_build, tmp_path_factory) -> Path:
    from edgeflow.resources import firmware_dir
    from edgeflow.runners.native_pty import LAYER_HOOK, device_sources

    probe = subprocess.run(["gcc", *SANITIZE, "-x", "c", "-", "-o", os.devnull], input="int main(void){return 0;}",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("gcc cannot link -fsanitize=address,undefined")
    fw = firmware_dir()
    srcs, incs = device_sources(native_build / "src", tiled=False)
    out = tmp_path_factory.mktemp("soak") / "device_asan"
    cmd = ["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", *SANITIZE, "-D_DEFAULT_SOURCE", *incs,
           *LAYER_HOOK, "-include", str(fw / "device" / "ef_layer_hook.h"), *map(str, srcs),
           str(fw / "hal" / "ef_hal_host.c"), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def _native_soak(binary: Path, micro_hash: bytes, n_windows: int, logs: Path) -> dict:
    from edgeflow.runners.native_pty import PtyDevice

    env = {"ASAN_OPTIONS": f"detect_leaks=0:log_path={logs}/asan", "UBSAN_OPTIONS": f"log_path={logs}/ubsan"}
    with PtyDevice(binary, env=env) as dev:
        def signal_device(sig: int) -> Callable[[], None]:
            def send() -> None:
                if dev.proc is not None and dev.proc.poll() is None:
                    os.kill(dev.proc.pid, sig)
            return send

        dut = Dut(dev.port, dev.restart, signal_device(signal.SIGSTOP), signal_device(signal.SIGCONT),
                  timeout_s=0.6, stall_s=(0.1, 1.0))
        report = soak(dut, micro_hash, n_windows)
        assert dev.proc is not None and dev.proc.poll() is None, "the device died"
    assert not list(logs.glob("*san*")), "sanitizer reports: " + "".join(p.read_text() for p in logs.glob("*san*"))
    return report


def test_soak_short_native_asan(sanitized_device, micro_hash, tmp_path):
    _native_soak(sanitized_device, micro_hash, 120, tmp_path)


@pytest.mark.slow
def test_soak_long_native_asan(sanitized_device, micro_hash, tmp_path):
    _native_soak(sanitized_device, micro_hash, int(os.environ.get("EDGEFLOW_SOAK_WINDOWS", "1000")), tmp_path)


# ---- femba-micro's firmware on QEMU rv32 ----------------------------------------------------------------------------
@pytest.mark.slow
def test_soak_long_qemu(tmp_path):
    if shutil.which("qemu-system-riscv32") is None or shutil.which("riscv64-unknown-elf-gcc") is None:
        pytest.skip("qemu-system-riscv32 or riscv64-unknown-elf-gcc missing (tools/setup.sh installs them)")
    from edgeflow.backends.rv32_virt import compile_rv32
    from edgeflow.ir.from_onnx import load_onnx
    from edgeflow.link.model_info import model_hash
    from edgeflow.runners import qemu_rv32 as emulator
    from edgeflow.target import load_target

    compile_rv32(load_onnx(CASE / "model.onnx"), load_target("rv32-virt"), tmp_path)
    dev = emulator.start(tmp_path)
    try:
        dut = Dut(dev.port, dev.reset, lambda: emulator.monitor_command(dev.monitor, "stop"),
                  lambda: emulator.monitor_command(dev.monitor, "cont"), timeout_s=12.0, stall_s=(1.0, 14.0))
        soak(dut, model_hash(tmp_path), int(os.environ.get("EDGEFLOW_SOAK_WINDOWS", "1000")))
        assert dev.alive()
    finally:
        emulator.stop(tmp_path)
