"""Deal-win quality on the simulated organisation: the real pipeline, its references, its ceiling.

For each seed: simulate the default organisation (``SimulationConfig(seed=s)``, 50 AEs x 24
months), score email sentiment with the default model (``score_emails``), then
``train_deal_win`` (weekly snapshots labelled "won within 180 days", time split, calibrated
LightGBM beside the class prior and a logistic regression tuned on the same validation fold,
tested on every deal open at the test dates).  On the same training rows and the same test
rows the script then fits:

- ``lgbm_default``: ``lightgbm.LGBMClassifier()`` with default settings, same inputs;
- ``odoo_naive_bayes``: Odoo's predictive lead scoring (naive Bayes over the stage reached
  and categorical field frequencies, counts from 0.1, clamped to 0.01-99.99%), learned
  from each deal closed before the test start, once, at its last snapshot (Odoo's way);
- ``ceiling``: the same learner fitted the same way, given the simulator's latent deal
  state at ``as_of`` (``spm_ml.data.simulate.truth.latent_deal_state``) *in addition to*
  the observed features: the figure "what was knowable".

It prints, per seed and as medians: ROC AUC, ECE and Brier of each; the paired,
deal-grouped bootstrap interval of the model's ROC AUC gap to each reference and to the
ceiling; the truth-based check (the model scored against the simulator's ground truth on
every deal open at the test dates, its ROC AUC beside the reported one and whether it lies
in the reported 95% interval); and the ROC AUC the old evaluation would have reported for
the same model (snapshots of deals closed by extraction only, the last 25% of their dates,
labelled with the eventual outcome) beside its ROC AUC on every deal open on those dates
(eventual outcome from the truth).  Then the model and the logistic regression on the first
seed without the email-tone block, and the first seed's metrics per slice.

Usage::

    python benchmarks/deal_win_quality.py [--seeds 0 1 2] [--bootstrap 50] [--no-sentiment]
        [--no-ablation]

``--no-sentiment`` skips the spaCy scoring (and the email-tone features) for quick
iteration; published figures include it.  Run on demand; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.data.simulate import SimulationConfig, realism_report, simulate
from spm_ml.data.simulate.truth import latent_deal_state, truth_population
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.snapshots import deal_snapshots
from spm_ml.models.deal_win import (
    categorical_columns,
    feature_config_of,
    model_inputs,
)
from spm_ml.models.metrics import binary_metrics, paired_difference_interval
from spm_ml.models.references import DefaultLGBM, OdooNaiveBayes, closed_deal_rows
from spm_ml.training.deal_win import DEAL_WIN, DealWinRun, DealWinTrainConfig, train_deal_win
from spm_ml.training.family import fit_on_split

NAMES = ("model", "prior", "logistic_regression", "lgbm_default", "odoo_naive_bayes", "ceiling")
COMPARED = ("logistic_regression", "lgbm_default", "odoo_naive_bayes", "ceiling")
EVENTUALLY = 100 * 365
"""A horizon no deal outlives: "won within it" is the eventual outcome."""
LABELS = {
    "model": "model",
    "prior": "prior",
    "logistic_regression": "logistic",
    "lgbm_default": "LightGBM default",
    "odoo_naive_bayes": "Odoo naive Bayes",
    "ceiling": "ceiling",
}


def references(run: DealWinRun, tables, seed: int) -> dict[str, np.ndarray]:
    """Test-row probabilities of the default LightGBM and of Odoo's naive Bayes (two ways)."""
    X = model_inputs(run.features)
    y = run.snapshots["won"].to_numpy().astype(int)
    split, test = run.split, X.iloc[run.split.test]
    lgbm = DefaultLGBM(categorical_columns(X), random_state=seed)
    lgbm.fit(X.iloc[split.train], y[split.train])
    closed, outcome = closed_deal_rows(run.snapshots, split.train, tables.deals, split.test_start)
    odoo = OdooNaiveBayes().fit(X.iloc[closed], outcome)
    per_snapshot = OdooNaiveBayes().fit(X.iloc[split.train], y[split.train])
    return {
        "lgbm_default": lgbm.predict_proba(test)[:, 1],
        "odoo_naive_bayes": odoo.predict_proba(test)[:, 1],
        "odoo_per_snapshot": per_snapshot.predict_proba(test)[:, 1],
    }


