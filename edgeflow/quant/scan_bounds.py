"""Range analysis of the C scan's int32 fast path (firmware/kernels/ef_scan.c): which steps it takes, and headroom."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edgeflow.quant.intscan import ScanConsts

Q_LIMIT = 1 << 23      # EF_SCAN_Q_LIMIT: a narrow step needs |Q| < 2^23 (then |q_B Q| < 2^30)
SH_MAX = 54            # EF_SCAN_SH_MAX: and sh_in in [1, 54] (then 2^(sh_in-1-k) <= 2^29)
K_MAX = 24             # the cut k = min(24, sh_in - 1) keeps |q_B R| < 2^31


def cut(sh_in: ArrayLike) -> NDArray[np.int64]:
    """k per channel: PM = q_delta q_u m_in is split as Q 2^k + R (0 <= R < 2^k)."""
    return np.clip(np.asarray(sh_in, dtype=np.int64) - 1, 0, K_MAX)


def step_q(q_u: ArrayLike, q_delta: ArrayLike, c: ScanConsts) -> NDArray[np.int64]:
    """|Q| = |(q_delta q_u m_in) >> k| per (time step, channel), the value the kernel compares with Q_LIMIT."""
    pm = np.asarray(q_delta, np.int64) * np.asarray(q_u, np.int64) * c.m_in.astype(np.int64)[None, :]
    return np.abs(pm >> cut(c.sh_in)[None, :])


def narrow_steps(q_u: ArrayLike, q_delta: ArrayLike, c: ScanConsts) -> NDArray[np.bool_]:
    """(L, d_inner): True where ef_scan_i8 runs the step in int32 (q_delta 0 always: the state is held)."""
    sh = c.sh_in.astype(np.int64)[None, :]
    fast = (step_q(q_u, q_delta, c) < Q_LIMIT) & (sh >= 1) & (sh <= SH_MAX) & (c.m_in[None, :] > 0)
    return fast | (np.asarray(q_delta) == 0)


def headroom(q_u: ArrayLike, q_delta: ArrayLike, c: ScanConsts) -> float:
    """Q_LIMIT / max |Q| over the steps (inf when every delta is 0): how far the inputs are from the int64 path."""
    q = step_q(q_u, q_delta, c)[np.asarray(q_delta) != 0]
    return float("inf") if q.size == 0 or q.max() == 0 else Q_LIMIT / float(q.max())
