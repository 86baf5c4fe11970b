"""Rep features and the attrition label on a hand-built organisation, checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.data.tables import Tables
from spm_ml.features.rep_snapshots import AttritionLabel, attrition_snapshots, top_performers
from spm_ml.features.reps import REP_FEATURE_COLUMNS, rep_history_features

t = pd.Timestamp


def _typed(like: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """Rows with the dtypes of the contract frame ``like``."""
    return pd.DataFrame(rows, columns=like.columns).astype(like.dtypes.to_dict())


@pytest.fixture
def org(tiny: Tables) -> Tables:
    """The tiny organisation plus a quarter of history: R1 (AE, hired 2023-01-01) won D1 (12,000,
    2024-02-25), got a raise in Q1 2024 and moved team on 2024-03-10; R2 (AE, hired
    2023-02-01) lost D2 (150,000, 2024-04-01) and leaves voluntarily on 2024-05-01, so their
    Q2 quota is prorated (25,000: the value must not be read before Q2 ends); R3 (AE) is let
    go on 2024-03-15."""
    tables = tiny
    reps = tables.reps.copy()
    reps.loc[reps["rep_id"] == "R1", "team"] = "west"
    r3 = reps[reps["rep_id"] == "R2"].assign(
        rep_id="R3",
        hire_date=t("2023-03-01"),
        exit_date=t("2024-03-15"),
        exit_reason="involuntary",
    )
    reps = pd.concat([reps, r3], ignore_index=True)
    quotas = _typed(
        tables.quotas,
        [
            {"rep_id": rep, "period_start": start, "period_end": end, "quota_amount": amount}
            for rep, start, end, amount in [
                ("R1", t("2024-01-01"), t("2024-03-31"), 100000.0),
                ("R1", t("2024-04-01"), t("2024-06-30"), 120000.0),
                ("R2", t("2024-01-01"), t("2024-03-31"), 50000.0),
                ("R2", t("2024-04-01"), t("2024-06-30"), 25000.0),
            ]
        ],
    )
    compensation = _typed(
        tables.compensation,
        [
            {
                "rep_id": "R1",
                "period_start": start,
                "period_end": end,
                "base_pay": base,
                "target_incentive": 15000.0,
                "paid_incentive": paid,
            }
            for start, end, base, paid in [
                (t("2023-10-01"), t("2023-12-31"), 20000.0, 15000.0),
                (t("2024-01-01"), t("2024-03-31"), 21000.0, 4000.0),
                (t("2024-04-01"), t("2024-06-30"), 21000.0, None),
            ]
        ],
    )
    history = _typed(
        tables.rep_history,
        [
            {
                "rep_id": "R1",
                "changed_at": at,
                "field": field,
                "old_value": old,
                "new_value": new,
            }
            for at, field, old, new in [
                (t("2023-06-01"), "manager_id", None, "M1"),
                (t("2024-03-10"), "team", "east", "west"),
                (t("2024-04-15"), "manager_id", "M1", "M1"),
            ]
        ],
    )
    extra = tables.activities.iloc[[0]].assign(activity_id="X3", occurred_at=t("2024-03-20"))
    activities = pd.concat([tables.activities, extra], ignore_index=True)
    return tables.replace(
        reps=reps,
        quotas=quotas,
        compensation=compensation,
        rep_history=history,
        activities=activities,
    )


def test_rep_features_by_hand(org):
    snapshots = pd.DataFrame(
        {
            "rep_id": ["R1", "R1", "R2", "R1"],
            "as_of": [t("2024-04-01"), t("2024-04-15"), t("2024-04-15"), t("2024-03-01")],
        }
    )
    f = rep_history_features(org, snapshots)
    assert list(f.columns) == list(REP_FEATURE_COLUMNS)
    r1, r1_later, r2, r1_before = (f.iloc[i] for i in range(4))
    assert r1["tenure_days"] == 456  # 2023-01-01 to 2024-04-01
    assert r1["team"] == "west" and r1_before["team"] == "east"  # moved on 2024-03-10
    assert r1["manager_changes_365d"] == 1  # 2023-06-01 counts; 2024-04-15 is not before
    assert r1_later["manager_changes_365d"] == 1
    # Q1 closed at midnight 2024-04-01: an as_of exactly then reads it
    assert r1["last_attainment"] == pytest.approx(0.12)  # 12,000 won / 100,000
    assert r1["mean_attainment_4"] == pytest.approx(0.12)
    assert np.isnan(r1["attainment_trend_4"])  # one period: no slope
    assert r1["periods_with_quota"] == 1 and r1_before["periods_with_quota"] == 0
    assert np.isnan(r1_before["last_attainment"])
    assert r1["attainment_rank_pct"] == 1.0 and r2["attainment_rank_pct"] == 0.5
    assert np.isnan(r1["quota_change_pct"])  # Q2 (120,000) is still open
    assert r1["quota_vs_peers"] == pytest.approx(100000 / 75000)
    # R2's prorated Q2 quota (25,000: the exit) is not read before Q2 ends
    assert r2["quota_vs_peers"] == pytest.approx(50000 / 75000)
    assert r2["last_attainment"] == 0.0
    # pay: Q4 2023 and Q1 2024 ended; (15,000 + 4,000) / (15,000 + 15,000)
    assert r1["paid_vs_target_incentive_4"] == pytest.approx(19000 / 30000)
    assert r1["days_since_pay_change"] == 91  # raise from 2024-01-01
    assert np.isnan(r1_before["days_since_pay_change"])  # Q1 had not ended on 2024-03-01
    # one activity in the 30 days before (2024-03-20), one in the 180 before those
    assert r1["activity_30d_vs_baseline"] == pytest.approx((1 / 30) / (1 / 180))
    assert r1["large_losses_90d"] == 0.0
    assert r2["large_losses_90d"] == pytest.approx(150000 / 50000)  # D2, lost 2024-04-01


def test_new_rep_features_by_hand(org):
    """Rep-driven activity against the rep's past and against buyers' emails, pay against
    peers, time since a manager change and the manager's voluntary exits."""
    peer_pay = org.compensation.iloc[[1]].assign(rep_id="R2", base_pay=42000.0)
    org = org.replace(compensation=pd.concat([org.compensation, peer_pay], ignore_index=True))
    snapshots = pd.DataFrame(
        {
            "rep_id": ["R1", "R1", "R1", "R1"],
            "as_of": [t("2024-04-01"), t("2024-04-15"), t("2024-03-01"), t("2024-05-15")],
        }
    )
    f = rep_history_features(org, snapshots)
    r1, r1_later, r1_before, r1_after_exit = (f.iloc[i] for i in range(4))
    # calls on 2024-01-12 and 2024-03-20 (the last 14 days), one inbound email 2024-01-20
    assert r1["rep_activity_14d_vs_90d"] == pytest.approx((1 / 14) / (1 / 90))
    assert r1["rep_activity_per_inbound_21d"] == pytest.approx(np.log(2 / 1))
    # the 180 days before: one call, one inbound email -> log(2/2) = 0
    assert r1["rep_activity_per_inbound_21d_vs_180d"] == pytest.approx(np.log(2))
    # Q1 2024: R1 paid 21,000, R2 42,000 -> median 31,500; Q1 not ended on 2024-03-01
    assert r1["base_pay_vs_peers"] == pytest.approx(21000 / 31500)
    assert r1_before["base_pay_vs_peers"] == pytest.approx(1.0)  # Q4 2023: R1 alone
    # manager rows on 2023-06-01 and 2024-04-15 (not before 2024-04-15)
    assert r1["days_since_manager_change"] == 305
    assert r1_later["days_since_manager_change"] == 319
    # R2 (manager M1) left voluntarily on 2024-05-01: seen from then on, under M1
    assert r1["manager_voluntary_exits_365d"] == 0
    assert r1_after_exit["manager_voluntary_exits_365d"] == 1


