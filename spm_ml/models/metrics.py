"""Held-out metrics every model and reference is judged by, with bootstrap intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

METRIC_NAMES = ("roc_auc", "pr_auc", "brier", "log_loss", "ece")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean predicted| over ``bins`` equal-width bins, weighted by size."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.sum() * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(total / len(y))


def reliability_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Held-out calibration as data, for plots drawn far from the run (the manager's page):
    per equal-width bin of ``p`` with rows, its edges, row count, mean predicted probability
    and observed rate (empty bins left out)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    out = []
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            out.append(
                {
                    "low": b / bins,
                    "high": (b + 1) / bins,
                    "n": int(in_bin.sum()),
                    "predicted": round(float(p[in_bin].mean()), 4),
                    "observed": round(float(y[in_bin].mean()), 4),
                }
            )
    return out


def calibrated_ece_floor(
    p: np.ndarray, *, bins: int = 10, samples: int = 200, seed: int = 0
) -> float:
    """The ECE a perfectly calibrated score would show on these rows: the median ECE of
    ``p`` against labels drawn from ``p`` itself.

    ECE over a few hundred rows is mostly binning noise (about 0.045 on 385 rows with
    probabilities spread over [0, 1]), so an ECE is only read against this floor, measured on
    the same probabilities and row count.
    """
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    draws = [expected_calibration_error(rng.random(len(p)) < p, p, bins) for _ in range(samples)]
    return float(np.median(draws))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score, log loss and ECE (10 bins) of probabilities ``p``."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    both_classes = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
    }


def weighted_metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """:func:`binary_metrics` with row weights, in O(n) once rows are sorted by ``p``.

    The bootstrap resamples *weights* (how often each row was drawn) instead of rows, so
    one sort serves every replicate.  ``y`` and ``p`` must be sorted by ``p`` descending.
    With all weights 1 the results equal scikit-learn's (tested).
    """
    total = w.sum()
    pos_w, neg_w = w * y, w * (1 - y)
    positives, negatives = pos_w.sum(), neg_w.sum()
    p = np.clip(p, 1e-6, 1 - 1e-6)  # as binary_metrics does, for every metric
    brier = float(np.sum(w * (p - y) ** 2) / total)
    loss = float(-np.sum(w * (y * np.log(p) + (1 - y) * np.log(1 - p))) / total)
    which = np.clip((p * 10).astype(int), 0, 9)
    bin_y = np.bincount(which, pos_w, 10)
    bin_p = np.bincount(which, w * p, 10)
    ece = float(np.sum(np.abs(bin_y - bin_p)) / total)
    if positives == 0 or negatives == 0:
        return {"roc_auc": np.nan, "pr_auc": np.nan, "brier": brier, "log_loss": loss, "ece": ece}
    # group tied scores: thresholds are the distinct values of p (descending)
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    tp = np.add.reduceat(pos_w, starts)
    fp = np.add.reduceat(neg_w, starts)
    fp_above = np.cumsum(fp) - fp  # negatives scored strictly higher
    roc_auc = float(np.sum(tp * (negatives - fp_above - 0.5 * fp)) / (positives * negatives))
    cum_tp, cum_fp = np.cumsum(tp), np.cumsum(fp)
    precision = cum_tp / np.maximum(cum_tp + cum_fp, 1e-300)
    pr_auc = float(np.sum((tp / positives) * precision))
    return {"roc_auc": roc_auc, "pr_auc": pr_auc, "brier": brier, "log_loss": loss, "ece": ece}


BIAS_SHIFTED = frozenset({"ece"})
"""Metrics whose resampled values sit above the estimate: a resample repeats rows, which adds
binning noise, and calibration error only grows with noise.  Their interval is the percentile
interval shifted back by the bootstrap bias, so that it holds the estimate it describes."""
INTERVAL_METHOD = (
    "95% bootstrap percentile intervals; ECE's shifted back by its bootstrap bias (resampling "
    "inflates calibration error, so a plain percentile interval can miss the estimate)"
)


def interval(name: str, draws: Sequence[float], estimate: float) -> tuple[float, float]:
    """The 95% interval of metric ``name`` from its bootstrap ``draws`` (see
    :data:`INTERVAL_METHOD`)."""
    low, high = float(np.nanpercentile(draws, 2.5)), float(np.nanpercentile(draws, 97.5))
    if name in BIAS_SHIFTED and np.isfinite(estimate):
        bias = float(np.nanmean(draws)) - estimate
        low, high = max(low - bias, 0.0), high - bias
    return low, high


def bootstrap_intervals(
    y: np.ndarray,
    p: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """95% intervals of each metric over bootstrap resamples (:func:`interval`).

    With ``groups`` (e.g. deal ids), whole groups are resampled: snapshots of one deal are
    not independent, and resampling them one by one would give falsely narrow intervals.
    """
    rng = np.random.default_rng(seed)
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    y = np.asarray(y, dtype=float)[order]
    p = np.asarray(p, dtype=float)[order]
    codes = _group_codes(groups, len(y))[order]
    draws: dict[str, list[float]] = {m: [] for m in METRIC_NAMES}
    for _ in range(n_boot):
        for name, value in weighted_metrics(y, p, _resample_weights(rng, codes)).items():
            draws[name].append(value)
    estimate = weighted_metrics(y, p, np.ones(len(y)))
    return {name: interval(name, v, estimate[name]) for name, v in draws.items()}


def paired_difference_interval(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    *,
    metric: str = "roc_auc",
    groups: np.ndarray | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> tuple[float, float]:
    """95% interval of ``metric(a) - metric(b)`` with both scored on the *same* resamples.

    Two models' intervals overlap far more than their difference varies: the rows that are
    hard for one are hard for the other.  Resampling (whole groups of) rows once per
    replicate and scoring both models on it measures the difference itself.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y, dtype=float)
    codes = _group_codes(groups, len(y))
    sorted_by = {}
    for name, p in (("a", p_a), ("b", p_b)):
        order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
        sorted_by[name] = (order, y[order], np.asarray(p, dtype=float)[order])
    differences = []
    for _ in range(n_boot):
        weights = _resample_weights(rng, codes)
        values = {
            name: weighted_metrics(ys, ps, weights[order])[metric]
            for name, (order, ys, ps) in sorted_by.items()
        }
        differences.append(values["a"] - values["b"])
    return float(np.nanpercentile(differences, 2.5)), float(np.nanpercentile(differences, 97.5))


def _group_codes(groups: np.ndarray | None, n: int) -> np.ndarray:
    """0..k-1 per row naming its resampling unit (its own row when there are no groups)."""
    if groups is None:
        return np.arange(n)
    return np.unique(np.asarray(groups).astype(str), return_inverse=True)[1]


def _resample_weights(rng: np.random.Generator, codes: np.ndarray) -> np.ndarray:
    """How often each row's group is drawn in one bootstrap resample of the groups."""
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    return np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)[codes].astype(float)
