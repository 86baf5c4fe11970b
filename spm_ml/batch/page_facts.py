"""Facts the manager's page needs beside the scores, written into the batch's manifest:
each model's training date and held-out reliability, the forecast period's dates, and the
back-test's record of the team ranges.

The page (:mod:`spm_ml.report`) is built from the batch's outputs alone, never from live
models, so whatever it says about a model is read here, from the model's MLflow run,
when the job runs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.registry import LoadedModel

logger = logging.getLogger(__name__)

BACKTEST_PERIODS = 6
"""Past periods the page's back-test line counts ("last 6 periods: 5 of 6 inside")."""


def model_facts(models: dict[str, LoadedModel | None]) -> dict[str, dict]:
    """Per family with a champion: the run's start (training date, UTC), the label, held-out
    metrics and reliability bins of the estimator served (``reliability``: empty for a
    model trained before the bins were logged)."""
    facts = {}
    for family, model in models.items():
        if model is None:
            continue
        facts[family] = _facts_of(model)
    return facts


def _facts_of(model: LoadedModel) -> dict:
    from mlflow import MlflowClient

    out: dict = {"version": model.version, "trained_at": None, "reliability": []}
    if model.run_id is None:
        return out
    started = MlflowClient().get_run(model.run_id).info.start_time
    out["trained_at"] = datetime.fromtimestamp(started / 1000, tz=UTC).isoformat()
    try:
        document = model.run_document("metrics.json")
    except Exception as err:  # an old or foreign run: the page says what is missing
        logger.warning("%s v%s: no metrics.json in its run (%s)", model.name, model.version, err)
        return out
    served = document.get("serving_estimator", {})
    served = served.get("choice", "model") if isinstance(served, dict) else "model"
    metrics = document.get(served) if served in document else document.get("model", {})
    out |= {
        "estimator": served,
        "label": (document.get("label") or {}).get("definition"),
        "held_out": {
            k: metrics.get(k) for k in ("roc_auc", "brier", "ece", "n_test") if k in metrics
        },
        "reliability": (document.get("reliability") or {}).get(served, []),
    }
    return out


def period_facts(period) -> dict:
    """The forecast period's label and dates (start, close: the moment after its last day)."""
    return {
        "label": period.label,
        "start": period.start.isoformat(),
        "close": period.close.isoformat(),
    }


def backtest_record(path: Path, as_of: pd.Timestamp, fraction: float | None) -> dict:
    """The team and company ranges of the last :data:`BACKTEST_PERIODS` periods closed by
    ``as_of`` in ``spm-ml backtest``'s rows at ``path``, each replayed at the point nearest
    ``fraction`` elapsed: P10, P90, actual, inside or not.  ``{"missing": why}`` without a
    back-test."""
    if not path.exists():
        return {"missing": f"no back-test at {path}: run `spm-ml backtest`, then the batch again"}
    rows = pd.read_csv(path, parse_dates=["period_start", "period_close", "as_of"])
    rows = rows[(rows["period_close"] <= as_of) & rows["level"].isin(["team", "company"])]
    if rows.empty:
        return {"missing": f"the back-test at {path} has no period closed by {as_of:%Y-%m-%d}"}
    fractions = np.sort(rows["fraction"].unique())
    at = float(fractions[np.argmin(np.abs(fractions - (fraction or 0.5)))])
    rows = rows[rows["fraction"] == at]
    last = sorted(rows["period_start"].unique())[-BACKTEST_PERIODS:]
    rows = rows[rows["period_start"].isin(last)].sort_values(["level", "id", "period_start"])
    inside = (rows["actual"] >= rows["p10"]) & (rows["actual"] <= rows["p90"])
    record: dict = {"source": str(path), "fraction": at, "team": {}, "company": []}
    for row, hit in zip(rows.itertuples(index=False), inside, strict=True):
        entry = {
            "period": str(row.period),
            "p10": float(row.p10),
            "p90": float(row.p90),
            "actual": float(row.actual),
            "inside": bool(hit),
        }
        if row.level == "company":
            record["company"].append(entry)
        else:
            record["team"].setdefault(str(row.id), []).append(entry)
    return record