def ceiling(run: DealWinRun, truth: dict, config: DealWinTrainConfig) -> np.ndarray:
    """The model's learner, fitted as training fits it, on features plus the latent state."""
    X = pd.concat([model_inputs(run.features), latent_deal_state(truth, run.snapshots)], axis=1)
    y = run.snapshots["won"].to_numpy().astype(int)
    deals = run.snapshots["deal_id"].to_numpy()
    model = fit_on_split(DEAL_WIN, X, y, deals, run.split, config)
    return model.predict_proba(X.iloc[run.split.test])[:, 1]


def truth_check(org, tables, run: DealWinRun, config: DealWinTrainConfig) -> dict:
    """The model scored against the simulator's truth on every deal open at the test dates,
    and what the old evaluation (closed deals only) would have reported."""
    held = run.held_out
    population = truth_population(
        tables.deals,
        org.truth,
        np.sort(held["as_of"].unique()),
        horizon_days=config.label.horizon_days,
    )
    key = ["deal_id", "as_of"]
    same_rows = len(population) == len(held) and (
        population[key]
        .sort_values(key)
        .reset_index(drop=True)
        .equals(held[key].sort_values(key).reset_index(drop=True))
    )
    truth = binary_metrics(population["won"].to_numpy(), _score(run, tables, population))
    reported = run.metrics["model"]
    low, high = reported["ci95"]["roc_auc"]
    return {
        "truth_roc_auc": truth["roc_auc"],
        "reported_roc_auc": reported["roc_auc"],
        "reported_roc_auc_ci95": [low, high],
        "truth_inside_ci": bool(low <= truth["roc_auc"] <= high),
        "truth_rows": len(population),
        "truth_rows_equal_test_rows": bool(same_rows),
        **old_protocol(org, tables, run, config),
    }


def old_protocol(org, tables, run: DealWinRun, config: DealWinTrainConfig) -> dict:
    """The same model judged the old way: snapshots of deals closed by extraction only, the
    last 25% of their dates, labelled with the eventual outcome; beside it, every deal open
    on those dates labelled from the truth.  Dates before the model's training cut-off are
    dropped so that every row is out of sample."""
    deals = tables.deals.set_index("deal_id")
    every = deal_snapshots(tables, every_days=config.snapshot_every_days, label=config.label)
    closed = every[every["deal_id"].map(deals["outcome"]).notna().to_numpy()]
    start = pd.Timestamp(
        np.quantile(closed["as_of"].to_numpy().astype("int64"), 1 - config.test_fraction)
    ).normalize()
    start = max(start, run.split.test_start)
    rows = closed[closed["as_of"] >= start].reset_index(drop=True)
    eventual = rows["deal_id"].map(deals["outcome"]).eq("won").to_numpy().astype(int)
    old = binary_metrics(eventual, _score(run, tables, rows))
    everyone = truth_population(
        tables.deals, org.truth, np.sort(rows["as_of"].unique()), horizon_days=EVENTUALLY
    )
    truth = binary_metrics(everyone["won"].to_numpy(), _score(run, tables, everyone))
    return {
        "old_protocol_start": str(start.date()),
        "old_protocol_roc_auc": old["roc_auc"],
        "old_protocol_rows": len(rows),
        "old_window_truth_roc_auc": truth["roc_auc"],
        "old_window_truth_rows": len(everyone),
    }


def _score(run: DealWinRun, tables, snapshots: pd.DataFrame) -> np.ndarray:
    features = deal_features(tables, snapshots[["deal_id", "as_of"]], feature_config_of(run.record))
    return run.model.predict_proba(model_inputs(features))[:, 1]


