"""Proof that the advice works: does a deal's top recommendation raise its simulated win rate?

The simulated organisation knows its causal drivers, so coaching can be tested against them.
One run:

1. simulate an organisation (default: the quickstart's, 50 AEs x 24 months, seed 0) and train
   the deal-win model on its tables the normal way (``train_deal_win`` into ``--workdir``, email
   tone scored first as quickstart does, or ``--no-sentiment``);
2. coach every deal open at the extraction time (``DealScorer.coach``): the model never saw
   these deals' outcomes (they are unknown in the tables), the simulator has their futures;
3. for each deal, three arms, each one extra action at the extraction time, replayed from the
   same random state (:func:`spm_ml.data.simulate.intervention.replay_outcomes`):

   * ``top recommendation``: the action of the deal's best lever (no recommendation with a
     positive predicted uplift: nothing is done);
   * ``random lever``: a lever of the catalogue drawn at random (seeded);
   * ``top-|SHAP| feature``: the first lever of the feature with the largest |SHAP| over all
     features, actionable or not (no lever for it: nothing can be done);

4. report per arm the simulated uplift of the win rate (won with the action minus won without,
   mean over deals) with a 95% bootstrap interval over deals, the paired differences, the
   model's predicted uplift for the top recommendation, and a profile: each action applied to
   every deal (what the simulator rewards) against how often the model recommends it.

Outcomes are eventual (won at any time); the model predicts "won within 180 days", which nearly
every deal open at extraction reaches or closes before.  Run on demand (about 3 minutes with
email tone cached)::

    python benchmarks/coaching_proof.py --workdir /tmp/coaching-proof

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

ARMS = ("top recommendation", "random lever", "top-|SHAP| feature")


def bootstrap(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Means of ``values`` (rows = deals, columns = quantities) over deal resamples."""
    rng = np.random.default_rng(seed)
    n = len(values)
    out = np.empty((samples, values.shape[1]))
    for b in range(samples):
        out[b] = values[rng.integers(0, n, n)].mean(axis=0)
    return out


def summary(values: np.ndarray, draws: np.ndarray, names: list[str]) -> dict:
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return {
        name: {
            "mean": float(values[:, j].mean()),
            "low": float(low[j]),
            "high": float(high[j]),
        }
        for j, name in enumerate(names)
    }


def train(args) -> tuple[object, object, object]:
    """Simulate, score email tone, train deal win; the organisation, tables and model."""
    from spm_ml import registry, settings
    from spm_ml.data.io import load_tables, write_tables
    from spm_ml.data.simulate import SimulationConfig, simulate
    from spm_ml.features.deals import DealFeatureConfig
    from spm_ml.training.deal_win import MODEL_NAME, DealWinTrainConfig, train_deal_win

    config = SimulationConfig(n_reps=args.reps, months=args.months, seed=args.seed)
    org = simulate(config)
    data_dir = args.workdir / "data"
    write_tables(org.tables, data_dir, format="parquet")
    tables = load_tables(data_dir)
    if args.sentiment:
        from spm_ml.nlp.signals import with_email_scores

        tables = with_email_scores(tables, cache=settings.email_scores_path(args.workdir))
    description = f"simulated org reps={args.reps} months={args.months} seed={args.seed}"
    run = train_deal_win(
        tables,
        workdir=args.workdir,
        config=DealWinTrainConfig(features=DealFeatureConfig(email_sentiment=args.sentiment)),
        data_description=description,
        reuse_identical=True,
    )
    registry.use_local_store(args.workdir)
    loaded = registry.load_model(MODEL_NAME, version=run.model_version)
    return config, tables, loaded


