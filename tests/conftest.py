"""Shared fixtures: a small synthetic corpus made once per test session."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """Eight 30 s synthetic subjects (four abnormal) as EDF files with labels.csv."""
    from edgeflow.data.synthetic import write_corpus

    out = tmp_path_factory.mktemp("corpus")
    write_corpus(out, n_subjects=8, duration_s=30.0, seed=3, difficulty=0.3, progress=False)
    return out
