"""The back-test: its metrics document, CRPS, and a replay blind to what came after it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from spm_ml.cli import app
from spm_ml.data.tables import Tables
from spm_ml.forecast.backtest import PREDICTION_COLUMNS, BacktestConfig, backtest, crps
from spm_ml.forecast.bookings import ForecastConfig
from spm_ml.forecast.periods import parse_period

runner = CliRunner()
FAST = BacktestConfig(forecast=ForecastConfig(sims=300, seed=0), deal_folds=2)


def test_crps_of_a_point_is_its_absolute_error_and_of_two_points_known():
    assert crps(np.full((1, 10), 5.0), np.array([2.0]))[0] == pytest.approx(3.0)
    # draws {0, 1} half each, actual 0: E|X - 0| = 0.5, E|X - X'| = 0.5 -> 0.25
    assert crps(np.array([[0.0, 1.0] * 50]), np.array([0.0]))[0] == pytest.approx(0.25)


@pytest.mark.slow
def test_backtest_command_writes_the_issue_keys_and_the_chart(small_org_dir, tmp_path):
    path = tmp_path / "backtest.json"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--data",
            str(small_org_dir),
            "--workdir",
            str(tmp_path / "work"),
            "--metrics-json",
            str(path),
            "--sims",
            "300",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(path.read_text())
    keys = {"coverage_80", "p50_mape", "p50_bias", "crps", "n_periods", "references"}
    assert keys <= set(document)
    assert set(document["references"]) == {"stage_weighted", "run_rate"}
    for reference in document["references"].values():
        assert "p50_mape" in reference
    assert set(document["by_elapsed"]) == {"0.25", "0.5", "0.75"}
    for block in document["by_elapsed"].values():
        assert keys <= set(block)
    assert document["by_elapsed"]["0.5"]["coverage_80"] == document["coverage_80"]
    assert set(document["by_level"]) == {"company", "team", "rep"}
    # 2024Q1 has no closed period before it to learn from; at 25% of 2024Q2 no deal label
    # has its 180-day horizon behind it yet: both skipped, and said why
    assert document["n_periods"] == 3 and document["periods"] == ["2024Q2", "2024Q3", "2024Q4"]
    skipped = {(s["period"], s["fraction"]) for s in document["skipped"]}
    assert (
        {("2024Q1", f) for f in (0.25, 0.5, 0.75)}
        <= skipped
        <= {
            *{("2024Q1", f) for f in (0.25, 0.5, 0.75)},
            ("2024Q2", 0.25),
        }
    )
    assert all(s["reason"] for s in document["skipped"])
    assert 0 <= document["coverage_80"] <= 1 and document["crps"] > 0
    # three periods replayed: the last one's mid-period range is the first a back-test can
    # widen (too few before it otherwise), and it is said how many rows were
    assert "coverage_80_widened" in document and document["widened"]["n"] >= 0
    assert (tmp_path / "out" / "backtest.png").stat().st_size > 1000
    rows = pd.read_csv(tmp_path / "out" / "backtest.csv")
    assert set(rows["level"]) == {"company", "team", "rep"}
    assert "cover80" in result.output and "2024Q4" in result.output


def vandalise_after(tables: Tables, cutoff: pd.Timestamp, seed: int) -> Tables:
    """Another future from ``cutoff`` on: deals open then get other outcomes, close dates
    and amounts; rows dated at or after it are partly dropped or rewritten; reps get other
    exits; later quota periods other amounts.  A quota of a period already started is
    kept: it was set at the period's start, and the forecast is compared against it."""
    rng = np.random.default_rng(seed)
    deals = tables.deals.copy()
    later = ~(deals["closed_at"] < cutoff).to_numpy()
    deals.loc[later, "outcome"] = rng.choice(["won", "lost"], later.sum())
    deals.loc[later, "stage"] = np.where(
        deals.loc[later, "outcome"] == "won", "closed_won", "closed_lost"
    )
    deals.loc[later, "closed_at"] = cutoff + pd.to_timedelta(
        rng.integers(0, 60 * 86400, later.sum()), "s"
    )
    deals.loc[later, "amount"] = rng.uniform(1, 1e6, later.sum())
    born_later = (deals["created_at"] >= cutoff).to_numpy()
    deals = deals[~(born_later & (rng.random(len(deals)) < 0.5))]

    def rewrite(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        future = (frame[column] >= cutoff).to_numpy()
        return frame[~(future & (rng.random(len(frame)) < 0.5))].reset_index(drop=True)

    history = tables.deal_history.copy()
    future_amounts = (history["changed_at"] >= cutoff) & (history["field"] == "amount")
    history.loc[future_amounts, "new_value"] = "1.0"
    history = rewrite(history[history["deal_id"].isin(deals["deal_id"])], "changed_at")
    reps = tables.reps.copy()
    leaves_later = ~(reps["exit_date"] < cutoff).to_numpy()
    reps.loc[leaves_later, "exit_date"] = cutoff + pd.to_timedelta(
        rng.integers(0, 90 * 86400, leaves_later.sum()), "s"
    )
    quotas = tables.quotas.copy()
    starts_later = (quotas["period_start"] >= cutoff).to_numpy()
    quotas.loc[starts_later, "quota_amount"] *= rng.uniform(0.2, 3.0, starts_later.sum())
    keep = ~tables.activities["deal_id"].isin(set(tables.deals["deal_id"]) - set(deals["deal_id"]))
    activities = rewrite(tables.activities[keep.to_numpy()], "occurred_at")
    keep = ~tables.emails["deal_id"].isin(set(tables.deals["deal_id"]) - set(deals["deal_id"]))
    emails = rewrite(tables.emails[keep.to_numpy()], "sent_at")
    return tables.replace(
        deals=deals.reset_index(drop=True),
        deal_history=history,
        reps=reps,
        quotas=quotas,
        activities=activities,
        emails=emails,
    )


@pytest.mark.slow
def test_a_replay_does_not_see_what_came_after_its_as_of(small_org):
    """The back-test's forecast of 2024Q4 at mid-period, from the true data and from data
    whose every row after that day is vandalised: the same predictions, to the bit; only
    the actual (what was booked) differs."""
    period = parse_period("2024Q4", small_org)
    as_of = period.at(0.5)
    config = BacktestConfig(
        fractions=(0.5,), forecast=ForecastConfig(sims=300, seed=0), deal_folds=2
    )
    true = backtest(small_org, config, periods=[period]).rows
    other = vandalise_after(small_org, as_of, seed=5)
    assert len(other.deals) < len(small_org.deals)
    vandalised = backtest(other, config, periods=[period]).rows
    pd.testing.assert_frame_equal(
        true[["level", "id", *PREDICTION_COLUMNS]],
        vandalised[["level", "id", *PREDICTION_COLUMNS]],
        check_exact=True,
    )
    company = true["level"] == "company"
    assert not np.array_equal(true.loc[company, "actual"], vandalised.loc[company, "actual"])
