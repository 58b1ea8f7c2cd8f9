"""Data-quality checks on the recorded electrodes a montage uses: flat, clipped and bridged (near-identical) ones."""

from __future__ import annotations

from typing import Any

import numpy as np

FLAT_V = 1e-7  # a derivation whose IQR or std after filtering is below 0.1 uV is treated as flat
CLIP_FRACTION = 0.01  # a channel with more of its samples at its extreme value than this is clipped
BRIDGE_RATIO = 1e-3  # a pair whose difference keeps under 0.1 % of the smaller one's variance is bridged


def used_channels(found: list[tuple[str, list[tuple[int, float]]]]) -> list[int]:
    """The raw indices a resolved montage reads."""
    return sorted({i for _, terms in found for i, _ in terms})


def clipped_channels(raw: Any, idx: list[int]) -> list[str]:
    """Recorded channels whose samples sit at their extreme value (the amplifier's or the file's range) in more
    than CLIP_FRACTION of the recording; one channel at a time (bounded memory)."""
    out = []
    for i in idx:
        row = raw.get_data(picks=[i])[0]
        if row.size and row.max() > row.min():
            at_edge = np.count_nonzero(row == row.max()) + np.count_nonzero(row == row.min())
            if at_edge > CLIP_FRACTION * row.size:
                out.append(raw.ch_names[i])
    return out


def flat_electrodes(raw: Any, idx: list[int]) -> list[str]:
    """Recorded channels that hardly move (std below FLAT_V: disconnected or shorted to the reference)."""
    return [raw.ch_names[i] for i in idx if float(np.std(raw.get_data(picks=[i])[0])) < FLAT_V]


def bridged_pairs(raw: Any, idx: list[int], block: int = 1 << 16) -> list[tuple[str, str]]:
    """Pairs of recorded channels (neither flat) whose difference is near zero: gel bridging two electrodes, or
    one signal recorded twice. Judged on the variance of the difference against the smaller channel's; the
    covariances are summed over blocks of samples (bounded memory)."""
    live = [i for i in idx if float(np.std(raw.get_data(picks=[i])[0])) >= FLAT_V]
    if len(live) < 2:
        return []
    total, s1, s2 = 0, np.zeros(len(live)), np.zeros((len(live), len(live)))
    offset = None  # the first block's means: sums of the rest stay small (DC-coupled amplifiers sit at mV)
    for start in range(0, raw.n_times, block):
        x = raw.get_data(picks=live, start=start, stop=min(start + block, raw.n_times)).astype(np.float64)
        offset = x.mean(axis=1, keepdims=True) if offset is None else offset
        x -= offset
        total, s1, s2 = total + x.shape[1], s1 + x.sum(axis=1), s2 + x @ x.T
    mean = s1 / total
    cov = s2 / total - np.outer(mean, mean)
    var = np.diag(cov)
    out = []
    for a in range(len(live)):
        for b in range(a + 1, len(live)):
            if var[a] + var[b] - 2 * cov[a, b] < BRIDGE_RATIO * min(var[a], var[b]):
                out.append((raw.ch_names[live[a]], raw.ch_names[live[b]]))
    return out


def electrode_problems(raw: Any, idx: list[int]) -> list[str]:
    """One line per kind of problem on the recorded channels a montage uses (empty when clean)."""
    out = []
    if clipped := clipped_channels(raw, idx):
        out.append(f"clipped channel(s) {', '.join(clipped)} (over {CLIP_FRACTION:.0%} of the samples at the range "
                   "limit)")
    if flat := flat_electrodes(raw, idx):
        out.append(f"flat electrode(s) {', '.join(flat)} (std under {FLAT_V * 1e6:g} uV: disconnected?)")
    if bridged := bridged_pairs(raw, idx):
        out.append(f"bridged channel(s) {', '.join(f'{a} = {b}' for a, b in bridged)} (near-identical signals: "
                   "gel bridge or a duplicated channel)")
    return out
