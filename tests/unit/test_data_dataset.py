"""Unit tests for edgeflow.data.dataset: corpus loading, cache, subject splits, the default corpus."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from edgeflow.data import dataset
from edgeflow.data.dataset import (
    WindowSet,
    default_corpus_dir,
    ensure_default_corpus,
    load_corpus,
    split_by_subject,
)
from edgeflow.data.eeg import Preprocess
from edgeflow.data.synthetic import write_corpus
from edgeflow.errors import DataError

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return write_corpus(out, n_subjects=8, duration_s=11.0, seed=2, progress=False)


@pytest.fixture
def fresh(corpus, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(corpus, out, ignore=shutil.ignore_patterns(".cache-*"))
    return out


def test_load_corpus_shapes(fresh):
    ws = load_corpus(fresh, Preprocess(), cache=False)
    assert ws.x.shape == (16, 22, 1280) and ws.x.dtype == np.float32
    assert ws.y.dtype == np.int64 and ws.subject.dtype == np.int64
    assert sorted(set(ws.y.tolist())) == [0, 1] and (ws.y == 1).sum() == 8
    assert list(ws.subjects) == list(range(8)) and len(ws.files) == 8
    assert not list(fresh.glob(".cache-*"))


def test_cache_is_used_and_invalidated(fresh, monkeypatch):
    pp = Preprocess()
    first = load_corpus(fresh, pp)
    caches = list(fresh.glob(".cache-*.npz"))
    assert len(caches) == 1

    def boom(*args, **kwargs):
        raise AssertionError("cache not used")

    monkeypatch.setattr(dataset, "load_windows", boom)
    second = load_corpus(fresh, pp)
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.subject, second.subject)
    assert second.files == first.files
    with pytest.raises(AssertionError, match="cache not used"):
        load_corpus(fresh, Preprocess(stride_s=2.5))  # other preprocessing, other cache
    edf = fresh / "sub-003.edf"
    st = edf.stat()
    os.utime(edf, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="cache not used"):
        load_corpus(fresh, pp)  # a changed file invalidates the cache


def test_missing_labels_and_files(fresh, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"labels\.csv: labels file not found"):
        load_corpus(tmp_path / "empty", Preprocess())
    (fresh / "sub-005.edf").unlink()
    with pytest.raises(DataError, match=r"labels\.csv:7: names missing file .*sub-005\.edf"):
        load_corpus(fresh, Preprocess())
    with pytest.raises(DataError, match="corpus folder not found"):
        load_corpus(tmp_path / "nowhere", Preprocess())


def _toy(n_subjects: int, per: int = 3) -> WindowSet:
    subject = np.repeat(np.arange(n_subjects), per)
    y = (subject % 2).astype(np.int64)
    x = np.zeros((len(y), 2, 4), np.float32)
    return WindowSet(x, y, subject.astype(np.int64), [f"s{i}.edf" for i in range(n_subjects)])


@pytest.mark.parametrize("n", [6, 8, 20, 41])
def test_split_by_subject_disjoint_and_stratified(n):
    ws = _toy(n)
    parts = split_by_subject(ws, seed=1)
    assert set(parts) == {"train", "val", "test"}
    seen = [set(p.subjects.tolist()) for p in parts.values()]
    assert set().union(*seen) == set(range(n)) and sum(map(len, seen)) == n
    for p in parts.values():
        assert set(p.y.tolist()) == {0, 1}
    assert len(parts["train"]) >= len(parts["val"])
    again = split_by_subject(ws, seed=1)
    assert all(np.array_equal(again[k].subject, parts[k].subject) for k in parts)


def test_split_needs_enough_subjects():
    with pytest.raises(DataError, match="class 1 has 2 subject"):
        split_by_subject(_toy(5))
    parts = split_by_subject(_toy(4), fractions=(0.5, 0.5, 0.0))
    assert len(parts["test"]) == 0 and set(parts["val"].y.tolist()) == {0, 1}


def test_default_corpus_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEFLOW_CACHE", str(tmp_path / "cache"))
    assert default_corpus_dir() == tmp_path / "cache" / "corpus-default"
    monkeypatch.delenv("EDGEFLOW_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_corpus_dir() == tmp_path / "xdg" / "edgeflow" / "corpus-default"


def test_ensure_default_corpus_once(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEFLOW_CACHE", str(tmp_path))
    out = ensure_default_corpus(n_subjects=4, duration_s=5.0, progress=False)
    # not the default job's parameters: a folder of its own beside corpus-default, named by the parameters
    assert out.parent == tmp_path and out.name.startswith("corpus-") and (out / "labels.csv").is_file()
    stamp = (out / "sub-000.edf").stat().st_mtime_ns
    assert ensure_default_corpus(n_subjects=4, duration_s=5.0, progress=False) == out
    assert (out / "sub-000.edf").stat().st_mtime_ns == stamp
    six = ensure_default_corpus(n_subjects=6, duration_s=5.0, progress=False)
    assert six != out and (six / "sub-005.edf").is_file()
    assert (out / "sub-000.edf").stat().st_mtime_ns == stamp  # the other corpus was not replaced
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not an edgeflow corpus"):
        ensure_default_corpus(n_subjects=4, duration_s=5.0, out_dir=other, progress=False)
