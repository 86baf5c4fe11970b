"""Held-out metrics per slice of deals: where the model is good, and where to doubt it.

One overall AUC hides the cases a sales manager cares about: is the score as good on
enterprise deals as on SMB ones, on big deals, on the deals of a rep who just joined?  Each
slice reports its size, win rate, and the model's and the logistic reference's ROC AUC,
Brier score and ECE on the same rows, so a weak slice is visible before anyone acts on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_ml.data.schema import DEAL_STAGES
from spm_ml.models.metrics import binary_metrics

NEW_REP_DAYS = 180
"""A rep hired fewer days than this before ``as_of`` has little track record to go on."""
MIN_SLICE_ROWS = 50
"""Slices smaller than this are reported with their size but without metrics."""


def deal_slices(
    X_test: pd.DataFrame,
    X_train: pd.DataFrame,
    *,
    segments: pd.Series | None = None,
    segment_column: str = "custom_segment",
) -> dict[str, pd.Series]:
    """Slice labels for each held-out row: segment, size band, rep history, stage.

    ``segments`` (aligned with ``X_test``) names each row's segment when the data has one
    that is not a feature (a slice is a way to read results, never a model input); else
    the ``segment_column`` feature is used if present.  Size bands are the training amounts'
    terciles, so the bands do not depend on the rows being judged.  Slices whose column the
    data lacks are left out.
    """
    slices: dict[str, pd.Series] = {}
    if segments is not None:
        slices["segment"] = pd.Series(
            np.asarray(segments, dtype=object), index=X_test.index
        ).fillna("(missing)")
    elif segment_column in X_test.columns:
        slices["segment"] = X_test[segment_column].astype("object").fillna("(missing)")
    if "amount" in X_test.columns and X_train["amount"].notna().any():
        low, high = np.nanquantile(X_train["amount"].astype(float), [1 / 3, 2 / 3])
        amount = X_test["amount"].astype(float)
        names = [
            f"small (< {low:,.0f})",
            f"medium ({low:,.0f}-{high:,.0f})",
            f"large (>= {high:,.0f})",
            "(missing)",
        ]
        band = np.select([amount < low, amount < high, amount >= high], names[:3], names[3])
        slices["size_band"] = pd.Series(pd.Categorical(band, categories=names), index=X_test.index)
    if "rep_tenure_days" in X_test.columns:
        # deal features count no closed deals (see track_record_features): tenure tells a
        # rep who just joined
        new = X_test["rep_tenure_days"].astype(float) < NEW_REP_DAYS
        slices["rep_history"] = pd.Series(
            np.where(new, f"< {NEW_REP_DAYS} days tenure", f">= {NEW_REP_DAYS} days tenure"),
            index=X_test.index,
        )
    if "stage" in X_test.columns:
        stage = X_test["stage"].astype("object").fillna("(missing)")
        order = [s for s in DEAL_STAGES if s in set(stage)]
        slices["stage"] = stage.astype(
            pd.CategoricalDtype([*order, *sorted(set(stage) - set(order), key=str)])
        )
    return slices


def slice_metrics(
    y: np.ndarray,
    probabilities: dict[str, np.ndarray],
    slices: dict[str, pd.Series],
    groups: np.ndarray,
) -> list[dict]:
    """One record per (slice, value): rows, deals, win rate and each model's metrics."""
    y = np.asarray(y, dtype=int)
    records = []
    for name, labels in slices.items():
        values = labels.to_numpy()
        present = set(pd.unique(values))
        if isinstance(labels.dtype, pd.CategoricalDtype):  # a meaningful order: keep it
            ordered = [v for v in labels.cat.categories if v in present]
        else:
            ordered = sorted(present, key=str)
        for value in ordered:
            rows = values == value
            record: dict = {
                "slice": name,
                "value": str(value),
                "n_rows": int(rows.sum()),
                "n_deals": int(pd.unique(groups[rows]).size),
                "win_rate": float(y[rows].mean()),
            }
            if rows.sum() >= MIN_SLICE_ROWS:
                for model, p in probabilities.items():
                    metrics = binary_metrics(y[rows], p[rows])
                    for metric in ("roc_auc", "brier", "ece"):
                        record[f"{model}_{metric}"] = _finite(metrics[metric])
            records.append(record)
    return records


def _finite(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None
