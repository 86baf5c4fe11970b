"""Held-out metrics for a sentiment model: accuracy, macro-F1, per class, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from spm_ml.nlp.components import LABELS

__all__ = ["classification_metrics"]


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
