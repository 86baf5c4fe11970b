"""Quota-risk rows and features: labels, left-out rows, bad input and point-in-time reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planted import with_tracked_field
from test_leakage import PRIORITIES, vandalise_future

from spm_ml.data.tables import Tables
from spm_ml.features.attainment import Bookings, period_attainment
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.quota import QuotaLabel, open_deal_rows, quota_features, quota_snapshots

DEALS = DealFeatureConfig(email_sentiment=False)


@pytest.fixture(scope="module")
def org() -> Tables:
    from spm_ml.data.simulate import SimulationConfig, simulate

    tables = simulate(SimulationConfig(n_reps=8, months=10, seed=11)).tables
    # what the deal leakage test vandalises: a tracked custom field and email scores
    tables, _ = with_tracked_field(
        tables.replace(emails=_scored(tables.emails)), "priority", PRIORITIES
    )
    return tables


def featurise(tables: Tables, snapshots: pd.DataFrame) -> pd.DataFrame:
    """Quota features with a deterministic stand-in for the deal model's probability (the
    deal model's own inputs are covered by the deal leakage test)."""
    rows = open_deal_rows(tables, snapshots)
    deal = deal_features(tables, rows[["deal_id", "as_of"]], DEALS)
    p_win = rows["deal_id"].map(lambda d: (hash(d) % 97) / 97.0).to_numpy()
    deals = rows.assign(
        stage=deal["stage"].to_numpy(),
        amount=deal["amount"].to_numpy(),
        days_to_expected_close=deal["days_to_expected_close"].to_numpy(),
        p_win=p_win,
    )
    return quota_features(tables, snapshots, deals)


def test_label_is_final_attainment_below_the_threshold(org):
    snapshots, report = quota_snapshots(org, QuotaLabel(threshold=0.8))
    closed = snapshots[snapshots["miss"].notna()]
    assert len(closed) and report["snapshots"] == len(snapshots)
    assert ((closed["final_attainment"] < 0.8) == (closed["miss"] == 1)).all()
    # every snapshot lies inside its period and the rep is employed then
    assert (snapshots["as_of"] > snapshots["period_start"]).all()
    assert (snapshots["as_of"] <= snapshots["period_end"] + pd.Timedelta(days=1)).all()


def test_open_period_is_censored_not_guessed(org):
    cut = org.replace(extracted_at=org.quotas["period_start"].max() + pd.Timedelta(days=40))
    snapshots, report = quota_snapshots(cut)
    last = snapshots["period_start"] == org.quotas["period_start"].max()
    assert last.any() and snapshots.loc[last, "miss"].isna().all()
    assert report["open_period_censored"] == int(last.sum())
    assert (snapshots["as_of"] < cut.extracted_at).all()


def test_zero_quota_is_left_out_and_counted(org):
    quotas = org.quotas.copy()
    quotas.loc[0, "quota_amount"] = 0.0
    snapshots, report = quota_snapshots(org.replace(quotas=quotas))
    assert report["zero_quota_periods"] == 1
    zero = quotas.iloc[0]
    same = (snapshots["rep_id"] == zero["rep_id"]) & (
        snapshots["period_start"] == zero["period_start"]
    )
    assert not same.any()
    assert np.isnan(period_attainment(org.replace(quotas=quotas))["attainment"].iat[0])


def test_rep_without_quota_rows_has_no_rows(org):
    rep = org.quotas["rep_id"].iat[0]
    snapshots, _ = quota_snapshots(org.replace(quotas=org.quotas[org.quotas["rep_id"] != rep]))
    assert len(snapshots) and rep not in set(snapshots["rep_id"])


def test_no_quota_table_is_a_clear_error(org):
    from spm_ml.errors import TrainingError

    with pytest.raises(TrainingError, match="quotas table"):
        quota_snapshots(org.replace(quotas=org.quotas.iloc[:0]))


