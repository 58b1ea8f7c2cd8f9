"""The host binary as a runner: int8 windows on stdin, int32 accumulators on stdout, one process per batch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np


def run_binary(binary: Path, windows: np.ndarray, n_out: int) -> np.ndarray:
    """Run the host firmware once over int8 windows (N, ...); int32 accumulators (N, n_out)."""
    data = np.ascontiguousarray(windows, dtype=np.int8).tobytes()
    res = subprocess.run([str(binary)], input=data, capture_output=True, check=True)
    return np.frombuffer(res.stdout, dtype=np.int32).reshape(len(windows), n_out)
