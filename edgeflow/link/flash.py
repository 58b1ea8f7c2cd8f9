"""`edgeflow flash`: start the emulated rv32 board on a build's firmware.elf (or flash a GAP9 board via its SDK)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgeflow.errors import EdgeflowError
from edgeflow.link import emulator

GAP_SDK_ENV = "GAP_SDK_HOME"


class FlashError(EdgeflowError):
    """Nothing to flash (no build, build for another target) or the board's tools are missing."""


@dataclass
class Flashed:
    """What `flash` did: the port to stream to (None for a board flashed by its SDK) and how."""

    target: str
    build_dir: Path
    port: str | None
    pid: int | None
    rebuilt: bool
    note: str


def _build_target(build: Path) -> str | None:
    try:
        return str(json.loads((build / "report.json").read_text()).get("target"))
    except (OSError, ValueError, AttributeError):
        return None


def _build_model_name(build: Path) -> str | None:
    """The model name an earlier build recorded in its report.json (None when unreadable)."""
    try:
        name = json.loads((build / "report.json").read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


def ensure_firmware(build: Path) -> bool:
    """build/firmware.elf exists, building it from build/model.onnx when missing; True if it was (re)built.
    One-line FlashError when the folder is no build, or a build for another target."""
    if (build / emulator.ELF).is_file():
        return False
    if not build.is_dir():
        raise FlashError(f"{build}: no such build directory (make one with `edgeflow build --target rv32-virt "
                         f"--card CARD --ckpt QUANT.pt --out {build}`)")
    built_for = _build_target(build)
    if built_for not in (None, "rv32-virt") or not (build / "model.onnx").is_file():
        what = f"a build for target '{built_for}'" if built_for else "not a build directory (no model.onnx)"
        raise FlashError(f"{build}: {what}, no {emulator.ELF}; build for the emulated board with "
                         "`edgeflow build --target rv32-virt ...`")
    from edgeflow.build import build as run_build

    onnx = build.parent / f".{build.name}.flash.onnx"
    shutil.copyfile(build / "model.onnx", onnx)
    try:
        run_build(onnx, "rv32-virt", build, name=_build_model_name(build))
    finally:
        onnx.unlink(missing_ok=True)
    return True


def flash_rv32(build_dir: str | Path) -> Flashed:
    """Build firmware.elf if needed and start QEMU on it in the background (device.json in the build dir)."""
    build = Path(build_dir)
    emulator.qemu_binary()                       # say QEMU is missing before building anything
    rebuilt = ensure_firmware(build)
    dev = emulator.start(build)
    return Flashed("rv32-virt", build, dev.port, dev.pid, rebuilt, f"QEMU pid {dev.pid}, log {dev.log}")


def flash_gap9(build_dir: str | Path) -> Flashed:
    """Run the GAP SDK's build + flash + run step (`make all run` in build/src) when the SDK is set up."""
    build = Path(build_dir)
    sdk, gapy = os.environ.get(GAP_SDK_ENV), shutil.which("gapy")
    if not sdk and gapy is None:
        raise FlashError(f"GAP SDK not found: {GAP_SDK_ENV} is unset and `gapy` is not on PATH (source the GAP SDK's "
                         "sourceme.sh for GAP9, or use --target rv32-virt for the emulated board)")
    makefile = build / "src" / "Makefile"
    if not makefile.is_file():
        raise FlashError(f"{makefile}: no GAP SDK project; build it with `edgeflow build --target gap9 ... "
                         f"--out {build}`")
    if shutil.which("make") is None:
        raise FlashError("make not found on PATH (the GAP SDK flow runs `make all run`)")
    res = subprocess.run(["make", "-C", str(build / "src"), "all", "run"], capture_output=True, text=True)
    if res.returncode != 0:
        last = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
        raise FlashError(f"{makefile}: GAP SDK `make all run` failed: {last}")
    return Flashed("gap9", build, None, None, False, "flashed and started by the GAP SDK (`make all run`)")


FLASHERS = {"rv32-virt": flash_rv32, "gap9": flash_gap9}


def flash(target: str, build_dir: str | Path) -> Flashed:
    """Flash `build_dir` onto `target`'s device; FlashError naming the targets that can be flashed otherwise."""
    if target not in FLASHERS:
        raise FlashError(f"target '{target}' has no device to flash (flashable: {', '.join(FLASHERS)})")
    return FLASHERS[target](build_dir)


def stop(build_dir: str | Path) -> bool:
    """Stop the emulated board started for build_dir; False when none was running."""
    return emulator.stop(build_dir)
