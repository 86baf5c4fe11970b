"""Point-in-time correctness: nothing dated at or after ``as_of`` may move a feature.

For many random cut-off dates we vandalise the future (delete, rewrite and add rows dated at
or after the cut-off; rewrite every deal's end state, final owner and final custom values,
the reps' exits, team and manager moves, quota and pay of periods still open) and require
every feature of every snapshot taken at or before the
cut-off to stay exactly the same.  The future stays a possible one: what was already true at
the cut-off (who owned a deal, a field's value then) is kept, whatever happens after.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planted import with_tracked_field

from spm_ml.data.schema import ACTIVITY_TYPES, DEAL_STAGES
from spm_ml.data.tables import Tables
from spm_ml.features import custom_fields as custom_module
from spm_ml.features import deals as deal_module
from spm_ml.features import reps as rep_module
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.rep_snapshots import attrition_snapshots
from spm_ml.features.reps import rep_history_features
from spm_ml.features.snapshots import deal_snapshots

PRIORITIES = ("low", "medium", "high")
CONFIG = DealFeatureConfig(custom_fields=("priority", "segment"))
"""A custom field whose changes deal_history records, and one taken as set at creation."""


@pytest.fixture(scope="module")
def org() -> Tables:
    from spm_ml.data.simulate import SimulationConfig, simulate

    tables = simulate(SimulationConfig(n_reps=8, months=8, seed=11)).tables
    assert (tables.deal_history["field"] == "rep_id").any(), "the org needs owner changes"
    # derived sentiment scores, so the email-tone block is covered too
    scores = np.random.default_rng(0).dirichlet([1, 1, 1], len(tables.emails))
    emails = tables.emails.assign(
        p_negative=scores[:, 0], p_neutral=scores[:, 1], p_positive=scores[:, 2]
    )
    tables, _ = with_tracked_field(tables.replace(emails=emails), "priority", PRIORITIES)
    return tables


def _rewrite_tracked_field(
    deals: pd.DataFrame,
    history: pd.DataFrame,
    field: str,
    cutoff: pd.Timestamp,
    choices: np.ndarray,
    rng: np.random.Generator,
    entity: str = "deal_id",
    ended: str = "closed_at",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Another future for a field deal_history records (the owner, a custom field).

    Its rows at or after the cut-off are partly dropped, the rest get new values; every deal
    not closed before the cut-off (and some that are: a post-close edit) gets a new change
    after it; the chain is then re-linked from the value each deal held at the cut-off, and
    the deals table's final value follows the new last change.
    """
    rows = history["field"] == field
    mine = history[rows].sort_values("changed_at", kind="stable")
    past = mine[mine["changed_at"] < cutoff]
    # the value each deal held at the cut-off: a fact of the past, kept
    held = deals.set_index(entity)[field].astype("object").copy()
    firsts = mine.drop_duplicates(entity)
    held[firsts[entity].to_numpy()] = firsts["old_value"].to_numpy()
    lasts = past.drop_duplicates(entity, keep="last")
    held[lasts[entity].to_numpy()] = lasts["new_value"].to_numpy()

    future = mine[(mine["changed_at"] >= cutoff).to_numpy()]
    future = future[rng.random(len(future)) < 0.5].copy()
    future["new_value"] = rng.choice(choices, len(future))
    ends_later = ~(deals[ended] < cutoff).to_numpy()
    edited = ends_later | (rng.random(len(deals)) < 0.2)
    added = pd.DataFrame(
        {
            entity: deals.loc[edited, entity].to_numpy(),
            "changed_at": cutoff + pd.to_timedelta(rng.integers(0, 30 * 86400, edited.sum()), "s"),
            "field": field,
            "old_value": None,
            "new_value": rng.choice(choices, edited.sum()),
        }
    ).astype(history.dtypes.to_dict())
    future = pd.concat([future, added], ignore_index=True)
    future = future.sort_values([entity, "changed_at"], kind="stable")
    previous = future.groupby(entity, sort=False)["new_value"].shift()
    first = previous.isna()
    future["old_value"] = previous.where(~first, held.reindex(future[entity]).to_numpy())
    history = pd.concat([history[~rows], past, future], ignore_index=True)
    final = future.drop_duplicates(entity, keep="last").set_index(entity)["new_value"]
    deals = deals.copy()
    moved = deals[entity].isin(final.index).to_numpy()
    deals.loc[moved, field] = final.reindex(deals.loc[moved, entity]).to_numpy()
    return deals, history


