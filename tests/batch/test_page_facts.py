"""What the batch writes for the manager's page: each deal's probability 14 days before,
close-date pushes, each rep's top coaching, and the manifest's model facts, forecast period
and back-test record (spm_ml/batch/page_facts.py, rep_coaching.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spm_ml.batch.page_facts import backtest_record
from spm_ml.data.io import load_tables
from spm_ml.models.metrics import reliability_bins


def test_reliability_bins_count_every_row_once():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.15, 0.18, 0.95, 1.0, 0.55])
    bins = reliability_bins(y, p)
    assert [b["n"] for b in bins] == [1, 2, 1, 2]
    assert bins[1] == {"low": 0.1, "high": 0.2, "n": 2, "predicted": 0.165, "observed": 0.5}
    assert bins[-1]["observed"] == 1.0


def test_backtest_record_keeps_the_last_six_periods_at_the_nearest_point(tmp_path):
    starts = pd.date_range("2023-01-01", periods=8, freq="QS")
    rows = []
    for i, start in enumerate(starts):
        for fraction in (0.25, 0.5, 0.75):
            for level, unit in (("team", "East"), ("company", "company"), ("rep", "R1")):
                rows.append(
                    {
                        "level": level,
                        "id": unit,
                        "period": f"P{i}",
                        "period_start": start,
                        "period_close": start + pd.offsets.QuarterBegin(startingMonth=1),
                        "fraction": fraction,
                        "as_of": start,
                        "p10": 10.0,
                        "p90": 20.0,
                        "actual": 15.0 if i % 3 else 25.0,  # P0, P3, P6 outside
                    }
                )
    path = tmp_path / "backtest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    as_of = starts[-1] + pd.Timedelta(days=10)  # P7 still open: not counted
    record = backtest_record(path, as_of, fraction=0.45)
    assert record["fraction"] == 0.5
    east = record["team"]["East"]
    assert [p["period"] for p in east] == [f"P{i}" for i in range(1, 7)]
    assert sum(p["inside"] for p in east) == 4
    assert len(record["company"]) == 6
    assert "missing" in backtest_record(tmp_path / "none.csv", as_of, 0.5)


@pytest.mark.slow
def test_the_quickstarts_batch_carries_the_pages_facts(trained_workdir):
    folder = trained_workdir / "outputs" / "batch"
    manifest = json.loads((folder / "manifest.json").read_text())
    as_of = pd.Timestamp(manifest["as_of"])
    deals = pd.read_parquet(folder / "deal_scores.parquet")
    created = load_tables(trained_workdir / "data").deals.set_index("deal_id")["created_at"]
    recent = (created.reindex(deals["deal_id"]) >= as_of - pd.Timedelta(days=14)).to_numpy()
    assert deals.loc[recent, "probability_before"].isna().all()
    before = deals.loc[~recent, "probability_before"]
    assert before.notna().all() and before.between(0, 1).all()
    assert (deals["close_date_pushes"] >= 0).all() and deals["close_date_pushes"].max() > 0

    reps = pd.read_parquet(folder / "rep_risk.parquet")
    scored = reps[reps["quota_status"] == "scored"]
    assert scored["coaching_json"].notna().all()
    for row in scored.itertuples():
        coaching = json.loads(row.coaching_json)
        sentences = [r["sentence"] for r in coaching["deals_to_rescue"]]
        sentences += [a["sentence"] for a in coaching["activity_vs_baseline"]]
        sentences.append((coaching["pipeline_gap"] or {}).get("sentence"))
        assert pd.isna(row.coaching) or row.coaching in sentences

    facts = manifest["model_facts"]
    assert set(facts) == {f for f, m in manifest["models"].items() if "missing" not in m}
    for family, fact in facts.items():
        assert pd.Timestamp(fact["trained_at"]).tzinfo is not None, family
        assert sum(b["n"] for b in fact["reliability"]) == fact["held_out"]["n_test"], family
    period = manifest["forecast_period"]
    assert pd.Timestamp(period["start"]) <= as_of < pd.Timestamp(period["close"])
    assert "missing" in manifest["backtest"]  # the quickstart runs no back-test
