"""Deal-win quality on the simulated organisation: the real pipeline, as a user runs it.

For each seed: simulate the default organisation (``SimulationConfig(seed=s)``, 50 AEs x 24
months), score email sentiment with the default model (``score_emails``), then
``train_deal_win`` (weekly snapshots, time split, calibrated LightGBM beside a logistic
regression tuned on the same validation fold) and read the held-out figures.  Prints per seed
and the median: model ROC AUC, logistic-regression ROC AUC, their gap (with a paired,
deal-grouped bootstrap interval: both models scored on the same resamples), the ECEs; then
the same for the first seed without the email-tone block (``email_sentiment=False``).

Issue 4's bar on the simulated organisation: gap >= 0.02 and ECE < 0.03.

Usage::

    python benchmarks/deal_win_quality.py [--seeds 0 1 2] [--bootstrap 50] [--no-sentiment]
        [--no-ablation]

``--no-sentiment`` skips the spaCy scoring (~40 s per organisation) for quick iteration;
published figures include it.  Run on demand; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from spm_ml.data.simulate import SimulationConfig, realism_report, simulate
from spm_ml.features.deals import DealFeatureConfig
from spm_ml.models.metrics import paired_difference_interval
from spm_ml.training.deal_win import DealWinTrainConfig, train_deal_win


def measure(tables, features: DealFeatureConfig, bootstrap: int) -> dict:
    """Train once on ``tables`` and return the held-out figures."""
    with tempfile.TemporaryDirectory() as tmp:
        config = DealWinTrainConfig(bootstrap_samples=bootstrap, features=features)
        run = train_deal_win(tables, workdir=Path(tmp), config=config, register=False)
    model = run.metrics["model"]
    logistic = run.metrics["references"]["logistic_regression"]
    held = run.held_out
    gap_ci = paired_difference_interval(
        held["won"].to_numpy(),
        held["model"].to_numpy(),
        held["logistic_regression"].to_numpy(),
        groups=held["deal_id"].to_numpy(),
        n_boot=max(bootstrap, 200),
    )
    out = {
        "model_roc_auc": model["roc_auc"],
        "lr_roc_auc": logistic["roc_auc"],
        "gap": model["roc_auc"] - logistic["roc_auc"],
        "gap_ci95": [round(gap_ci[0], 4), round(gap_ci[1], 4)],
        "model_ece": model["ece"],
        "lr_ece": logistic["ece"],
        "n_test": model["n_test"],
        "seconds": round(run.seconds, 1),
    }
    if "ci95" in model:
        out["model_roc_auc_ci95"] = model["ci95"].get("roc_auc")
    return out


def row(label: str, m: dict) -> str:
    ci = m.get("model_roc_auc_ci95")
    ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    gap_ci = m.get("gap_ci95")
    gap_text = f" [{gap_ci[0]:+.3f}, {gap_ci[1]:+.3f}]" if gap_ci else ""
    return (
        f"| {label} | {m['model_roc_auc']:.4f}{ci_text} | {m['lr_roc_auc']:.4f} | "
        f"{m['gap']:+.4f}{gap_text} | {m['model_ece']:.4f} | {m['lr_ece']:.4f} | "
        f"{m['n_test']:,} |"
    )


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

    results: dict[int, dict] = {}
    first_tables = None
    for seed in args.seeds:
        started = time.perf_counter()
        org = simulate(SimulationConfig(n_reps=args.n_reps, months=args.months, seed=seed))
        tables = org.tables
        realism = {c.name: round(c.value, 3) for c in realism_report(tables)}
        if not args.no_sentiment:
            from spm_ml.nlp.signals import score_emails

            tables = score_emails(tables, n_process=2)
        if first_tables is None:
            first_tables = tables
        results[seed] = measure(tables, DealFeatureConfig(), args.bootstrap)
        results[seed]["total_seconds"] = round(time.perf_counter() - started, 1)
        results[seed]["win_rate"] = realism["win_rate"]
        results[seed]["annual_turnover"] = realism["annual_turnover"]
        print(json.dumps({"seed": seed, **results[seed]}), flush=True)

    header = (
        "| seed | model ROC AUC [95% CI] | LR ROC AUC | gap [paired 95% CI] "
        "| model ECE | LR ECE | test rows |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    print()
    print(header)
    for seed, m in results.items():
        print(row(str(seed), m))
    keys = ("model_roc_auc", "lr_roc_auc", "gap", "model_ece", "lr_ece")
    median = {k: statistics.median(m[k] for m in results.values()) for k in keys}
    median["n_test"] = int(statistics.median(m["n_test"] for m in results.values()))
    print(row("median", median))

    if not args.no_ablation and first_tables is not None:
        seed = args.seeds[0]
        without = measure(first_tables, DealFeatureConfig(email_sentiment=False), args.bootstrap)
        print()
        print(f"Seed {seed}, with and without the email-tone block:")
        print(header)
        print(row("with email tone", results[seed]))
        print(row("without email tone", without))
        print(json.dumps({"seed": seed, "email_sentiment": False, **without}), flush=True)


if __name__ == "__main__":
    main()