def vandalise_future(tables: Tables, cutoff: pd.Timestamp, seed: int) -> Tables:
    """Delete, rewrite and add rows dated at or after ``cutoff``; rewrite deal end states,
    final owners and custom values (through changes after the cut-off), reps' exits, later
    team and manager moves, and the amounts of quota and pay periods not ended by then."""
    rng = np.random.default_rng(seed)

    def future_rows(frame: pd.DataFrame, column: str) -> np.ndarray:
        return (frame[column] >= cutoff).to_numpy()

    def drop_some(frame: pd.DataFrame, future: np.ndarray) -> pd.DataFrame:
        drop = future & (rng.random(len(frame)) < 0.5)
        return frame[~drop].reset_index(drop=True)

    # who will own each deal, and the tracked custom field's later values: rewritten from
    # the true past, before anything else is dropped
    deals, history = tables.deals.copy(), tables.deal_history.copy()
    reps = tables.reps["rep_id"].to_numpy()
    deals, history = _rewrite_tracked_field(deals, history, "rep_id", cutoff, reps, rng)
    deals, history = _rewrite_tracked_field(
        deals, history, "priority", cutoff, np.array(PRIORITIES), rng
    )
    tracked = history["field"].isin(["rep_id", "priority"]).to_numpy()
    future = future_rows(history, "changed_at")
    history.loc[future & (history["field"] == "stage").to_numpy(), "new_value"] = rng.choice(
        DEAL_STAGES
    )
    history.loc[future & (history["field"] == "amount").to_numpy(), "new_value"] = "1.0"
    history = drop_some(history, future & ~tracked)

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

    ends_later = ~(deals["closed_at"] < cutoff).to_numpy()
    deals.loc[ends_later, "amount"] = rng.uniform(1, 1e6, ends_later.sum())
    deals.loc[ends_later, "expected_close_at"] = cutoff + pd.Timedelta(days=400)
    deals.loc[ends_later, "outcome"] = rng.choice(["won", "lost"], ends_later.sum())
    deals.loc[ends_later, "closed_at"] = cutoff + pd.Timedelta(days=3)
    deals.loc[ends_later, "stage"] = "closed_won"
    # a field taken as set at creation can only change for deals created after the cut-off
    born_later = (deals["created_at"] >= cutoff).to_numpy()
    deals.loc[born_later, "segment"] = rng.choice(["smb", "enterprise"], born_later.sum())

    # reps: exits are future facts (and so are hires after the cut-off)
    reps = tables.reps.copy()
    leaves_later = ~(reps["exit_date"] < cutoff).to_numpy()
    exits = cutoff + pd.to_timedelta(rng.integers(0, 90 * 86400, leaves_later.sum()), "s")
    stays = rng.random(leaves_later.sum()) < 0.5
    reps.loc[leaves_later, "exit_date"] = pd.Series(exits).where(~stays).to_numpy()
    reps.loc[leaves_later, "exit_reason"] = rng.choice(
        ["voluntary", "involuntary"], leaves_later.sum()
    )
    hired_later = (reps["hire_date"] >= cutoff).to_numpy()
    reps.loc[hired_later, "hire_date"] += pd.to_timedelta(
        rng.integers(0, 30 * 86400, hired_later.sum()), "s"
    )
    # reps' later team and manager moves (rep_history), and so the reps table's final values
    teams = tables.reps["team"].dropna().unique()
    reps, rep_history = _rewrite_tracked_field(
        reps, tables.rep_history.copy(), "team", cutoff, teams, rng, "rep_id", "exit_date"
    )
    reps, rep_history = _rewrite_tracked_field(
        reps,
        rep_history,
        "manager_id",
        cutoff,
        reps["rep_id"].to_numpy(),
        rng,
        "rep_id",
        "exit_date",
    )
    return tables.replace(
        reps=reps,
        rep_history=rep_history,
        deal_history=history,
        activities=activities,
        emails=emails,
        deals=deals,
        quotas=_rewrite_periods(tables.quotas, cutoff, ("quota_amount",), rng, open_after=1),
        compensation=_rewrite_periods(
            tables.compensation,
            cutoff,
            ("base_pay", "target_incentive", "paid_incentive"),
            rng,
            open_after=0,
        ),
    )


