"""Backends: one explicit dict of compile(graph, target, out_dir) -> Artifact functions by target name."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeflow.backends import gap9, host, jetson, rv32_virt
from edgeflow.backends.host import Artifact

BACKENDS: dict[str, Callable[..., Artifact]] = {
    "host": host.compile,
    "gap9": gap9.compile,
    "rv32-virt": rv32_virt.compile,
    **dict.fromkeys(jetson.TARGETS, jetson.compile),
}

# Backends that take the ONNX file (the chunked form) instead of the lowered graph and check their own numerics:
# compile(onnx_path, target, out_dir, check_windows=..., card=..., host_only=...) -> Artifact.
ONNX_BACKENDS: frozenset[str] = frozenset(jetson.TARGETS)

# Targets whose binary does not run on the host: run_windows(binary, int8 windows, n_out) -> int32 outputs.
RUNNERS: dict[str, Callable[..., np.ndarray]] = {"rv32-virt": rv32_virt.run_windows}

__all__ = ["BACKENDS", "ONNX_BACKENDS", "RUNNERS", "Artifact"]
