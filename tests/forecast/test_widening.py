"""Back-tested widening: learned only from periods closed before the forecast, it makes the
range hold 80% of the past actuals, never moves the P50 and never goes below what is booked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.forecast.widening import (
    MIN_PERIODS,
    rolling_widened,
    widen,
    widening_at,
    widening_sigma,
)


def replays(errors: list[list[float]], level: str = "team", spread: float = 0.05) -> pd.DataFrame:
    """Back-test rows: period k (quarters of 2024-2025) has one row per error, P50 100 and a
    log-symmetric range of ``spread``; the actual is ``100 * exp(error)``."""
    rows = []
    for k, period_errors in enumerate(errors):
        start = pd.Timestamp("2024-01-01") + pd.DateOffset(months=3 * k)
        close = start + pd.DateOffset(months=3)
        for i, error in enumerate(period_errors):
            rows.append(
                {
                    "level": level,
                    "id": f"T{i}",
                    "period": f"P{k}",
                    "period_start": start,
                    "period_close": close,
                    "fraction": 0.5,
                    "as_of": start + pd.Timedelta(days=45),
                    "p10": 100 * np.exp(-spread),
                    "p50": 100.0,
                    "p90": 100 * np.exp(spread),
                    "actual": 100 * np.exp(error),
                }
            )
    return pd.DataFrame(rows)


def test_the_learned_widening_holds_80_percent_of_the_past():
    rng = np.random.default_rng(0)
    rows = replays([list(rng.normal(0, 0.2, 10)) for _ in range(6)])
    sigma, periods = widening_sigma(
        rows, level="team", fraction=0.5, before=pd.Timestamp("2026-01-01")
    )
    assert periods == 6 and sigma > 0.1
    low, high = widen(rows["p10"], rows["p50"], rows["p90"], sigma)
    inside = ((rows["actual"] >= low) & (rows["actual"] <= high)).mean()
    assert inside == pytest.approx(0.8, abs=0.02)
    assert (low < rows["p10"]).all() and (high > rows["p90"]).all()


def test_no_widening_when_the_range_already_held_the_actuals():
    rows = replays([[0.01, -0.02, 0.0]] * 4, spread=0.1)
    sigma, _ = widening_sigma(rows, level="team", fraction=0.5, before=pd.Timestamp("2026-01-01"))
    assert sigma == 0.0
    low, high = widen(rows["p10"], rows["p50"], rows["p90"], sigma)
    np.testing.assert_allclose(low, rows["p10"]) and np.testing.assert_allclose(high, rows["p90"])


def test_only_periods_closed_before_the_forecast_teach_it():
    calm = [[0.0, 0.01]] * 3
    wild = [[1.5, -1.5]] * 3
    rows = replays(calm + wild)
    before_wild = rows.loc[rows["period"] == "P3", "period_start"].iloc[0]
    sigma, periods = widening_sigma(rows, level="team", fraction=0.5, before=before_wild)
    assert periods == 3 and sigma == 0.0
    # and the rolling back-test columns give each replay what its own as_of knew
    widened = rolling_widened(rows)
    first_wild = widened[widened["period"] == "P3"]
    assert (first_wild["widening_sigma"] == 0.0).all()
    assert widened.loc[widened["period"] == "P5", "widening_sigma"].iloc[0] > 0.5
    assert widened.loc[widened["period"].isin(["P0", "P1", "P2"]), "widening_sigma"].isna().all()


def test_too_few_periods_or_another_level_give_no_widening():
    rows = replays([[0.5, -0.5]] * (MIN_PERIODS - 1))
    sigma, periods = widening_sigma(rows, level="team", fraction=0.5, before=pd.Timestamp("2030"))
    assert np.isnan(sigma) and periods == MIN_PERIODS - 1
    at = widening_at(replays([[0.5]] * 4), pd.Timestamp("2030"), 0.5, ("team", "company"))
    assert np.isnan(at["company"][0]) and at["team"][1] == 4
    # a forecast at 10% elapsed is not taught by mid-period replays
    sigma, _ = widening_sigma(
        replays([[0.5]] * 4), level="team", fraction=0.1, before=pd.Timestamp("2030")
    )
    assert np.isnan(sigma)


def test_widening_keeps_the_p50_and_a_fact_stays_a_fact():
    p10, p50, p90 = np.array([0.0, 90.0]), np.array([0.0, 100.0]), np.array([0.0, 120.0])
    low, high = widen(p10, p50, p90, 0.3)
    assert low[0] == 0 and high[0] == 0  # nothing to widen around a zero forecast
    assert low[1] < 90 and high[1] > 120
    assert np.log(100 / low[1]) == pytest.approx(np.hypot(np.log(100 / 90), 1.2816 * 0.3), 1e-4)