def _rewrite_periods(
    periods: pd.DataFrame,
    cutoff: pd.Timestamp,
    amounts: tuple[str, ...],
    rng: np.random.Generator,
    open_after: int,
) -> pd.DataFrame:
    """Another future for quota or pay rows: amounts of periods still open at the cut-off are
    rewritten (a leaver's are prorated at the exit), periods starting at or after it partly
    dropped, and new ones added.  A quota period is open until the midnight after its
    ``period_end`` (``open_after=1`` day), a pay period until ``period_end`` (the contract's
    date for the incentive paid)."""
    periods = periods.copy()
    still_open = (periods["period_end"] + pd.Timedelta(days=open_after) > cutoff).to_numpy()
    for column in amounts:
        periods.loc[still_open, column] = rng.uniform(0, 2, still_open.sum()) * periods.loc[
            still_open, column
        ].fillna(1000.0)
    starts_later = (periods["period_start"] >= cutoff).to_numpy()
    periods = periods[~(starts_later & (rng.random(len(periods)) < 0.5))]
    added = periods.sample(min(20, len(periods)), random_state=int(rng.integers(1 << 30))).copy()
    added["period_start"] = cutoff + pd.to_timedelta(rng.integers(0, 400, len(added)), "D")
    added["period_end"] = added["period_start"] + pd.Timedelta(days=89)
    return pd.concat([periods, added], ignore_index=True)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(quantile=st.floats(0.1, 0.95), seed=st.integers(0, 10_000))
def test_no_feature_sees_the_future(org, quantile, seed):
    snapshots = deal_snapshots(org, every_days=5)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(quantile))
    earlier = snapshots[snapshots["as_of"] <= cutoff][["deal_id", "as_of"]]
    assert len(earlier) > 10
    before = deal_features(org, earlier, CONFIG)
    after = deal_features(vandalise_future(org, cutoff, seed), earlier, CONFIG)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_vandalism_does_change_later_features(org):
    """The invariance test is only meaningful if the perturbation moves *later* features."""
    snapshots = deal_snapshots(org, every_days=5)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(0.5))
    later = snapshots[snapshots["as_of"] > cutoff + pd.Timedelta(days=20)][["deal_id", "as_of"]]
    before = deal_features(org, later, CONFIG)
    after = deal_features(vandalise_future(org, cutoff, 1), later, CONFIG)
    changed = [c for c in before.columns if not before[c].equals(after[c])]
    assert {
        "activities_total",
        "stage",
        "rep_win_rate",
        "latest_inbound_tone",
        "rep_team",
        "rep_tenure_days",
        "rep_open_deals",
        "custom_priority",
    } <= set(changed)


def _final_owner(tables, snapshots, index=None):
    """A planted bug: the deal's owner at extraction instead of at ``as_of``."""
    return tables.deals.set_index("deal_id")["rep_id"].reindex(snapshots["deal_id"]).to_numpy()


def _final_custom_values(tables, deal_ids, as_of, name):
    """A planted bug: a custom field's value at extraction instead of at ``as_of``."""
    return (
        tables.deals.set_index("deal_id")[name].reindex(pd.Series(deal_ids)).reset_index(drop=True)
    )


@pytest.mark.parametrize(
    ("module", "function", "planted", "columns"),
    [
        (deal_module, "owner_at", _final_owner, {"rep_team", "rep_tenure_days"}),
        (
            custom_module,
            "custom_values_at",
            _final_custom_values,
            {"custom_priority"},
        ),
    ],
    ids=["final owner", "final custom value"],
)
def test_the_vandalism_catches_a_planted_read_of_the_final_state(
    org, monkeypatch, module, function, planted, columns
):
    """The property test can fail: with a final-state read planted, earlier features move."""
    snapshots = deal_snapshots(org, every_days=5)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(0.5))
    earlier = snapshots[snapshots["as_of"] <= cutoff][["deal_id", "as_of"]]
    vandalised = vandalise_future(org, cutoff, 0)
    honest = deal_features(vandalised, earlier, CONFIG)
    pd.testing.assert_frame_equal(deal_features(org, earlier, CONFIG), honest)
    monkeypatch.setattr(module, function, planted)
    before = deal_features(org, earlier, CONFIG)
    after = deal_features(vandalised, earlier, CONFIG)
    changed = {c for c in before.columns if not before[c].equals(after[c])}
    assert columns <= changed


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


