"""Quota-risk quality on simulated organisations: classifier, Monte Carlo, references, ceiling.

For each organisation size and seed: simulate (``SimulationConfig(n_reps=N, seed=s)``), then
``train_quota_risk`` as ``spm-ml train quota-risk`` does (snapshots at every eighth of each
quota period, label "attainment below 100% of quota", time split, the pipeline weighted by
out-of-fold deal models, email tone scored with the default sentiment model unless
``--no-sentiment``).  It reports, on the held-out periods and per fraction of the period
elapsed (25/50/75%):

- ``model`` (the calibrated classifier), ``monte_carlo`` (the deal-level draw), ``blend``
  (their mean), and the references ``logistic_regression`` (tuned on the same validation
  fold) and ``stage_weighted_pipeline`` (bookings + pipeline x stage in-period win rate);
- ``ceiling_gbm`` / ``ceiling_logistic``: the classifier and the tuned logistic regression
  fitted the same way given, in addition, the simulator's
  latent state at ``as_of`` (the rep's skill, engagement, manager quality, resignation
  decision; the latent health of each open deal, summed as health-weighted pipeline): what
  was knowable;
- the Monte Carlo's 80% attainment interval coverage, the lead time of warnings, and which
  estimator the validation periods chose to serve.

Usage::

    python benchmarks/quota_risk_quality.py [--reps 51 200] [--seeds 0] [--bootstrap 100]
        [--no-sentiment]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.data.simulate import SimulationConfig, simulate
from spm_ml.data.simulate.truth import latent_deal_state, latent_rep_state
from spm_ml.features.deals import DealFeatureConfig
from spm_ml.models.metrics import binary_metrics, calibrated_ece_floor
from spm_ml.training.family import fit_on_split, logistic_on_split
from spm_ml.training.quota_risk import QUOTA_RISK, QuotaRiskTrainConfig, train_quota_risk

ESTIMATORS = ("model", "monte_carlo", "blend", "logistic_regression", "stage_weighted_pipeline")
CEILINGS = ("ceiling_gbm", "ceiling_logistic")
REPORTED_FRACTIONS = (0.25, 0.5, 0.75)


def ceiling_probabilities(org, run, config: QuotaRiskTrainConfig) -> dict[str, np.ndarray]:
    """The classifier and the tuned logistic regression refitted with the latent state as
    extra inputs; their test-row P(miss).  The ceiling is the better of the two: with a few
    thousand rows, the learner limits what the latent state can show."""
    snapshots, features = run.snapshots, run.features
    inputs = features.drop(columns=["rep_id", "as_of", "period_start", "period_end"])
    rep = latent_rep_state(org.truth, snapshots[["rep_id", "as_of"]])
    rep = rep.select_dtypes("number")
    deals = _open_deals(org, snapshots)
    latent = latent_deal_state(org.truth, deals[["deal_id", "as_of"]])
    alive = 1.0 - latent["latent_dead"].astype(float).fillna(0).to_numpy()
    health = 1 / (1 + np.exp(-latent["latent_health"].astype(float).fillna(0).to_numpy()))
    share = deals["amount"].to_numpy() / snapshots["quota_amount"].to_numpy()[deals["snapshot"]]
    weighted = np.bincount(
        deals["snapshot"], weights=np.nan_to_num(share * health * alive), minlength=len(snapshots)
    )
    X = pd.concat([inputs.reset_index(drop=True), rep.reset_index(drop=True)], axis=1)
    X["latent_health_weighted_pipeline"] = weighted
    y = snapshots["miss"].to_numpy(dtype=int)
    split = run.split
    model = fit_on_split(QUOTA_RISK, X, y, snapshots["rep_id"].to_numpy(), split, config)
    logistic, _ = logistic_on_split(QUOTA_RISK, X, y, split, config)
    return {
        "ceiling_gbm": model.predict_proba(X.iloc[split.test])[:, 1],
        "ceiling_logistic": logistic.predict_proba(X.iloc[split.test])[:, 1],
    }


def fraction_metrics(held: pd.DataFrame, names) -> dict:
    """ROC AUC, ECE and Brier of each estimator at each reported fraction elapsed."""
    by_fraction = {}
    for fraction in REPORTED_FRACTIONS:
        part = held[np.isclose(held["fraction"], fraction)]
        by_fraction[f"{fraction:.0%}"] = {
            "rows": len(part),
            "miss_rate": round(float(part["miss"].mean()), 3),
            **{
                name: {
                    k: round(v, 4)
                    for k, v in binary_metrics(
                        part["miss"].to_numpy(), part[name].to_numpy()
                    ).items()
                    if k in ("roc_auc", "ece", "brier")
                }
                for name in names
            },
        }
    return by_fraction


def _open_deals(org, snapshots: pd.DataFrame) -> pd.DataFrame:
    from spm_ml.features.deals import deal_features
    from spm_ml.features.quota import open_deal_rows

    rows = open_deal_rows(org.tables, snapshots)
    amount = deal_features(
        org.tables, rows[["deal_id", "as_of"]], DealFeatureConfig(email_sentiment=False)
    )["amount"]
    return rows.assign(amount=np.nan_to_num(amount.to_numpy()))


def measure(n_reps: int, seed: int, bootstrap: int, sentiment: bool) -> dict:
    org = simulate(SimulationConfig(n_reps=n_reps, seed=seed))
    config = QuotaRiskTrainConfig(
        seed=seed,
        bootstrap_samples=bootstrap,
        deal_features=DealFeatureConfig(email_sentiment=sentiment),
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        run = train_quota_risk(org.tables, workdir=Path(work), config=config, register=False)
    seconds = time.perf_counter() - started
    held = run.held_out.copy()
    for name, p in ceiling_probabilities(org, run, config).items():
        held[name] = p
    held["fraction"] = run.features["fraction_elapsed"].to_numpy()[run.split.test]
    y = held["miss"].to_numpy()
    names = (*ESTIMATORS, *CEILINGS)
    overall = {name: binary_metrics(y, held[name].to_numpy()) for name in names}
    by_fraction = fraction_metrics(held, names)
    document = run.metrics
    for fraction in REPORTED_FRACTIONS:
        part = held[np.isclose(held["fraction"], fraction)]
        by_fraction[f"{fraction:.0%}"]["ece_floor_served"] = round(
            calibrated_ece_floor(part[document["serving_estimator"]["choice"]].to_numpy()), 4
        )
    return {
        "_held": held[["miss", "fraction", *names]].assign(seed=seed),
        "n_reps": n_reps,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "rows": {"train": len(run.split.train), "test": len(run.split.test)},
        "test_periods": sorted(
            str(p.date()) for p in run.snapshots.iloc[run.split.test]["period_start"].unique()
        ),
        "overall": {
            n: {k: round(v, 4) for k, v in m.items() if k in ("roc_auc", "ece", "brier")}
            for n, m in overall.items()
        },
        "model_roc_auc_ci95": document["model"]["ci95"]["roc_auc"],
        "monte_carlo_roc_auc_ci95": document["monte_carlo"]["ci95"]["roc_auc"],
        "by_fraction": by_fraction,
        "serving_estimator": document["serving_estimator"],
        "lead_time_days": document["lead_time_days"],
        "monte_carlo_interval": document["monte_carlo_interval"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, nargs="+", default=[51, 200])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--no-sentiment", action="store_true")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results, pooled = [], {}
    for n_reps in args.reps:
        for seed in args.seeds:
            result = measure(n_reps, seed, args.bootstrap, not args.no_sentiment)
            held = result.pop("_held")
            pooled.setdefault(n_reps, []).append(held)
            results.append(result)
            print(json.dumps(result, indent=1))
            _print_table(result)
    for n_reps, parts in pooled.items():
        if len(parts) > 1:
            results.append(pooled_result(n_reps, pd.concat(parts, ignore_index=True)))
            print(json.dumps(results[-1], indent=1))
            _print_table(results[-1])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def pooled_result(n_reps: int, held: pd.DataFrame) -> dict:
    """Every seed's held-out rows together: ECE over a few hundred rows per fraction is
    mostly binning noise, over a thousand much less (each seed's floor is printed too)."""
    names = (*ESTIMATORS, *CEILINGS)
    by_fraction = fraction_metrics(held, names)
    for fraction in REPORTED_FRACTIONS:
        part = held[np.isclose(held["fraction"], fraction)]
        by_fraction[f"{fraction:.0%}"]["ece_floor_blend"] = round(
            calibrated_ece_floor(part["blend"].to_numpy()), 4
        )
    return {
        "n_reps": n_reps,
        "pooled_seeds": sorted(held["seed"].unique().tolist()),
        "by_fraction": by_fraction,
    }


def _print_table(result: dict) -> None:
    names = (*ESTIMATORS, *CEILINGS)
    seeds = result.get("pooled_seeds", [result.get("seed")])
    print(f"\n{result['n_reps']} reps, seeds {seeds}: ROC AUC / ECE on held-out periods")
    header = f"{'elapsed':>8} {'rows':>5} " + " ".join(f"{n[:14]:>16}" for n in names)
    print(header)
    rows = [("all", result["rows"]["test"], result["overall"])] if "overall" in result else []
    rows += [(k, v["rows"], v) for k, v in result["by_fraction"].items()]
    for label, n, metrics in rows:
        cells = " ".join(
            f"{metrics[name]['roc_auc']:.3f} / {metrics[name]['ece']:.3f}".rjust(16)
            for name in names
        )
        print(f"{label:>8} {n:>5} {cells}")


if __name__ == "__main__":
    main()