def test_attrition_label_by_hand(org):
    snapshots = attrition_snapshots(org, AttritionLabel(horizon_days=90))
    assert set(snapshots["rep_id"]) == {"R1", "R2", "R3"}  # M1 is a manager, not scored
    labels = {(r.rep_id, str(r.as_of.date())): r for r in snapshots.itertuples()}
    # R2 leaves voluntarily on 2024-05-01: positive from 90 days before, gone from then on
    assert labels["R2", "2024-01-01"].left == 0
    assert labels["R2", "2024-01-01"].label_known_at == t("2024-03-31")
    assert labels["R2", "2024-02-01"].left == 1
    assert labels["R2", "2024-04-01"].label_known_at == t("2024-05-01")
    assert ("R2", "2024-05-01") not in labels
    # R3 is let go on 2024-03-15: never positive, known at the exit
    assert [labels["R3", d].left for d in ("2024-01-01", "2024-02-01", "2024-03-01")] == [0] * 3
    assert labels["R3", "2024-01-01"].label_known_at == t("2024-03-15")
    assert ("R3", "2024-04-01") not in labels
    # R1 stays: 0 while the horizon has passed by extraction (2024-06-01), then censored
    assert labels["R1", "2024-03-01"].left == 0
    assert np.isnan(labels["R1", "2024-04-01"].left)
    assert np.isnan(labels["R1", "2024-05-01"].left)
    assert AttritionLabel().as_dict()["definition"] == "leaves voluntarily within 90 days of as_of"


def test_top_performers_are_the_top_share_of_ranks():
    ranks = pd.Series([1.0, 0.8, 0.75, 0.2, np.nan])
    assert top_performers(ranks, 0.25).tolist() == [True, True, False, False, False]