def _rep_snapshots(org: Tables) -> pd.DataFrame:
    """Every AE employed every 9 days: cut-offs fall on any weekday, quarter ends included."""
    dates = pd.date_range(org.quotas["period_start"].min(), org.extracted_at, freq="9D")
    return attrition_snapshots(org, dates=dates)[["rep_id", "as_of"]]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(quantile=st.floats(0.2, 0.95), seed=st.integers(0, 10_000))
def test_no_rep_feature_sees_the_future(org, quantile, seed):
    """Rep features (attrition, quota risk) read reps (other reps' exits too), rep_history,
    quotas, compensation, activities, emails and deals: none may move when the future of any
    of them is rewritten."""
    snapshots = _rep_snapshots(org)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(quantile))
    earlier = snapshots[snapshots["as_of"] <= cutoff]
    assert len(earlier) > 10
    before = rep_history_features(org, earlier)
    after = rep_history_features(vandalise_future(org, cutoff, seed), earlier)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_vandalism_does_change_later_rep_features(org):
    snapshots = _rep_snapshots(org)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(0.4))
    later = snapshots[snapshots["as_of"] > cutoff + pd.Timedelta(days=100)]
    before = rep_history_features(org, later)
    after = rep_history_features(vandalise_future(org, cutoff, 1), later)
    changed = {c for c in before.columns if not before[c].equals(after[c])}
    assert {
        "team",
        "manager_changes_365d",
        "last_attainment",
        "quota_vs_peers",
        "paid_vs_target_incentive_4",
        "activity_30d_vs_baseline",
        "large_losses_90d",
        "base_pay_vs_peers",
        "days_since_manager_change",
        "rep_activity_14d_vs_90d",
        "rep_activity_per_inbound_21d",
        "rep_activity_per_inbound_21d_vs_180d",
    } <= changed


def test_the_vandalism_catches_a_current_quota_read_at_its_start(org, monkeypatch):
    """Reading the current period's quota from its start (the contract's ``known_at``) sees a
    value revised later (a leaver's, prorated at the exit): the property test fails on it."""
    snapshots = _rep_snapshots(org)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(0.6))
    earlier = snapshots[snapshots["as_of"] <= cutoff]
    vandalised = vandalise_future(org, cutoff, 0)
    honest = rep_module.quota_periods

    def at_period_start(tables):
        periods = honest(tables)
        return periods.assign(readable_at=periods["period_start"])

    monkeypatch.setattr(rep_module, "quota_periods", at_period_start)
    before = rep_history_features(org, earlier)
    after = rep_history_features(vandalised, earlier)
    changed = {c for c in before.columns if not before[c].equals(after[c])}
    assert {"quota_vs_peers", "large_losses_90d"} <= changed


def _final_managers(tables, leavers):
    """A planted bug: a leaver's manager read from the reps table (at extraction)."""
    return leavers["manager_id"].to_numpy(dtype=object)


def test_the_vandalism_catches_a_leavers_final_manager_read(org, monkeypatch):
    """Other reps' exits count under their manager at the exit: read from the reps table
    instead, a correction made after the cut-off moves earlier features (the vandalism edits
    a fifth of past leavers after the cut-off, so a few futures are tried)."""
    snapshots = _rep_snapshots(org)
    cutoff = pd.Timestamp(snapshots["as_of"].quantile(0.7))
    earlier = snapshots[snapshots["as_of"] <= cutoff]
    futures = [vandalise_future(org, cutoff, seed) for seed in range(8)]
    column = "manager_voluntary_exits_365d"
    honest = rep_history_features(org, earlier)[column]
    assert honest.sum() > 0, "the org needs voluntary exits before the cut-off"
    for future in futures:
        pd.testing.assert_series_equal(rep_history_features(future, earlier)[column], honest)
    monkeypatch.setattr(rep_module, "manager_at_exit", _final_managers)
    before = rep_history_features(org, earlier)[column]
    assert any(not before.equals(rep_history_features(f, earlier)[column]) for f in futures)
