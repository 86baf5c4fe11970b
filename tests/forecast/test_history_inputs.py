"""The forecast's past-period inputs: only what the rates read, the same values as quota
risk's full inputs, and the same forecast from either."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.features.attainment import Bookings
from spm_ml.features.context import DealContext
from spm_ml.features.deals import PIPELINE_STATE, DealFeatureConfig, deal_features, pipeline_state
from spm_ml.forecast.bookings import ForecastConfig, forecast_bookings, history_inputs, no_scores
from spm_ml.forecast.periods import parse_period, periods_of
from spm_ml.training.quota_risk import quota_inputs

CONFIG = DealFeatureConfig(email_sentiment=False)
FRACTIONS = (0.25, 0.5, 0.75)


@pytest.fixture(scope="module")
def context(small_org):
    return DealContext.build(small_org, CONFIG)


@pytest.fixture(scope="module")
def both(small_org, context):
    """The lean inputs and quota risk's full ones over every period of the small org."""
    periods = periods_of(small_org)
    bookings = Bookings.build(small_org)
    lean = history_inputs(small_org, periods, FRACTIONS, context=context, bookings=bookings)
    full = quota_inputs(
        small_org, lean.snapshots, deal_config=CONFIG, score_deals=no_scores, context=context
    )
    return lean, full


def test_pipeline_state_is_deal_features_own_columns(small_org, context):
    snapshots = pd.DataFrame(
        {
            "deal_id": small_org.deals["deal_id"].to_numpy()[::3],
            "as_of": small_org.deals["created_at"].to_numpy()[::3] + pd.Timedelta(days=20),
        }
    )
    expected = deal_features(small_org, snapshots, CONFIG, context)[list(PIPELINE_STATE)]
    pd.testing.assert_frame_equal(pipeline_state(small_org, snapshots, context), expected)


def test_history_inputs_hold_what_the_full_inputs_hold_for_the_rates(both):
    lean, full = both
    assert len(lean.deals) > 1000
    pd.testing.assert_frame_equal(lean.deals, full.deals, check_exact=True)
    assert list(lean.X.columns) == ["team", "attainment_to_date"]
    pd.testing.assert_frame_equal(lean.X, full.X[list(lean.X.columns)], check_exact=True)
    assert lean.X["attainment_to_date"].gt(0).any()


@pytest.mark.parametrize(("label", "fraction"), [("2024Q4", 0.5), ("2024Q3", 0.3)])
def test_the_forecast_is_the_same_from_lean_or_full_history(
    small_org, context, both, label, fraction
):
    """The rates, shocks and draws read only what the lean inputs hold: identical summaries.
    (The history's fractions differ from the forecast's own point here: the rates then
    learn from the nearest, as they do when a run passes its history in.)"""
    lean, full = both
    period = parse_period(label, small_org)

    def run(history):
        return forecast_bookings(
            small_org,
            period,
            period.at(fraction),
            score_deals=lambda rows, features: features["amount"].rank(pct=True).to_numpy(),
            deal_config=CONFIG,
            context=context,
            config=ForecastConfig(sims=400, seed=5),
            history=history,
        )

    first, second = run(lean), run(full)
    pd.testing.assert_frame_equal(first.summary(), second.summary(), check_exact=True)
    assert first.rates.to_dict() == second.rates.to_dict()


def test_handed_deal_scores_weight_their_moment_only(small_org, context, both):
    """Quota risk's inputs take the probabilities a caller made already (the batch job's
    deal scores, at one ``as_of``) for the rows at that moment, and score only the others."""
    lean, _ = both
    moment = lean.snapshots["as_of"].sort_values().iloc[len(lean.snapshots) // 2]
    deal_ids = small_org.deals["deal_id"].to_numpy(dtype=object)
    handed = pd.Series(np.linspace(0.01, 0.99, len(deal_ids)), index=deal_ids)
    asked = []

    def score_deals(rows, features):
        asked.append(rows["as_of"].to_numpy(dtype="datetime64[ns]"))
        return np.full(len(rows), 0.5)

    inputs = quota_inputs(
        small_org,
        lean.snapshots,
        deal_config=CONFIG,
        score_deals=score_deals,
        context=context,
        deal_scores=handed,
        scores_as_of=moment,
    )
    at_moment = (inputs.deals["as_of"] == moment).to_numpy()
    assert at_moment.any() and (~at_moment).any()
    expected = handed.reindex(inputs.deals.loc[at_moment, "deal_id"]).to_numpy()
    np.testing.assert_array_equal(inputs.deals.loc[at_moment, "p_win"].to_numpy(), expected)
    assert (inputs.deals.loc[~at_moment, "p_win"] == 0.5).all()
    seen = np.concatenate(asked)
    assert len(seen) == (~at_moment).sum()
    assert not (seen == np.datetime64(moment, "ns")).any()
