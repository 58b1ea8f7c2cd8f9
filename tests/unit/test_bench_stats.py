"""edgeflow bench: the interleaving schedule, timing statistics, ratios and correctness checks (no timing asserts)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edgeflow.bench import stats

pytestmark = pytest.mark.unit


def test_schedule_warms_up_then_interleaves_every_peer_once_per_window():
    peers = ["a", "b", "c"]
    calls = stats.schedule(peers, n_windows=4, warmup=1)
    assert calls[:3] == [(0, "a", False), (0, "b", False), (0, "c", False)]
    timed = [c for c in calls if c[2]]
    assert len(timed) == 12 and all(not c[2] for c in calls[:3])
    for w in range(1, 5):  # window by window: each window's calls are contiguous, one per peer
        block = timed[(w - 1) * 3:w * 3]
        assert {c[0] for c in block} == {w} and sorted(c[1] for c in block) == peers
    firsts = [timed[k * 3][1] for k in range(4)]  # the order rotates: not always the same peer first
    assert firsts == ["a", "b", "c", "a"]
    assert Counter(c[1] for c in timed) == {"a": 4, "b": 4, "c": 4}
    assert stats.schedule(["x"], 2, warmup=0) == [(1, "x", True), (2, "x", True)]


def test_summarize_and_ratios():
    s = stats.summarize([0.3, 0.1, 0.2, 0.5])
    assert s == {"n": 4, "median": pytest.approx(0.25), "min": 0.1, "mean": pytest.approx(0.275)}
    assert stats.summarize([]) == {"n": 0}
    times = {"edgeflow-c": {"cpu": {"median": 0.02}}, "onnxruntime": {"cpu": {"median": 0.01}},
             "tvm": {"cpu": {"n": 0}}}
    r = stats.ratios(times, "edgeflow-c")
    assert r["edgeflow-c"] == 1.0 and r["onnxruntime"] == pytest.approx(0.5) and r["tvm"] is None
    assert stats.ratios({"onnxruntime": {"cpu": {"median": 1.0}}}, "edgeflow-c") == {"onnxruntime": None}


def test_checks_pass_and_fail():
    acc = np.arange(6, dtype=np.int32).reshape(3, 2)
    assert stats.check_exact(acc.copy(), acc)["ok"]
    bad = acc.copy()
    bad[1, 0] += 1
    r = stats.check_exact(bad, acc)
    assert not r["ok"] and r["mismatched"] == 1
    logits = np.array([[1.0, -2.0], [0.5, 0.25]])
    assert stats.check_close(logits + 0.19, logits)["ok"]          # 0.19 <= 10 % of 2.0
    r = stats.check_close(logits + 0.21, logits)
    assert not r["ok"] and r["tolerance"] == pytest.approx(0.2)
    assert not stats.check_close(logits[:1], logits)["ok"]           # wrong shape never passes
    assert stats.check_float(logits * 3, logits)["ok"]
    assert not stats.check_float(np.full_like(logits, np.nan), logits)["ok"]
