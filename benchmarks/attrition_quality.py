"""Attrition quality (organisation mode) on the simulated organisation: model, reference, ceiling.

For each organisation (the default one, ``SimulationConfig(seed=0)``: 50 AEs x 24 months,
and a larger one, ``SimulationConfig(n_reps=200, seed=0)``: the default org has too few
voluntary exits to measure anything), ``train_attrition`` runs the real pipeline (every AE
employed at each month start, labelled "leaves voluntarily within 90 days", time split,
calibrated LightGBM beside the prior and a logistic regression tuned on the same validation
fold, tested on every AE employed on the test dates).  On the same held-out rows the script
also scores two ceilings from the simulator's latent state (``org.truth["rep_months"]``,
joined by rep and month: the month starting at ``as_of``):

- ``hazard``: the month's voluntary-exit hazard, as the simulator set it at the month start;
- ``hazard_or_decided``: the same, with 1 for reps who had already decided to leave before
  the month began (the simulator sets their hazard to 0: they cannot decide twice); what was
  knowable at ``as_of`` by someone who could read minds.

It prints, per organisation: voluntary leavers in the training labels and the test window;
ROC AUC with its rep-grouped 95% bootstrap interval, PR AUC and Brier of each score; ROC AUC
among top performers (trailing attainment in the company's top quartile at ``as_of``);
precision at 10 among top performers (per test month, the 10 top performers with the highest
score; share who leave within 90 days, averaged over months) beside the base rate; and the
lead time (the riskiest tenth flagged each month: days before a voluntary exit at which the
flag first fired and held).

Usage::

    python benchmarks/attrition_quality.py [--orgs default large] [--seeds 0] [--bootstrap 500]

The prior is one constant: its ranking figures (precision at 10, lead time) depend only on
how ties are broken, so they are shown as n/a.

Run on demand; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.data.simulate import SimulationConfig, simulate
from spm_ml.models.evaluation import evaluate
from spm_ml.models.metrics import binary_metrics
from spm_ml.training.attrition import (
    AttritionTrainConfig,
    lead_time_days,
    precision_at_k_per_date,
    train_attrition,
)

ORGS = {
    "default": SimulationConfig(seed=0),
    "large": SimulationConfig(n_reps=200, seed=0),
}
SCORES = ("model", "logistic_regression", "prior", "hazard", "hazard_or_decided")


def truth_scores(truth: dict, held_out: pd.DataFrame) -> dict[str, np.ndarray]:
    """The simulator's hazard of the month starting at each row's ``as_of`` (and 1 where the
    rep had already decided to leave), joined by rep and month."""
    months = truth["rep_months"][["rep_id", "month_start", "attrition_hazard", "resigning"]]
    months = months.astype({"rep_id": object})
    joined = held_out[["rep_id", "as_of"]].merge(
        months,
        left_on=["rep_id", "as_of"],
        right_on=["rep_id", "month_start"],
        how="left",
        validate="many_to_one",
    )
    missing = int(joined["attrition_hazard"].isna().sum())
    if missing:
        logging.warning("%d held-out rows have no rep-month in the truth: hazard 0", missing)
    hazard = joined["attrition_hazard"].fillna(0.0).to_numpy(dtype=np.float64)
    decided = joined["resigning"].fillna(False).to_numpy(dtype=bool)
    return {"hazard": hazard, "hazard_or_decided": np.where(decided, 1.0, hazard)}


def measure(name: str, config: SimulationConfig, bootstrap: int) -> dict:
    started = time.perf_counter()
    org = simulate(config)
    with tempfile.TemporaryDirectory() as work:
        run = train_attrition(
            org.tables,
            workdir=Path(work),
            config=AttritionTrainConfig(bootstrap_samples=bootstrap),
            register=False,
        )
    held_out = run.held_out.assign(**truth_scores(org.truth, run.held_out))
    test = run.snapshots.iloc[run.split.test].reset_index(drop=True)
    y = held_out["left"].to_numpy(dtype=int)
    top = test["top_performer"].to_numpy(dtype=bool)
    scores = {s: held_out[s].to_numpy(dtype=np.float64) for s in SCORES}
    evaluation = evaluate(y, scores, groups=held_out["rep_id"].to_numpy(), n_boot=bootstrap, seed=0)
    exits = org.tables.reps.set_index("rep_id")["exit_date"]
    results = {}
    for s in SCORES:
        lead = lead_time_days(test, scores[s], exits)
        constant = np.ptp(scores[s]) == 0
        results[s] = {
            "roc_auc": round(evaluation[s]["roc_auc"], 3),
            "roc_auc_ci95": evaluation[s]["ci95"]["roc_auc"],
            "pr_auc": round(evaluation[s]["pr_auc"], 3),
            "brier": round(evaluation[s]["brier"], 4),
            "top_performer_roc_auc": round(binary_metrics(y[top], scores[s][top])["roc_auc"], 3),
            "precision_at_10_top_performers": None
            if constant
            else round(precision_at_k_per_date(test, scores[s], top), 3),
            "lead_time_days": None
            if constant
            else {k: lead[k] for k in ("median", "q1", "q3", "warned", "leavers")},
        }
    sufficiency = run.metrics["data_sufficiency"]
    return {
        "org": name,
        "config": f"SimulationConfig(n_reps={config.n_reps}, months={config.months}, "
        f"seed={config.seed})",
        "voluntary_leavers_train": sufficiency["voluntary_leavers_train"],
        "voluntary_leavers_test": sufficiency["voluntary_leavers_test"],
        "test_rows": int(len(y)),
        "test_positives": int(y.sum()),
        "top_performer_rows": int(top.sum()),
        "top_performer_positives": int(y[top].sum()),
        "precision_at_10_base_rate": round(
            run.metrics["top_performers"]["precision_at_10"]["base_rate"], 3
        ),
        "test_start": str(run.split.test_start.date()),
        "observable_end": str(run.split.observable_end.date()),
        "scores": results,
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown(result: dict) -> str:
    lines = [
        f"**{result['org']}** ({result['config']}): {result['voluntary_leavers_train']} voluntary "
        f"leavers in the training labels, {result['voluntary_leavers_test']} in the test window "
        f"({result['test_start']} to {result['observable_end']}); {result['test_rows']:,} test "
        f"rows, {result['test_positives']} positive; top performers {result['top_performer_rows']} "
        f"rows, {result['top_performer_positives']} positive; precision at 10 of a random pick "
        f"{result['precision_at_10_base_rate']}",
        "",
        "| score | ROC AUC [95% CI] | PR AUC | Brier | ROC AUC top performers | precision@10 top "
        "performers | lead time days median (q1-q3), warned/leavers |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in result["scores"].items():
        lo, hi = s["roc_auc_ci95"]
        lead = s["lead_time_days"] or {"median": None, "warned": "n/a", "leavers": "n/a"}
        when = (
            "n/a"
            if lead["median"] is None
            else f"{lead['median']:.0f} ({lead['q1']:.0f}-{lead['q3']:.0f})"
        )
        precision = s["precision_at_10_top_performers"]
        lines.append(
            f"| {name} | {s['roc_auc']:.3f} [{lo:.3f}, {hi:.3f}] | {s['pr_auc']:.3f} | "
            f"{s['brier']:.4f} | {s['top_performer_roc_auc']:.3f} | "
            f"{'n/a' if precision is None else f'{precision:.3f}'} | {when}, "
            f"{lead['warned']}/{lead['leavers']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orgs", nargs="+", default=list(ORGS), choices=list(ORGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--bootstrap", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in args.orgs:
        for seed in args.seeds:
            config = dataclasses.replace(ORGS[name], seed=seed)
            result = measure(name, config, args.bootstrap)
            print(json.dumps(result))
            print(markdown(result))
            print()


if __name__ == "__main__":
    main()
