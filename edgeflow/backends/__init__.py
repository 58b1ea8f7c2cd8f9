"""Backends: one explicit dict of compile(graph, target, out_dir) -> Artifact functions by target name."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeflow.backends import gap9, host, pulp_open, rv32_virt
from edgeflow.backends.host import Artifact

BACKENDS: dict[str, Callable[..., Artifact]] = {
    "host": host.compile,
    "gap9": gap9.compile,
    "rv32-virt": rv32_virt.compile,
    "pulp-open": pulp_open.compile,
}

# Targets whose binary does not run on the host: run_windows(binary, int8 windows, n_out) -> int32 outputs.
RUNNERS: dict[str, Callable[..., np.ndarray]] = {"rv32-virt": rv32_virt.run_windows,
                                                  "pulp-open": pulp_open.run_windows}

__all__ = ["BACKENDS", "RUNNERS", "Artifact"]
