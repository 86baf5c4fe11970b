"""Where the deal-win model's signal comes from on one simulated org: blocks, SHAP, ceiling.

For one seed: simulate the default organisation, score email tone (cached in ``--cache``),
build the deal-win training rows exactly as ``train_deal_win`` does, then fit on the same
time split

- the model (``fit_on_split``), the tuned logistic regression and the ceiling (features plus
  the simulator's latent deal state, as ``deal_win_quality.py`` fits it);
- mean |SHAP| of the model on the test rows, by feature block and for the top features;
- with ``--ablate``, the model and the logistic regression again without each block.

It imports whichever ``spm_ml`` comes first on ``sys.path``, so an older commit's simulator
and features can be measured with the same script::

    git worktree add /tmp/old <commit>
    PYTHONPATH=/tmp/old python benchmarks/deal_win_diagnosis.py --seed 0 --ablate
    python benchmarks/deal_win_diagnosis.py --seed 0 --ablate
    python benchmarks/deal_win_diagnosis.py --seed 0 --drop rep_closed_deals account_closed_deals

Prints one JSON line.  Run on demand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import pandas as pd

from spm_ml.data.simulate import SimulationConfig, simulate
from spm_ml.data.simulate.truth import latent_deal_state
from spm_ml.models.metrics import binary_metrics
from spm_ml.training.deal_win import DEAL_WIN, DealWinTrainConfig
from spm_ml.training.family import fit_on_split, logistic_on_split

BLOCKS = {
    "tone": r"^(inbound_(negative|positive)_share|inbound_tone_trend|days_since_positive_inbound"
    r"|latest_inbound_tone)",
    "email": r"^(emails_|email_inbound_share|days_since_(inbound|outbound)_email|reply_latency)",
    "activity": r"^(activities_|calls_|emails?_\d|meetings_|demos_|tasks_"
    r"|days_since_(call|meeting|demo|activity))",
    "contact": r"^contacts_engaged$",
    "track": r"^(rep_|account_)(closed_deals|win_rate|open_deals)",
    "history": r"^(stage|days_in_stage|amount|log_amount|amount_c|days_to_expected|close_date)",
    "static": r"^(product|account_(industry|region|log_)|rep_team|rep_tenure_days|deal_age_days)",
}
"""Feature blocks of ``deal_features`` by column name (``track``: the track record)."""


def block_of(column: str) -> str:
    """The block a deal feature column belongs to (``other`` if none)."""
    return next((b for b, pattern in BLOCKS.items() if re.search(pattern, column)), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablate", action="store_true", help="refit without each block")
    parser.add_argument("--drop", nargs="*", default=[], help="columns left out of every fit")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/spm_ml_diagnosis_scores.pq"))
    args = parser.parse_args()
    started = time.perf_counter()
    from spm_ml.nlp.signals import with_email_scores

    org = simulate(SimulationConfig(seed=args.seed))
    tables = with_email_scores(org.tables, cache=args.cache, n_process=2)
    config = DealWinTrainConfig(bootstrap_samples=0)
    rows = DEAL_WIN.rows(tables, config)
    X, split = rows.X.drop(columns=args.drop), rows.split
    y = rows.snapshots["won"].to_numpy().astype(int)
    groups = rows.snapshots["deal_id"].to_numpy()
    y_test = y[split.test]

    def roc_auc(p) -> float:
        return round(float(binary_metrics(y_test, p)["roc_auc"]), 4)

    def model(columns: pd.DataFrame):
        fitted = fit_on_split(DEAL_WIN, columns, y, groups, split, config)
        return fitted, fitted.predict_proba(columns.iloc[split.test])[:, 1]

    def logistic(columns: pd.DataFrame) -> float:
        fitted, _ = logistic_on_split(DEAL_WIN, columns, y, split, config)
        return roc_auc(fitted.predict_proba(columns.iloc[split.test])[:, 1])

    fitted, p = model(X)
    ece = round(float(binary_metrics(y_test, p)["ece"]), 4)
    latent = latent_deal_state(org.truth, rows.snapshots)
    out = {
        "seed": args.seed,
        "dropped": args.drop,
        "n_train": int(len(split.train)),
        "n_test": int(len(split.test)),
        "model": roc_auc(p),
        "model_ece": ece,
        "logistic": logistic(X),
        "ceiling": roc_auc(model(pd.concat([X, latent], axis=1))[1]),
    }
    shap = fitted.explain(X.iloc[split.test]).drop(columns="bias").abs().mean()
    by_block = shap.groupby(shap.index.map(block_of)).sum().sort_values(ascending=False)
    out["shap_by_block"] = by_block.round(4).to_dict()
    out["shap_top"] = shap.sort_values(ascending=False).head(12).round(4).to_dict()
    if args.ablate:
        out["without_block"] = {}
        for block in sorted(set(map(block_of, X.columns))):
            kept = X[[c for c in X.columns if block_of(c) != block]]
            scores = {"model": roc_auc(model(kept)[1]), "logistic": logistic(kept)}
            out["without_block"][block] = scores
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
