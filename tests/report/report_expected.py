"""What each section of a manager's page must list, derived from the batch outputs by the
rules the page states (written again here, independently of spm_ml/report/page.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.report import BatchOutputs, read_batch_outputs


def expected_reps(outputs: BatchOutputs, manager: str) -> list[str]:
    """Reps scored for quota risk, highest P(miss) first."""
    reps = outputs.reps
    mine = reps[(reps["manager_id"] == manager) & (reps["quota_status"] == "scored")]
    return list(mine.sort_values(["p_miss", "rep_id"], ascending=[False, True])["rep_id"])


def expected_attrition(outputs: BatchOutputs, manager: str) -> list[str]:
    reps = outputs.reps
    mine = reps[(reps["manager_id"] == manager) & (reps["attrition_status"] == "scored")]
    order = ["attrition_probability", "rep_id"]
    return list(mine.sort_values(order, ascending=[False, True])["rep_id"])


def expected_deals(outputs: BatchOutputs, manager: str, most: int = 10) -> list[str]:
    """Deals whose probability fell by 1 pp or more in 14 days, by amount x fall."""
    reps = set(outputs.reps.loc[outputs.reps["manager_id"] == manager, "rep_id"])
    deals = outputs.deals[outputs.deals["rep_id"].isin(reps)].copy()
    deals["fall"] = deals["probability_before"] - deals["probability"]
    deals = deals[deals["fall"] * 100 >= 1.0]
    deals["stake"] = deals["fall"] * deals["amount"]
    return list(deals.sort_values(["stake", "deal_id"], ascending=[False, True])["deal_id"][:most])


def expected_teams(outputs: BatchOutputs, manager: str) -> list[str]:
    reps = set(outputs.reps.loc[outputs.reps["manager_id"] == manager, "rep_id"])
    forecast = outputs.forecast
    return sorted(set(forecast.loc[forecast["id"].isin(reps), "team"]))


def synthetic_outputs(
    real: BatchOutputs, folder: Path, *, reps: int = 20, deals: int = 500, seed: int = 0
) -> BatchOutputs:
    """A batch run with the real run's schema and values, resampled so one manager
    (``M-SPEED``) has ``reps`` scored reps and ``deals`` open deals, written to ``folder``."""
    rng = np.random.default_rng(seed)
    scored = real.reps[real.reps["quota_status"] == "scored"]
    rep_rows = scored.iloc[rng.integers(0, len(scored), reps)].reset_index(drop=True)
    rep_ids = [f"S{i:03d}" for i in range(reps)]
    rep_rows = rep_rows.assign(
        rep_id=rep_ids,
        rep_name=[f"Rep {i}" for i in range(reps)],
        manager_id="M-SPEED",
        p_miss=rng.random(reps),
    )
    deal_rows = real.deals.iloc[rng.integers(0, len(real.deals), deals)].reset_index(drop=True)
    deal_rows = deal_rows.assign(
        deal_id=[f"SD{i:04d}" for i in range(deals)],
        rep_id=[rep_ids[i % reps] for i in range(deals)],
        probability_before=np.clip(deal_rows["probability"] + rng.normal(0.05, 0.1, deals), 0, 1),
    )
    forecast = real.forecast
    team = forecast[forecast["level"] == "team"].head(1).assign(id="Speed team")
    reps_forecast = forecast[forecast["level"] == "rep"].head(1)
    reps_forecast = pd.concat([reps_forecast] * reps, ignore_index=True).assign(
        id=rep_ids, team="Speed team"
    )
    frames = {
        "deal_scores": deal_rows,
        "rep_risk": rep_rows,
        "forecast": pd.concat([reps_forecast, team], ignore_index=True),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    manifest = dict(real.manifest)
    backtest = manifest.get("backtest") or {}
    if "team" in backtest and backtest["team"]:
        backtest = {**backtest, "team": {"Speed team": next(iter(backtest["team"].values()))}}
    manifest["backtest"] = backtest
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return read_batch_outputs(folder)