def arms(coaching: list, seed: int) -> pd.DataFrame:
    """Per deal: the action of each arm (None: nothing is done) and what chose it."""
    from spm_ml.coaching.levers import LEVERS, levers_for_feature

    rng = np.random.default_rng(seed)
    names = list(LEVERS)
    rows = []
    for c in coaching:
        top = c.recommendations[0] if c.recommendations else None
        lever = names[rng.integers(0, len(names))]
        feature = c.drivers[0]["feature"]
        shap_levers = levers_for_feature(feature)
        rows.append(
            {
                "deal_id": c.deal_id,
                "probability": c.probability,
                "top_lever": top["lever"] if top else None,
                "predicted_uplift": top["uplift_pp"] / 100.0 if top else 0.0,
                "random_lever": lever,
                "shap_feature": feature,
                "shap_lever": shap_levers[0].name if shap_levers else None,
            }
        )
    out = pd.DataFrame(rows)
    action = {name: lever.action for name, lever in LEVERS.items()}
    for arm, column in zip(ARMS, ("top_lever", "random_lever", "shap_lever"), strict=True):
        out[arm] = out[column].map(action)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/coaching-proof"))
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-sentiment", dest="sentiment", action="store_false")
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()

    from spm_ml.coaching.levers import LEVERS
    from spm_ml.data.simulate.intervention import ACTIONS, Intervention, replay_outcomes
    from spm_ml.features.deals import open_deals_at
    from spm_ml.scoring import DealScorer

    seconds = {}
    t = time.perf_counter()
    config, tables, loaded = train(args)
    seconds["simulate + train"] = time.perf_counter() - t
    t = time.perf_counter()
    as_of = pd.Timestamp(tables.extracted_at)
    scorer = DealScorer.for_model(loaded, tables)
    coaching = scorer.coach(open_deals_at(tables, as_of))
    plan = arms(coaching, args.seed)
    seconds["coach"] = time.perf_counter() - t

    # every action on every deal: the arms read their rows, the profile reads them all
    t = time.perf_counter()
    interventions = [Intervention(d, as_of, a) for d in plan["deal_id"] for a in ACTIONS]
    replay = replay_outcomes(config, interventions)
    seconds["replay"] = time.perf_counter() - t
    replay["uplift"] = replay["won_with"].astype(int) - replay["won_baseline"].astype(int)
    uplift = replay.set_index(["deal_id", "action"])["uplift"]
    baseline = replay.groupby("deal_id")["won_baseline"].first().loc[plan["deal_id"]]

    def arm_uplift(arm: str) -> np.ndarray:
        keys = list(zip(plan["deal_id"], plan[arm].fillna("outbound_email"), strict=True))
        values = uplift.loc[keys].to_numpy().astype(float)
        return np.where(plan[arm].isna().to_numpy(), 0.0, values)

    per_arm = np.column_stack([arm_uplift(arm) for arm in ARMS])
    paired = np.column_stack([per_arm[:, 0] - per_arm[:, 1], per_arm[:, 0] - per_arm[:, 2]])
    predicted = plan["predicted_uplift"].to_numpy()[:, None]
    values = np.column_stack([per_arm, paired, predicted])
    names = [*ARMS, "top rec - random", "top rec - top-|SHAP|", "predicted (top rec)"]
    stats = summary(values, bootstrap(values, args.bootstrap, args.seed), names)

    # the profile: what the simulator rewards, what the model recommends
    action_of = {name: lever.action for name, lever in LEVERS.items()}
    profile = {}
    for name, action in action_of.items():
        profile[name] = {
            "action": action,
            "simulated_uplift_all_deals": float(uplift.xs(action, level="action").mean()),
            "top_recommendation_share": float((plan["top_lever"] == name).mean()),
            "top_shap_share": float((plan["shap_lever"] == name).mean()),
            "recommended_deals_simulated_uplift": float(
                uplift.loc[
                    list(
                        zip(
                            plan.loc[plan["top_lever"] == name, "deal_id"],
                            [action] * int((plan["top_lever"] == name).sum()),
                            strict=True,
                        )
                    )
                ].mean()
            )
            if (plan["top_lever"] == name).any()
            else None,
        }
    result = {
        "command": "python benchmarks/coaching_proof.py"
        + ("" if args.sentiment else " --no-sentiment")
        + f" --reps {args.reps} --months {args.months} --seed {args.seed}",
        "as_of": str(as_of),
        "open_deals": len(plan),
        "baseline_win_rate": float(baseline.mean()),
        "applied_share": float(replay["applied"].mean()),
        "no_recommendation": int(plan["top_lever"].isna().sum()),
        "top_shap_without_lever": int(plan["shap_lever"].isna().sum()),
        "top_shap_features": plan["shap_feature"].value_counts().head(8).to_dict(),
        "uplift": stats,
        "profile": profile,
        "model_version": loaded.version,
        "sentiment": args.sentiment,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    print(f"{len(plan)} deals open at {as_of:%Y-%m-%d}; baseline win rate {baseline.mean():.3f}")
    print(f"{'':24s} {'uplift (pp)':>12s} {'95% interval':>18s}")
    for name in names:
        s = stats[name]
        print(
            f"{name:24s} {100 * s['mean']:12.2f} "
            f"[{100 * s['low']:6.2f}, {100 * s['high']:6.2f}]"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
