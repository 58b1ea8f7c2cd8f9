"""The backend contract: a typed Artifact, a Backend (compile, run_windows, flash, stop, tolerance)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgeflow.target import Target

#: run_windows(binary, int8 windows (N, ...), n_out) -> the binary's int32 outputs (N, n_out)
RunWindows = Callable[[Path, np.ndarray, int], np.ndarray]


@dataclass
class Artifact:
    """What a backend built in out_dir: the C sources, the binary (None when not built here), plan.json's
    content (the serialized MemoryPlan) and report.json's."""

    out_dir: Path
    sources: list[Path]
    binary: Path | None
    plan: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class Flashed:
    """What `flash` did: the port to stream to (None for a board flashed by its SDK) and how."""

    target: str
    build_dir: Path
    port: str | None
    pid: int | None
    rebuilt: bool
    note: str


@dataclass(frozen=True)
class Backend:
    """One target's way from a model to answers. compile(model, target, out_dir) -> Artifact, where model is the
    lowered IR graph (takes "graph") or the ONNX file (takes "onnx"); run_windows runs the artifact's binary
    over windows (None: it does not run here); flash starts / flashes the device of a build folder and stop
    stops it (None: no device); tolerance bounds |device - reference| (0 for integer targets: bit-exact)."""

    name: str
    compile: Callable[[Any, Target, Path], Artifact]
    run_windows: RunWindows | None = None
    flash: Callable[[Path], Flashed] | None = None
    stop: Callable[[Path], bool] | None = None
    tolerance: float = 0.0
    takes: Literal["graph", "onnx"] = "graph"
    binary: str = "firmware"        # file name of the binary in the build folder
    description: str = ""
