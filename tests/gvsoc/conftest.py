"""GVSoC tier fixtures: skip (with the reason) when the simulator or the cross compiler is not installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CASES = Path(__file__).resolve().parents[1] / "cases"


def need_gvsoc() -> None:
    from edgeflow.runners.gvsoc import cache_root, find_install

    if shutil.which("riscv64-unknown-elf-gcc") is None:
        pytest.skip("riscv64-unknown-elf-gcc missing (apt-get install gcc-riscv64-unknown-elf)")
    if find_install() is None:
        pytest.skip(f"GVSoC not built in {cache_root()} (run `bash tools/setup_gvsoc.sh`)")