def measure(org, tables, features: DealFeatureConfig, bootstrap: int, full: bool) -> dict:
    """Train once on ``tables``; return the held-out figures (all references when ``full``)."""
    config = DealWinTrainConfig(bootstrap_samples=bootstrap, features=features)
    with tempfile.TemporaryDirectory() as tmp:
        run = train_deal_win(tables, workdir=Path(tmp), config=config, register=False)
    held = run.held_out
    seconds = {"train": round(run.seconds, 1)}
    names = ["model", "prior", "logistic_regression"]
    extra = {}
    if full:
        started = time.perf_counter()
        probabilities = references(run, tables, config.seed)
        seconds["references"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        probabilities["ceiling"] = ceiling(run, org.truth, config)
        seconds["ceiling"] = round(time.perf_counter() - started, 1)
        held = held.assign(**probabilities)
        names = list(NAMES)
        extra["odoo_per_snapshot"] = _rounded(
            binary_metrics(held["won"], held["odoo_per_snapshot"])
        )
        started = time.perf_counter()
        extra["truth_check"] = truth_check(org, tables, run, config)
        seconds["truth_check"] = round(time.perf_counter() - started, 1)
    y, groups = held["won"].to_numpy(), held["deal_id"].to_numpy()
    metrics = {n: _rounded(binary_metrics(y, held[n].to_numpy())) for n in names}
    gaps = {}
    for name in (n for n in COMPARED if n in names):
        low, high = paired_difference_interval(
            y,
            held["model"].to_numpy(),
            held[name].to_numpy(),
            groups=groups,
            n_boot=max(bootstrap, 200),
            seed=config.seed,
        )
        gap = metrics["model"]["roc_auc"] - metrics[name]["roc_auc"]
        gaps[name] = {"gap": round(gap, 4), "ci95": [round(low, 4), round(high, 4)]}
    return {
        "metrics": metrics,
        "model_roc_auc_ci95": run.metrics["model"]["ci95"]["roc_auc"],
        "gaps": gaps,
        **extra,
        "n_test": len(held),
        "n_train": len(run.split.train),
        "censoring": {k: v for k, v in run.metrics["censoring"].items() if k != "treatment"},
        "slices": run.slices,
        "seconds": seconds,
    }


def _rounded(metrics: dict) -> dict:
    return {k: round(float(metrics[k]), 4) for k in ("roc_auc", "ece", "brier")}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def tables_markdown(results: dict[int, dict]) -> str:
    """The four tables docs/benchmarks.md quotes, with a median row each."""
    seeds = list(results)
    lines = []

    def add(header: list[str], rows: list[list[str]]) -> None:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("| --- |" + " ---: |" * (len(header) - 1))
        lines.extend("| " + " | ".join(r) + " |" for r in rows)
        lines.append("")

    names = [n for n in NAMES if all(n in results[s]["metrics"] for s in seeds)]
    rows = []
    for s in seeds:
        m, ci = results[s]["metrics"], results[s]["model_roc_auc_ci95"]
        cells = [f"{m['model']['roc_auc']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}]"]
        cells += [f"{m[n]['roc_auc']:.4f}" for n in names[1:]]
        rows.append([str(s), *cells, f"{results[s]['n_test']:,}"])
    med = [f"{_median([results[s]['metrics'][n]['roc_auc'] for s in seeds]):.4f}" for n in names]
    rows.append(["median", *med, f"{int(_median([results[s]['n_test'] for s in seeds])):,}"])
    add(
        ["seed", "model ROC AUC [95% CI]", *[LABELS[n] for n in names[1:]], "test rows"],
        rows,
    )

    compared = [n for n in COMPARED if all(n in results[s]["gaps"] for s in seeds)]
    rows = []
    for s in seeds:
        g = results[s]["gaps"]
        rows.append(
            [str(s)]
            + [
                f"{g[n]['gap']:+.4f} [{g[n]['ci95'][0]:+.3f}, {g[n]['ci95'][1]:+.3f}]"
                for n in compared
            ]
        )
    rows.append(
        ["median"]
        + [f"{_median([results[s]['gaps'][n]['gap'] for s in seeds]):+.4f}" for n in compared]
    )
    add(["seed", *[f"model - {LABELS[n]} [paired 95% CI]" for n in compared]], rows)

    rows = []
    for s in seeds:
        m = results[s]["metrics"]
        rows.append([str(s)] + [f"{m[n]['ece']:.4f} / {m[n]['brier']:.4f}" for n in names])
    rows.append(
        ["median"]
        + [
            f"{_median([results[s]['metrics'][n]['ece'] for s in seeds]):.4f} / "
            f"{_median([results[s]['metrics'][n]['brier'] for s in seeds]):.4f}"
            for n in names
        ]
    )
    add(["seed (ECE / Brier)", *[LABELS[n] for n in names]], rows)

    if all("truth_check" in results[s] for s in seeds):
        rows = []
        for s in seeds:
            t = results[s]["truth_check"]
            rows.append(
                [
                    str(s),
                    f"{t['reported_roc_auc']:.4f} [{t['reported_roc_auc_ci95'][0]:.3f}, "
                    f"{t['reported_roc_auc_ci95'][1]:.3f}]",
                    f"{t['truth_roc_auc']:.4f}",
                    "yes" if t["truth_inside_ci"] else "**no**",
                    f"{t['truth_rows']:,}"
                    + ("" if t["truth_rows_equal_test_rows"] else " (differ)"),
                    f"{t['old_protocol_roc_auc']:.4f} ({t['old_protocol_rows']:,} rows)",
                    f"{t['old_window_truth_roc_auc']:.4f} ({t['old_window_truth_rows']:,} rows)",
                ]
            )
        add(
            [
                "seed",
                "reported ROC AUC [95% CI]",
                "vs truth, every open deal",
                "inside CI",
                "truth rows",
                "old protocol: closed deals only",
                "same dates, every open deal (truth)",
            ],
            rows,
        )
    return "\n".join(lines)


def slices_markdown(records: list[dict]) -> str:
    """Model and logistic regression per segment, size band, rep history and stage."""
    lines = [
        "| slice | value | deals | win rate | model AUC | LR AUC | model ECE |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in records:
        cells = [r.get(k) for k in ("model_roc_auc", "logistic_regression_roc_auc", "model_ece")]
        numbers = ["n/a" if v is None else f"{v:.3f}" for v in cells]
        lines.append(
            f"| {r['slice'].replace('_', ' ')} | {r['value']} | {r['n_deals']:,} "
            f"| {r['win_rate']:.2f} | " + " | ".join(numbers) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--bootstrap", type=int, default=50)
    parser.add_argument("--no-sentiment", action="store_true", help="skip email scoring")
    parser.add_argument("--no-ablation", action="store_true", help="skip the no-email run")
    parser.add_argument("--n-reps", type=int, default=50)
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    features = DealFeatureConfig(email_sentiment=not args.no_sentiment)

    results: dict[int, dict] = {}
    first = None
    for seed in args.seeds:
        started = time.perf_counter()
        org = simulate(SimulationConfig(n_reps=args.n_reps, months=args.months, seed=seed))
        tables = org.tables
        realism = {c.name: round(c.value, 3) for c in realism_report(tables)}
        if not args.no_sentiment:
            from spm_ml.nlp.signals import score_emails

            tables = score_emails(tables, n_process=2)
        if first is None:
            first = (org, tables)
        results[seed] = measure(org, tables, features, args.bootstrap, full=True)
        results[seed]["total_seconds"] = round(time.perf_counter() - started, 1)
        results[seed]["win_rate"] = realism["win_rate"]
        print(json.dumps({"seed": seed, **results[seed]}), flush=True)

    print()
    print(tables_markdown(results), flush=True)
    print(f"Per slice, seed {args.seeds[0]}:")
    print(slices_markdown(results[args.seeds[0]]["slices"]), flush=True)

    if not args.no_ablation and not args.no_sentiment and first is not None:
        seed = args.seeds[0]
        without = measure(
            *first, DealFeatureConfig(email_sentiment=False), args.bootstrap, full=False
        )
        print(json.dumps({"seed": seed, "email_sentiment": False, **without}), flush=True)
        print(f"Seed {seed}, with and without the email-tone block:")
        print(
            "| features | model ROC AUC [95% CI] | logistic | gap [paired 95% CI] "
            "| model ECE | logistic ECE |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for label, m in (("with email tone", results[seed]), ("without email tone", without)):
            ci, gap = m["model_roc_auc_ci95"], m["gaps"]["logistic_regression"]
            print(
                f"| {label} | {m['metrics']['model']['roc_auc']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}] "
                f"| {m['metrics']['logistic_regression']['roc_auc']:.4f} "
                f"| {gap['gap']:+.4f} [{gap['ci95'][0]:+.3f}, {gap['ci95'][1]:+.3f}] "
                f"| {m['metrics']['model']['ece']:.4f} "
                f"| {m['metrics']['logistic_regression']['ece']:.4f} |"
            )


if __name__ == "__main__":
    main()