def test_period_with_no_deals_is_a_miss_with_empty_pipeline(org):
    first = org.quotas["period_start"].min()
    later = org.deals["created_at"] >= first + pd.Timedelta(days=400)
    quiet = org.replace(deals=org.deals[later.to_numpy()].reset_index(drop=True))
    quiet = quiet.replace(
        deal_history=quiet.deal_history[quiet.deal_history["deal_id"].isin(quiet.deals["deal_id"])],
        activities=quiet.activities[
            quiet.activities["deal_id"].isin(quiet.deals["deal_id"])
            | quiet.activities["deal_id"].isna()
        ],
        emails=quiet.emails[quiet.emails["deal_id"].isin(quiet.deals["deal_id"])],
    )
    snapshots, _ = quota_snapshots(quiet)
    empty = snapshots[snapshots["period_start"] == first]
    assert (empty["miss"] == 1).all() and (empty["final_attainment"] == 0).all()
    features = featurise(quiet, empty.reset_index(drop=True))
    assert (features["pipeline_share"] == 0).all() and (features["open_deals"] == 0).all()
    assert (features["attainment_to_date"] == 0).all()


def test_bookings_credit_the_owner_at_close(org):
    """Summed over every rep and period, bookings are the won amounts closed in a period."""
    periods = period_attainment(org)
    bookings = Bookings.build(org)
    assert len(bookings.deals) == int((org.deals["outcome"] == "won").sum())
    assert periods["bookings"].sum() <= bookings.amounts.sum() + 1e-6
    assert (periods["attainment"] >= 0).all()


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(quantile=st.floats(0.1, 0.95), seed=st.integers(0, 10_000))
def test_no_quota_feature_sees_the_future(org, quantile, seed):
    snapshots, _ = quota_snapshots(org)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(quantile))
    earlier = snapshots[snapshots["as_of"] <= cutoff].reset_index(drop=True)
    assert len(earlier) > 5
    before = featurise(org, earlier)
    vandalised = vandalise_future(org, cutoff, seed)
    after = featurise(vandalised, earlier)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_vandalism_does_change_later_quota_features(org):
    snapshots, _ = quota_snapshots(org)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(0.4))
    later = snapshots[snapshots["as_of"] > cutoff + pd.Timedelta(days=20)].reset_index(drop=True)
    before = featurise(org, later)
    after = featurise(vandalise_future(org, cutoff, 1), later)
    changed = {c for c in before.columns if not before[c].equals(after[c])}
    assert {
        "attainment_to_date",
        "pipeline_share",
        "open_deals",
        "deals_created_in_period",
    } <= changed


def _scored(emails: pd.DataFrame) -> pd.DataFrame:
    scores = np.random.default_rng(0).dirichlet([1, 1, 1], len(emails))
    return emails.assign(p_negative=scores[:, 0], p_neutral=scores[:, 1], p_positive=scores[:, 2])


def test_served_snapshots_never_score_a_rep_before_the_hire(org):
    """Training's quota rows start at the hire (quota_snapshots); the served ones
    (early_warnings.current_period_snapshots) must too: a rep hired after as_of is not
    warned about, and the weekly history that dates a warning starts after the hire."""
    from spm_ml.early_warnings import current_period_snapshots

    start = org.quotas["period_start"].max()
    as_of = start + pd.Timedelta(days=40)
    open_now = current_period_snapshots(org, as_of)
    late, recent = sorted(set(open_now["rep_id"]))[:2]
    hire = {late: as_of + pd.Timedelta(days=10), recent: start + pd.Timedelta(days=20)}
    reps = org.reps.assign(hire_date=org.reps["rep_id"].map(hire).fillna(org.reps["hire_date"]))
    served = current_period_snapshots(org.replace(reps=reps), as_of)
    assert late not in set(served["rep_id"])
    mine = served[served["rep_id"] == recent]
    assert (mine["as_of"] > hire[recent]).all() and as_of in set(mine["as_of"])
    assert len(served) < len(open_now)
