"""The bookings forecast: draws summed per team and company, seeds, what-ifs, periods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.errors import SpmMlError
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig
from spm_ml.forecast.bookings import BookingForecast, ForecastConfig, forecast_bookings
from spm_ml.forecast.monte_carlo import sum_by
from spm_ml.forecast.periods import Period, parse_period, periods_of

CONFIG = DealFeatureConfig(email_sentiment=False)


def hand_forecast(pipeline_a, pipeline_b) -> BookingForecast:
    """Two reps of one team, quota 100 each, 50 booked each, known pipeline draws."""
    period = Period(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-03-31"))
    reps = pd.DataFrame(
        {
            "rep_id": ["A", "B"],
            "quota": [100.0, 100.0],
            "active": True,
            "team": ["east", "east"],
            "scale": [100.0, 100.0],
        }
    )
    pipeline = np.array([pipeline_a, pipeline_b], dtype=float)
    return BookingForecast(
        period=period,
        as_of=period.at(0.5),
        reps=reps,
        deals=pd.DataFrame(),
        booked=np.array([50.0, 50.0]),
        pipeline=pipeline,
        new=np.zeros_like(pipeline),
        rates=None,
        inputs=None,
    )


def test_company_quantiles_are_quantiles_of_summed_draws():
    """A wins 100 in draws 3-4, B in draws 1-2 (never both): each rep's P10 is 50 (booked
    only), but in every draw one of them wins, so the company never books less than 200;
    the sum of the reps' P10 (100) is a future that never happens."""
    forecast = hand_forecast([0, 0, 100, 100], [100, 100, 0, 0])
    summary = forecast.summary().set_index("id")
    assert summary.loc["A", "total_p10"] == 50.0
    assert summary.loc["B", "total_p10"] == 50.0
    for column in ("total_p10", "total_p50", "total_p90"):
        assert summary.loc["company", column] == 200.0
        assert summary.loc["east", column] == 200.0
    assert summary.loc["company", "closed_won"] == 100.0
    assert summary.loc["company", "quota"] == 200.0
    assert summary.loc["company", "p_reach_quota"] == 1.0
    assert summary.loc["A", "p_reach_quota"] == 0.5


def test_correlated_reps_spread_the_company_interval():
    """Both win together (draws 3-4): the company is 100 or 300, and its P50 is the median
    of the sums (200), its P10 the 10% quantile of [100, 100, 300, 300] (100)."""
    summary = hand_forecast([0, 0, 100, 100], [0, 0, 100, 100]).summary().set_index("id")
    draws = np.array([100.0, 100.0, 300.0, 300.0])
    assert summary.loc["company", "total_p50"] == np.quantile(draws, 0.5) == 200.0
    assert summary.loc["company", "total_p10"] == np.quantile(draws, 0.1) == 100.0


def test_sum_by_adds_draw_by_draw():
    values = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [5.0, 5.0, 5.0]])
    labels, sums = sum_by(values, np.array(["x", "y", "x"], dtype=object))
    assert labels.tolist() == ["x", "y"]
    np.testing.assert_array_equal(sums, [[6.0, 7.0, 8.0], [10.0, 20.0, 30.0]])


def test_periods_are_quota_periods_and_named_ones(small_org):
    periods = periods_of(small_org)
    assert [p.label for p in periods] == ["2024Q1", "2024Q2", "2024Q3", "2024Q4"]
    assert parse_period("2024Q3", small_org) == periods[2]
    assert parse_period("2024-08-15", small_org) == periods[2]
    assert parse_period("2024-08", small_org).label == "2024-08-01..2024-08-31"
    with pytest.raises(SpmMlError, match="not a period"):
        parse_period("next quarter", small_org)


@pytest.fixture(scope="module")
def context(small_org):
    return DealContext.build(small_org, CONFIG)


def by_stage(rows: pd.DataFrame, features: pd.DataFrame) -> np.ndarray:
    """A fixed deal scorer (later stages likelier), so these tests check the engine alone."""
    order = {"prospecting": 0.1, "qualification": 0.2, "discovery": 0.3, "proposal": 0.5}
    return features["stage"].map(order).fillna(0.7).to_numpy(dtype=float)


def run(small_org, context, **options):
    period = parse_period("2024Q4", small_org)
    return forecast_bookings(
        small_org,
        period,
        period.at(0.5),
        score_deals=by_stage,
        deal_config=CONFIG,
        context=context,
        **options,
    )


