"""Pictures of a model's quality that people read faster than tables.

Each function returns a matplotlib ``Figure`` (Agg backend, no display needed); the caller
logs it to MLflow or saves it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402


def reliability_plot(y: np.ndarray, probabilities: dict[str, np.ndarray], bins: int = 10):
    """Observed win rate against predicted probability per bin, for each model."""
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(6, 7), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    edges = np.linspace(0, 1, bins + 1)
    for name, p in probabilities.items():
        which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
        frame = pd.DataFrame({"bin": which, "p": p, "y": y}).groupby("bin").mean()
        ax.plot(frame["p"], frame["y"], "o-", label=name)
        hist.hist(p, bins=edges, histtype="step", label=name)
    ax.set_ylabel("observed rate")
    ax.set_title("Reliability (held-out fold)")
    ax.legend(loc="upper left")
    hist.set_xlabel("predicted probability")
    hist.set_ylabel("rows")
    fig.tight_layout()
    return fig


def roc_pr_plot(y: np.ndarray, probabilities: dict[str, np.ndarray]):
    """ROC and precision-recall curves side by side, one line per model."""
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, p in probabilities.items():
        fpr, tpr, _ = roc_curve(y, p)
        roc.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(y, p)
        pr.plot(recall, precision, label=name)
    roc.plot([0, 1], [0, 1], "k--", lw=1)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (held out)")
    pr.axhline(np.mean(y), color="k", ls="--", lw=1)
    pr.set(xlabel="recall", ylabel="precision", title="Precision-recall (held out)")
    roc.legend(loc="lower right")
    fig.tight_layout()
    return fig


def shap_summary_plot(contributions: pd.DataFrame, features: pd.DataFrame, max_display: int = 20):
    """SHAP beeswarm of the strongest features (categoricals coloured by category code)."""
    import shap

    values = contributions.drop(columns="bias", errors="ignore")
    shown = features[values.columns].copy()
    for column in shown.columns:
        if not pd.api.types.is_numeric_dtype(shown[column].dtype):
            shown[column] = pd.Categorical(shown[column].astype("object")).codes.astype(float)
    shap.summary_plot(values.to_numpy(), shown.astype(float), max_display=max_display, show=False)
    fig = plt.gcf()
    fig.suptitle("SHAP values (log-odds), held-out sample")
    fig.tight_layout()
    return fig


def slice_plot(records: list[dict], models: tuple[str, ...] = ("model", "logistic_regression")):
    """ROC AUC per slice for each model, one panel per slice kind, sizes in the labels."""
    kinds = list(dict.fromkeys(r["slice"] for r in records))
    fig, axes = plt.subplots(
        len(kinds), 1, figsize=(7, 1.2 + 1.1 * len(records) / max(len(kinds), 1) * len(kinds))
    )
    axes = np.atleast_1d(axes)
    for ax, kind in zip(axes, kinds, strict=True):
        rows = [r for r in records if r["slice"] == kind]
        positions = np.arange(len(rows))
        height = 0.8 / len(models)
        for i, model in enumerate(models):
            values = [r.get(f"{model}_roc_auc") or np.nan for r in rows]
            ax.barh(positions + i * height, values, height=height, label=model)
        ax.set_yticks(positions + height * (len(models) - 1) / 2)
        ax.set_yticklabels([f"{r['value']} (n={r['n_deals']:,} deals)" for r in rows])
        ax.set_xlim(0.5, 1.0)
        ax.invert_yaxis()  # read top-down, in the slice's own order
        ax.set_title(kind.replace("_", " "), loc="left")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=len(models), frameon=False)
    axes[-1].set_xlabel("held-out ROC AUC")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
