"""Held-out metrics for a sentiment model: accuracy, macro-F1, per class, confusion matrix,
polarity AUC and calibration error (the figures the benchmarks and the model card report)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from spm_ml.nlp.components import LABELS

__all__ = [
    "classification_metrics",
    "expected_calibration_error",
    "polarity_auc",
    "polarity_macro_f1",
]


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Metrics over the three classes (a missing prediction counts as ``neutral``).

    Returns ``accuracy``, ``macro_f1`` (over the classes present in ``y_true``),
    ``per_class`` (precision, recall, f1, support) and ``confusion_matrix`` (rows = true,
    columns = predicted, in :data:`LABELS` order).
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    pred = ["neutral" if pd.isna(p) else str(p) for p in y_pred]
    true = [str(t) for t in y_true]
    present = [label for label in LABELS if label in set(true)]
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=list(LABELS), zero_division=0
    )
    return {
        "accuracy": float(np.mean([t == p for t, p in zip(true, pred, strict=True)])),
        "macro_f1": float(f1_score(true, pred, labels=present, average="macro", zero_division=0)),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(LABELS)
        },
        "confusion_matrix": {
            "labels": list(LABELS),
            "matrix": confusion_matrix(true, pred, labels=list(LABELS)).tolist(),
        },
    }


def polarity_macro_f1(y_true: Sequence[str], y_pred: Sequence[object]) -> float:
    """Macro-F1 over the classes present in ``y_true``; a missing answer counts as neutral.

    On a two-class set (reviews: negative and positive only) a ``neutral`` answer is a miss
    for the true class, never a free pass: that is how the benchmark compares a three-class
    model with a lexicon's sign.
    """
    from sklearn.metrics import f1_score

    pred = ["neutral" if pd.isna(p) else str(p) for p in y_pred]
    true = [str(t) for t in y_true]
    present = [label for label in LABELS if label in set(true)]
    return float(f1_score(true, pred, labels=present, average="macro", zero_division=0))


def polarity_auc(y_true: Sequence[str], polarity: Sequence[float]) -> float:
    """ROC AUC of a polarity score (e.g. ``p_positive - p_negative``) for positive vs negative.

    Rows whose truth is neutral are left out; a missing score (a flagged text) ranks in the
    middle (0), as an abstention should.
    """
    from sklearn.metrics import roc_auc_score

    true = np.asarray([str(t) for t in y_true])
    score = np.nan_to_num(np.asarray(polarity, dtype=np.float64), nan=0.0)
    keep = np.isin(true, ["negative", "positive"])
    return float(roc_auc_score(true[keep] == "positive", score[keep]))


def expected_calibration_error(y_true: Sequence[str], probs: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE: mean |accuracy - confidence| over equal-width confidence bins.

    ``probs`` is ``(n, 3)`` in :data:`LABELS` order; rows with a missing score are skipped.
    """
    probs = np.asarray(probs, dtype=np.float64)
    keep = ~np.isnan(probs).any(axis=1)
    probs = probs[keep]
    true = np.asarray([LABELS.index(str(t)) for t in y_true])[keep]
    if len(true) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == true
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            error += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(error)