def test_same_seed_same_forecast_other_seed_other_draws(small_org, context):
    first = run(small_org, context, config=ForecastConfig(sims=500, seed=7))
    again = run(small_org, context, config=ForecastConfig(sims=500, seed=7))
    other = run(small_org, context, config=ForecastConfig(sims=500, seed=8))
    pd.testing.assert_frame_equal(first.summary(), again.summary(), check_exact=True)
    np.testing.assert_array_equal(first.totals(), again.totals())
    assert not np.array_equal(first.totals(), other.totals())
    # closed won to date is a fact, the same whatever the seed
    np.testing.assert_array_equal(first.booked, other.booked)


def test_split_adds_up_and_the_company_is_the_sum_of_reps(small_org, context):
    forecast = run(small_org, context, config=ForecastConfig(sims=400, seed=1))
    _, company = forecast.draws("company")
    np.testing.assert_allclose(company["total"][0], forecast.totals().sum(axis=0))
    summary = forecast.summary().set_index("id")
    reps = summary[summary["level"] == "rep"]
    assert summary.loc["company", "closed_won"] == pytest.approx(reps["closed_won"].sum())
    assert (forecast.new >= 0).all() and (forecast.pipeline >= 0).all()
    assert len(forecast.deals) and forecast.deals["p_close_in_period"].between(0, 1).all()


def test_excluding_a_deal_changes_only_that_deals_contribution(small_org, context):
    config = ForecastConfig(sims=1000, seed=3)
    base = run(small_org, context, config=config)
    biggest = base.deals.assign(value=base.deals["amount"] * base.deals["p_close_in_period"])
    deal = biggest.sort_values("value").iloc[-1]
    without = run(small_org, context, config=config, exclude=[deal["deal_id"]])
    owner = np.flatnonzero(base.reps["rep_id"].to_numpy() == deal["rep_id"])[0]
    others = np.arange(len(base.reps)) != owner
    np.testing.assert_array_equal(base.pipeline[others], without.pipeline[others])
    np.testing.assert_array_equal(base.new, without.new)
    np.testing.assert_array_equal(base.booked, without.booked)
    lost = base.pipeline[owner] - without.pipeline[owner]
    won_in = lost > 1e-6
    # the deal booked in some draws, not in others, and always the same amount when it did
    assert 0 < won_in.mean() < 1
    assert won_in.mean() == pytest.approx(deal["p_close_in_period"], abs=0.06)
    np.testing.assert_allclose(lost[won_in], lost[won_in][0])
    np.testing.assert_allclose(lost[~won_in], 0.0, atol=1e-6)
    assert without.deals.set_index("deal_id").loc[deal["deal_id"], "excluded"]


def test_excluding_a_closed_or_unknown_deal_is_refused(small_org, context):
    closed = small_org.deals[small_org.deals["closed_at"] < pd.Timestamp("2024-10-01")]
    with pytest.raises(SpmMlError, match="not open"):
        run(small_org, context, exclude=[closed["deal_id"].iloc[0]])
    with pytest.raises(SpmMlError, match="no such deal"):
        run(small_org, context, exclude=["NOPE"])


def test_as_of_outside_the_period_is_refused(small_org, context):
    period = parse_period("2024Q4", small_org)
    with pytest.raises(SpmMlError, match="outside the period"):
        forecast_bookings(
            small_org,
            period,
            period.close,
            score_deals=by_stage,
            deal_config=CONFIG,
            context=context,
        )


def test_scores_given_give_the_same_forecast_as_scoring_here(small_org, context):
    """The batch job hands over the probabilities it computed: the forecast is the one it
    would have computed itself, with the deals it was not handed scored here."""
    config = ForecastConfig(sims=500, seed=2)
    base = run(small_org, context, config=config)
    scores = base.deals.set_index("deal_id")["p_win"]
    assert len(scores) > 10 and scores.nunique() > 1
    handed = scores.iloc[::2]  # every other deal: the rest scored by `by_stage` here
    again = run(small_org, context, config=config, deal_scores=handed)
    pd.testing.assert_frame_equal(base.summary(), again.summary(), check_exact=True)
    pd.testing.assert_frame_equal(base.deals, again.deals, check_exact=True)
    # the handed probabilities are the ones used: changing them changes the forecast
    other = run(small_org, context, config=config, deal_scores=scores * 0.5)
    assert not np.array_equal(other.pipeline, base.pipeline)
