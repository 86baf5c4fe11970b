"""Point-in-time correctness: nothing dated at or after ``as_of`` may move a feature.

For many random cut-off dates we vandalise the future (delete, rewrite and add rows dated at
or after the cut-off, and rewrite every deal's end state) and require every feature of every
snapshot taken at or before the cut-off to stay exactly the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spm_ml.data.schema import ACTIVITY_TYPES, DEAL_STAGES
from spm_ml.data.tables import Tables
from spm_ml.features.deals import deal_features
from spm_ml.features.snapshots import deal_snapshots


@pytest.fixture(scope="module")
def org() -> Tables:
    from spm_ml.data.simulate import SimulationConfig, simulate

    tables = simulate(SimulationConfig(n_reps=8, months=8, seed=11)).tables
    # derived sentiment scores, so the email-tone block is covered too
    scores = np.random.default_rng(0).dirichlet([1, 1, 1], len(tables.emails))
    emails = tables.emails.assign(
        p_negative=scores[:, 0], p_neutral=scores[:, 1], p_positive=scores[:, 2]
    )
    return tables.replace(emails=emails)


def vandalise_future(tables: Tables, cutoff: pd.Timestamp, seed: int) -> Tables:
    """Delete, rewrite and add rows dated at or after ``cutoff``; rewrite deal end states."""
    rng = np.random.default_rng(seed)

    def future_rows(frame: pd.DataFrame, column: str) -> np.ndarray:
        return (frame[column] >= cutoff).to_numpy()

    def drop_some(frame: pd.DataFrame, future: np.ndarray) -> pd.DataFrame:
        drop = future & (rng.random(len(frame)) < 0.5)
        return frame[~drop].reset_index(drop=True)

    history = tables.deal_history.copy()
    future = future_rows(history, "changed_at")
    history.loc[future & (history["field"] == "stage").to_numpy(), "new_value"] = rng.choice(
        DEAL_STAGES
    )
    history.loc[future & (history["field"] == "amount").to_numpy(), "new_value"] = "1.0"
    history = drop_some(history, future_rows(history, "changed_at"))

    activities = tables.activities.copy()
    future = future_rows(activities, "occurred_at")
    activities.loc[future, "type"] = rng.choice(ACTIVITY_TYPES, future.sum())
    activities = drop_some(activities, future)
    extra = activities.sample(min(50, len(activities)), random_state=seed).copy()
    extra["activity_id"] = [f"FUTURE-{i}" for i in range(len(extra))]
    extra["occurred_at"] = cutoff + pd.to_timedelta(rng.integers(0, 30 * 86400, len(extra)), "s")
    activities = pd.concat([activities, extra], ignore_index=True)

    emails = tables.emails.copy()
    future = future_rows(emails, "sent_at")
    emails.loc[future, "direction"] = np.where(
        emails.loc[future, "direction"] == "inbound", "outbound", "inbound"
    )
    emails.loc[future, ["p_negative", "p_neutral", "p_positive"]] = rng.dirichlet(
        [1, 1, 1], future.sum()
    )
    emails = drop_some(emails, future)

    deals = tables.deals.copy()
    ends_later = ~(deals["closed_at"] < cutoff).to_numpy()
    deals.loc[ends_later, "amount"] = rng.uniform(1, 1e6, ends_later.sum())
    deals.loc[ends_later, "expected_close_at"] = cutoff + pd.Timedelta(days=400)
    deals.loc[ends_later, "outcome"] = rng.choice(["won", "lost"], ends_later.sum())
    deals.loc[ends_later, "closed_at"] = cutoff + pd.Timedelta(days=3)
    deals.loc[ends_later, "stage"] = "closed_won"
    return tables.replace(deal_history=history, activities=activities, emails=emails, deals=deals)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(quantile=st.floats(0.1, 0.95), seed=st.integers(0, 10_000))
def test_no_feature_sees_the_future(org, quantile, seed):
    snapshots = deal_snapshots(org, every_days=5)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(quantile))
    earlier = snapshots[snapshots["as_of"] <= cutoff][["deal_id", "as_of"]]
    assert len(earlier) > 10
    before = deal_features(org, earlier)
    after = deal_features(vandalise_future(org, cutoff, seed), earlier)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_vandalism_does_change_later_features(org):
    """The invariance test is only meaningful if the perturbation moves *later* features."""
    snapshots = deal_snapshots(org, every_days=5)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(0.5))
    later = snapshots[snapshots["as_of"] > cutoff + pd.Timedelta(days=20)][["deal_id", "as_of"]]
    before = deal_features(org, later)
    after = deal_features(vandalise_future(org, cutoff, 1), later)
    changed = [c for c in before.columns if not before[c].equals(after[c])]
    assert {"activities_total", "stage", "rep_win_rate", "latest_inbound_tone"} <= set(changed)


def test_event_exactly_at_as_of_is_not_seen(org):
    deal = org.deals.iloc[0]
    as_of = deal["created_at"] + pd.Timedelta(days=3)
    snapshot = pd.DataFrame({"deal_id": [deal["deal_id"]], "as_of": [as_of]})
    base = deal_features(org, snapshot)
    stamped = pd.DataFrame(
        [
            {
                "activity_id": "AT-AS-OF",
                "rep_id": deal["rep_id"],
                "deal_id": deal["deal_id"],
                "account_id": deal["account_id"],
                "type": "demo",
                "occurred_at": as_of,
                "duration_min": 30.0,
            }
        ]
    )
    activities = pd.concat(
        [org.activities, stamped.astype(org.activities.dtypes[stamped.columns].to_dict())],
        ignore_index=True,
    )
    again = deal_features(org.replace(activities=activities), snapshot)
    pd.testing.assert_frame_equal(base, again)
    later = snapshot.assign(as_of=as_of + pd.Timedelta(seconds=1))
    seen = deal_features(org.replace(activities=activities), later)
    assert seen["demos_total"].iat[0] == deal_features(org, later)["demos_total"].iat[0] + 1
