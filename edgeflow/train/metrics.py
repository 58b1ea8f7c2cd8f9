"""Classification metrics on a held-out split: AUROC, AUPR, balanced accuracy."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score


def binary_metrics(y_true: np.ndarray, prob_pos: np.ndarray) -> dict[str, float]:
    """Metrics for a binary task from the positive-class probability (threshold 0.5 for accuracy)."""
    y_true = np.asarray(y_true).astype(int)
    prob_pos = np.asarray(prob_pos, dtype=float)
    out = {"n": int(len(y_true)), "positives": int(y_true.sum())}
    if len(np.unique(y_true)) < 2:  # AUROC undefined with one class present
        out.update(auroc=float("nan"), aupr=float("nan"))
    else:
        out.update(auroc=float(roc_auc_score(y_true, prob_pos)),
                   aupr=float(average_precision_score(y_true, prob_pos)))
    out["balanced_accuracy"] = float(balanced_accuracy_score(y_true, (prob_pos >= 0.5).astype(int)))
    return out
