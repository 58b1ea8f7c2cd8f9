"""The build: ONNX -> integer IR -> backend artifact in build/<model>-<target>/, atomically, with the check."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeflow.errors import EdgeflowError

if TYPE_CHECKING:
    from edgeflow.cards import ModelCard


class BuildError(EdgeflowError):
    """The build cannot be produced for this model and target."""


#: Every build folder carries this marker; a build replaces only a folder that has it (or an empty one).
BUILD_MARKER = ".edgeflow-build"


def check_out_dir(out_dir: Path) -> None:
    """Refuse an --out that a build must not replace: a file, a link, or a folder that is not an earlier
    edgeflow build (no marker) and not empty. Called before any work, and again just before the swap."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        raise BuildError(f"{out_dir}: is a symbolic link; give a real folder as --out")
    if not out_dir.exists():
        above = next((d for d in out_dir.parents if d.exists()), None)
        if above is not None and not above.is_dir():
            raise BuildError(f"{out_dir}: {above} is a file, not a folder; give another --out")
        return
    if not out_dir.is_dir():
        raise BuildError(f"{out_dir}: exists and is not a folder; give another --out")
    if not (out_dir / BUILD_MARKER).is_file() and any(out_dir.iterdir()):
        raise BuildError(f"{out_dir}: exists and is not an edgeflow build folder (no {BUILD_MARKER}); "
                         "refusing to replace it - give another --out or empty it yourself")


def unknown_target(name: str, backends: list[str], described: list[str]) -> str:
    """The one line for a --target without a backend: a typo gets its closest name, a described target without
    a backend says so."""
    import difflib

    known = ", ".join(backends)
    if name in described:
        return f"target '{name}' has no backend yet (targets with one: {known})"
    close = difflib.get_close_matches(name, backends, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"--target {name}: unknown target ({hint}targets: {known})"


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Move the finished build `tmp` to out_dir; an earlier build there is moved aside first and deleted only
    once the new one is in place."""
    check_out_dir(out_dir)
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
        old.rmdir()
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build(onnx_path: Path, target_name: str, out_dir: Path, check_windows: np.ndarray | None = None,
          name: str | None = None, options: dict | None = None, card: ModelCard | None = None) -> dict:
    """Compile `onnx_path` for `target_name` into out_dir. Everything is produced in a temporary folder next
    to out_dir and moved into place only when complete, so a failed build leaves no half-written directory.
    With check_windows (float windows), the built binary's answers are compared with the reference.
    `name` names the model (the card's name; default the ONNX file's stem): it appears in the generated code and
    the reports, never in the model hash. `options` go to backends that take the ONNX file (Backend.takes
    "onnx": jetson's card and host_only); those check their own numerics against onnxruntime. `card` is recorded
    in the folder (card.toml, named by report.json) so that `stream` reads recordings through it."""
    from edgeflow.backends import BACKENDS
    from edgeflow.ir.from_onnx import load_onnx
    from edgeflow.target import available_targets, load_target

    if target_name not in BACKENDS:
        raise BuildError(unknown_target(target_name, sorted(BACKENDS), available_targets()))
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    target = load_target(target_name)
    graph = None if BACKENDS[target_name].takes == "onnx" else load_onnx(Path(onnx_path))
    if graph is not None:
        graph.name = name or Path(onnx_path).stem.strip(".")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        backend = BACKENDS[target_name]
        if backend.takes == "onnx":  # extra keywords only when there are some: compile(model, target, out_dir)
            extra = {**(options or {}), **({"check_windows": check_windows} if check_windows is not None else {})}
            artifact = backend.compile(Path(onnx_path), target, tmp, **extra)
        else:
            artifact = backend.compile(graph, target, tmp)
        shutil.copyfile(onnx_path, tmp / "model.onnx")
        report = dict(artifact.report)
        report["target"] = target.name
        if card is not None:
            from edgeflow.card_match import CARD_FILE, card_toml

            (tmp / CARD_FILE).write_text(card_toml(card), encoding="utf-8")
            report["card"] = {"name": card.name, "kind": card.kind, "file": CARD_FILE}
        if check_windows is not None and artifact.binary is not None and backend.run_windows is not None:
            report["check"] = check_against_reference(graph, artifact.binary, check_windows, backend.run_windows,
                                                      backend.tolerance)
            measured = tmp / "run_report.json"  # a simulator runner's measurements (pulp-open: cycles per layer)
            if measured.is_file():
                report.update(json.loads(measured.read_text()))
        (tmp / "report.json").write_text(json.dumps(report, indent=1))
        (tmp / BUILD_MARKER).write_text(json.dumps({"edgeflow_build": 1, "target": target.name}) + "\n")
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def check_against_reference(graph, binary: Path, windows: np.ndarray, run_windows=None,
                            tolerance: float = 0.0) -> dict:
    """Run the built binary over the windows (on the host, or with the target's run_windows, e.g. on QEMU) and
    compare its int32 outputs with ir/reference.py bit for bit."""
    from edgeflow.ir.from_onnx import quantize_input
    from edgeflow.ir.reference import run
    from edgeflow.runners.native import run_binary

    shape = graph.tensors[graph.inputs[0]].shape
    xq = quantize_input(windows, graph).reshape(len(windows), *shape)
    out_name = graph.outputs[0]
    ref = np.stack([np.asarray(run(graph, q)[out_name]).reshape(-1) for q in xq])
    got = (run_windows or run_binary)(binary, xq, ref.shape[1])
    mismatched = int((np.abs(got.astype(np.float64) - ref) > tolerance).any(axis=1).sum())
    if mismatched:
        within = f" by more than {tolerance:g}" if tolerance else ""
        raise BuildError(f"{binary}: {mismatched} of {len(windows)} windows differ from the reference{within}")
    return {"windows": int(len(windows)), "mismatched": 0, "bit_exact": bool(np.array_equal(got, ref)),
            **({"tolerance": tolerance} if tolerance else {})}
