"""Device tier fixtures: skip without the RISC-V cross toolchain or QEMU; a synthetic EDF recording streamed to QEMU."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeflow.target import Target, load_target

CASES = Path(__file__).resolve().parents[1] / "cases"
N_WINDOWS = 20


def need_cross() -> None:
    if shutil.which("riscv64-unknown-elf-gcc") is None:
        pytest.skip("riscv64-unknown-elf-gcc missing (apt-get install gcc-riscv64-unknown-elf "
                    "picolibc-riscv64-unknown-elf)")


def need_qemu() -> None:
    if shutil.which("qemu-system-riscv32") is None:
        pytest.skip("qemu-system-riscv32 missing (apt-get install qemu-system-misc)")


@pytest.fixture(scope="session")
def rv32() -> Target:
    return load_target("rv32-virt")


@pytest.fixture(scope="session")
def recording(tmp_path_factory) -> Path:
    """A synthetic abnormal-subject EEG recording written as a real EDF file, long enough for N_WINDOWS windows."""
    from edgeflow.link.harness import synth_recording

    return synth_recording(tmp_path_factory.mktemp("eeg") / "subject.edf", duration_s=5.0 * N_WINDOWS + 2.0, seed=3)


@pytest.fixture(scope="session")
def eeg_windows(recording) -> np.ndarray:
    """Float windows (N_WINDOWS, 22, 1280) of the EDF through the training preprocessing (MNE)."""
    from edgeflow.link.harness import load_stream_windows

    x, meta = load_stream_windows(recording, "femba-mini", n_windows=N_WINDOWS)
    assert meta["windows"] == N_WINDOWS
    return x
