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

Outcomes are eventual (won at any time); the model predicts "won within 180 days" (on seed 0,
90% of the deals open at extraction close within 180 days).  Run on demand (5 to 10 minutes on the
shared 2-core machine, most of it training)::

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


def arms(coaching: list, stages: np.ndarray, seed: int) -> pd.DataFrame:
    """Per deal: the lever of each arm (None: nothing is done) and what chose it.

    The random arm draws among the levers that are advice at the deal's stage (the top
    recommendation chooses among the same); the top-|SHAP| arm takes the first lever of the
    feature with the largest |SHAP| (``levers_for_feature(f)[0]``), whatever its stage.
    """
    from spm_ml.coaching.levers import LEVERS, levers_for_feature

    rng = np.random.default_rng(seed)
    levers = list(LEVERS.values())
    applies = np.column_stack([lever.applies_to(stages) for lever in levers])
    rows = []
    for c, ok in zip(coaching, applies, strict=True):
        top = c.recommendations[0] if c.recommendations else None
        choices = [lever.name for lever, fits in zip(levers, ok, strict=True) if fits]
        feature = c.drivers[0]["feature"]
        shap_levers = levers_for_feature(feature)
        rows.append(
            {
                "deal_id": c.deal_id,
                "probability": c.probability,
                "top_lever": top.lever if top else None,
                "predicted_uplift": top.uplift_pp / 100.0 if top else 0.0,
                "random_lever": choices[rng.integers(0, len(choices))],
                "shap_feature": feature,
                "shap_actionable": bool(c.drivers[0]["actionable"]),
                "shap_lever": shap_levers[0].name if shap_levers else None,
                "predicted": {r.lever: r.uplift_pp / 100.0 for r in c.recommendations},
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

    from spm_ml.coaching.deals import coach_deals
    from spm_ml.coaching.levers import LEVERS
    from spm_ml.data.simulate.intervention import ACTIONS, Intervention, replay_outcomes
    from spm_ml.features.deals import deal_features, open_deals_at
    from spm_ml.scoring import DealScorer

    seconds = {}
    t = time.perf_counter()
    config, tables, loaded = train(args)
    seconds["simulate + train"] = time.perf_counter() - t
    t = time.perf_counter()
    as_of = pd.Timestamp(tables.extracted_at)
    scorer = DealScorer.for_model(loaded, tables)
    snapshots = open_deals_at(tables, as_of)
    # what DealScorer.coach does, with every lever's predicted uplift kept for the profile
    # (the best one is the same: recommendations are sorted, then cut to three)
    features = deal_features(tables, snapshots, scorer.feature_config, scorer.context)
    coaching = coach_deals(scorer.model, features, max_recommendations=len(LEVERS))
    stages = features["stage"].to_numpy()
    plan = arms(coaching, stages, args.seed)
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
    # references, not arms: one fixed lever for every deal (a demo where it is advice, else a
    # meeting) and the best action per deal in hindsight (what a perfect coach would get)
    demo_fits = LEVERS["run_demo"].applies_to(stages)
    every = uplift.unstack("action").loc[plan["deal_id"]]
    fixed = np.where(demo_fits, every["demo"], every["meeting"]).astype(float)
    oracle = every.max(axis=1).to_numpy().astype(float)
    values = np.column_stack([per_arm, paired, predicted, fixed, oracle])
    names = [
        *ARMS,
        "top rec - random",
        "top rec - top-|SHAP|",
        "predicted (top rec)",
        "demo, else meeting",
        "best in hindsight",
    ]
    stats = summary(values, bootstrap(values, args.bootstrap, args.seed), names)
    # the top-|SHAP| arm on the deals where its feature has a lever, against the top rec there
    has = plan["shap_lever"].notna().to_numpy()
    shap_where_lever = {
        "deals": int(has.sum()),
        "top-|SHAP| feature": float(per_arm[has, 2].mean()) if has.any() else None,
        "top recommendation": float(per_arm[has, 0].mean()) if has.any() else None,
    }

    # the profile: what the simulator rewards against what the model expects, lever by lever
    profile = {}
    for name, lever in LEVERS.items():
        fits = lever.applies_to(stages)
        ups = uplift.xs(lever.action, level="action").loc[plan["deal_id"]].to_numpy()
        top = (plan["top_lever"] == name).to_numpy()
        expected = plan["predicted"].map(lambda p, name=name: p.get(name, np.nan)).to_numpy()
        profile[name] = {
            "action": lever.action,
            "simulated_uplift": float(ups[fits].mean()),
            "simulated_uplift_where_top": float(ups[top].mean()) if top.any() else None,
            "predicted_uplift_where_top": float(expected[top].mean()) if top.any() else None,
            "model_expects_a_gain_share": float(np.isfinite(expected[fits]).mean()),
            "predicted_uplift_where_gain": float(np.nanmean(expected[fits]))
            if np.isfinite(expected[fits]).any()
            else None,
            "top_recommendation_share": float(top.mean()),
            "random_share": float((plan["random_lever"] == name).mean()),
            "top_shap_share": float((plan["shap_lever"] == name).mean()),
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
        "top_shap_where_lever": shap_where_lever,
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
        print(f"{name:24s} {100 * s['mean']:12.2f} [{100 * s['low']:6.2f}, {100 * s['high']:6.2f}]")
    print(
        f"{'lever':16s} {'sim. uplift':>11s} {'top rec share':>13s} "
        f"{'sim. where top':>14s} {'pred. where top':>15s}"
    )
    for name, p in profile.items():

        def pp(x):
            return "-" if x is None else f"{100 * x:.2f}"

        print(
            f"{name:16s} {pp(p['simulated_uplift']):>11s} {p['top_recommendation_share']:13.2f} "
            f"{pp(p['simulated_uplift_where_top']):>14s} {pp(p['predicted_uplift_where_top']):>15s}"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
