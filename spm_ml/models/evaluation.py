"""Scoring a model and its references on the same held-out rows, in one stable format."""

from __future__ import annotations

import numpy as np

from spm_ml.models.metrics import binary_metrics, bootstrap_intervals

MODEL = "model"


def evaluate(
    y: np.ndarray,
    probabilities: dict[str, np.ndarray],
    *,
    groups: np.ndarray | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, dict]:
    """Metrics with 95% bootstrap intervals for each named set of probabilities."""
    out = {}
    for name, p in probabilities.items():
        metrics: dict = binary_metrics(y, p)
        if n_boot:
            intervals = bootstrap_intervals(y, p, groups=groups, n_boot=n_boot, seed=seed)
            metrics["ci95"] = {k: [round(lo, 4), round(hi, 4)] for k, (lo, hi) in intervals.items()}
        out[name] = metrics
    return out


def metrics_document(
    evaluation: dict[str, dict],
    *,
    n_train: int,
    n_test: int,
    split: str,
    run_id: str | None,
) -> dict:
    """The ``--metrics-json`` document; its keys are an interface CI and reviewers read."""

    def block(name: str) -> dict:
        return {**evaluation[name], "n_train": int(n_train), "n_test": int(n_test)}

    return {
        "model": block(MODEL),
        "references": {name: block(name) for name in evaluation if name != MODEL},
        "split": split,
        "mlflow_run_id": run_id,
    }


def flat_metrics(evaluation: dict[str, dict]) -> dict[str, float]:
    """``{"model_roc_auc": ..., "prior_brier": ..., "model_roc_auc_ci_low": ...}`` for MLflow."""
    flat = {}
    for name, metrics in evaluation.items():
        for key, value in metrics.items():
            if key == "ci95":
                for metric, (lo, hi) in value.items():
                    flat[f"{name}_{metric}_ci_low"] = lo
                    flat[f"{name}_{metric}_ci_high"] = hi
            elif isinstance(value, float) and np.isfinite(value):
                flat[f"{name}_{key}"] = value
    return flat
