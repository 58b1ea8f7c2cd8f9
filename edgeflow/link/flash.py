"""`edgeflow flash`: hand a build folder to its target's Backend.flash (start the emulated board, flash a board)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgeflow.backends.base import Flashed
from edgeflow.errors import EdgeflowError


class FlashError(EdgeflowError):
    """Nothing to flash (no build, build for another target) or the board's tools are missing."""


def _build_target(build: Path) -> str | None:
    from edgeflow.build_folder import report_target

    return report_target(build)  # None without report.json; a corrupt one is a one-line error naming it


def _build_model_name(build: Path) -> str | None:
    """The model name an earlier build recorded in its report.json (None when unreadable)."""
    try:
        name = json.loads((build / "report.json").read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


def ensure_built(build: Path, target: str, binary: str) -> bool:
    """build/<binary> exists, building it for `target` from build/model.onnx when missing; True if it was
    (re)built. One-line FlashError when the folder is no build, or a build for another target."""
    if (build / binary).is_file():
        return False
    if build.is_file():  # e.g. `edgeflow flash har.onnx`: flash takes the folder `edgeflow build` writes
        model = f"--onnx {build}" if build.suffix == ".onnx" else "--onnx M.onnx"
        raise FlashError(f"{build}: a file, not a build directory; build one with `edgeflow build {model} "
                         f"--card CARD --target {target}` and flash the folder it names")
    if not build.is_dir():
        raise FlashError(f"{build}: no such build directory (make one with `edgeflow build --target {target} "
                         f"--card CARD --ckpt QUANT.pt --out {build}`, or --onnx M.onnx for your own model)")
    built_for = _build_target(build)
    if built_for not in (None, target) or not (build / "model.onnx").is_file():
        what = f"a build for target '{built_for}'" if built_for else "not a build directory (no model.onnx)"
        raise FlashError(f"{build}: {what}, no {binary}; build it for this device with "
                         f"`edgeflow build --target {target} ...`")
    from edgeflow.build import build as run_build
    from edgeflow.card_match import recorded_card

    card = recorded_card(build)  # the rebuilt folder keeps the card it was made with
    onnx = build.parent / f".{build.name}.flash.onnx"
    shutil.copyfile(build / "model.onnx", onnx)
    try:
        run_build(onnx, target, build, name=_build_model_name(build), card=card)
    finally:
        onnx.unlink(missing_ok=True)
    return True


def flash(target: str, build_dir: str | Path) -> Flashed:
    """Flash `build_dir` onto `target`'s device; FlashError naming the targets that can be flashed otherwise."""
    from edgeflow.backends import BACKENDS

    backend = BACKENDS.get(target)
    if backend is None or backend.flash is None:
        flashable = [name for name, b in BACKENDS.items() if b.flash is not None]
        raise FlashError(f"target '{target}' has no device to flash (flashable: {', '.join(flashable)})")
    return backend.flash(Path(build_dir))


def stop(build_dir: str | Path) -> bool:
    """Stop the device started for build_dir (its build's target, else every backend that can stop one);
    False when none was running."""
    from edgeflow.backends import BACKENDS

    build = Path(build_dir)
    built_for = _build_target(build)
    stoppers = [b.stop for name, b in BACKENDS.items() if b.stop is not None and built_for in (None, name)]
    return any([s(build) for s in stoppers])
