"""Rep-level features as of a moment: tenure, team, manager churn, attainment, quota, pay, activity.

Shared by the rep-level families (attrition, quota risk).  :func:`rep_history_features` takes
snapshots ``(rep_id, as_of)`` and returns one row per snapshot, computed only from what was
known strictly before ``as_of``; every dated read goes through
:class:`~spm_ml.features.asof.EventIndex` (or :func:`~spm_ml.features.asof.known_at_index`).

Two rules decide what a period (a quota or pay row) may tell:

- **A period's amounts are read once it has ended.**  The extract holds each row's final
  value, and a rep who leaves mid-period has that period's quota and pay prorated to the
  exit (the simulator does, as HR and SPM systems do).  Read at its start, as the contract's
  ``known_at`` has it, the current quarter's quota would announce the exit.  Quota rows count
  once the period has closed (the midnight after ``period_end``, when its attainment becomes a
  fact: an ``as_of`` exactly at the close sees it, since every deal it counts closed before);
  pay rows once ``period_end`` is past (when ``paid_incentive`` is known, by the contract).
- **Amounts are compared per day employed.**  A rep's first period is prorated from the
  hire date; dividing by the share of the period after the hire (known: the hire is in the
  past) keeps a new hire's first full quarter from looking like a quota hike or a raise.

Never read: ``reps.exit_date`` and ``reps.exit_reason`` (the future, and the attrition label)
and any protected attribute (:mod:`spm_ml.features.protected`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.data.schema import MANAGER_FIELD
from spm_ml.data.tables import Tables
from spm_ml.features.asof import (
    EventIndex,
    days_between,
    equal_to,
    known_at_index,
    take,
    vocabulary_of,
)
from spm_ml.features.attainment import Bookings, period_attainment, period_close
from spm_ml.features.deal_fields import replay_field
from spm_ml.features.rep_activity import REP_ACTIVITY_COLUMNS, rep_activity_features

TRAILING_PERIODS = 4
"""Periods the trailing attainment and pay figures look back over (a year of quarters)."""
MANAGER_WINDOW_DAYS = 365
LOSS_WINDOW_DAYS = 90
PAY_CHANGE_TOLERANCE = 0.005
"""Relative change of base pay per day employed below which it is rounding, not a change."""

QUOTA_PERIOD_COLUMNS = (
    "last_attainment",
    "mean_attainment_4",
    "attainment_trend_4",
    "periods_with_quota",
    "attainment_rank_pct",
    "quota_change_pct",
    "quota_vs_peers",
)
"""The columns taken from the last closed quota period's row (:func:`quota_periods`)."""

REP_FEATURE_COLUMNS = (
    "tenure_days",
    "team",
    "manager_changes_365d",
    *QUOTA_PERIOD_COLUMNS,
    "paid_vs_target_incentive_4",
    "days_since_pay_change",
    "activity_30d_vs_baseline",
    "large_losses_90d",
    "base_pay_vs_peers",
    "days_since_manager_change",
    "manager_voluntary_exits_365d",
    *REP_ACTIVITY_COLUMNS[1:],
)
"""The columns :func:`rep_history_features` returns, in order."""

CATEGORICAL_REP_FEATURES = ("team",)


@dataclass(frozen=True)
class RepFeatureConfig:
    """The rep feature set a model was trained on (no options yet: the version names it)."""

    version: str = "rep_features.v2"


def rep_history_features(tables: Tables, snapshots: pd.DataFrame) -> pd.DataFrame:
    """Rep features as of each snapshot, row for row (columns :data:`REP_FEATURE_COLUMNS`).

    - ``tenure_days``: days from ``hire_date`` to ``as_of``.
    - ``team``: the team at ``as_of``, replayed from ``rep_history`` (:func:`team_at`).
    - ``manager_changes_365d``: ``rep_history`` manager changes in the 365 days before.
    - ``last_attainment``, ``mean_attainment_4``, ``attainment_trend_4`` (least-squares
      slope per period), ``periods_with_quota``: over the quota periods closed by ``as_of``
      (the last one, the last four, all of them).
    - ``attainment_rank_pct``: percentile of ``mean_attainment_4`` among the reps with a
      quota in the same last closed period (1 = best).
    - ``quota_change_pct``: the last closed period's quota over the one before, minus 1.
    - ``quota_vs_peers``: the last closed period's quota over that period's median quota.
    - ``paid_vs_target_incentive_4``: incentive paid over target incentive, summed over the
      last four pay periods ended before ``as_of``.
    - ``days_since_pay_change``: days since the start of the latest ended pay period whose
      base pay per day employed differs from the period before (NaN if none).
    - ``large_losses_90d``: amount (at the close) of deals lost in the 90 days before
      ``as_of`` while the rep owned them, over the last closed period's quota.
    - ``base_pay_vs_peers``: base pay per day employed of the last ended pay period over the
      median of the reps paid for the same period (with the same ``segment_focus`` when the
      reps table has that column): pay against peers, beside attainment for the model to
      weigh (a strong rep paid like an average one is underpaid).
    - ``days_since_manager_change``: days since the last ``rep_history`` manager change (NaN
      if none).
    - ``manager_voluntary_exits_365d``: voluntary exits in the 365 days before ``as_of`` of
      reps whose manager at their exit was the rep's manager at ``as_of``: a manager people
      leave.
    - ``activity_30d_vs_baseline`` and the rep-driven activity columns:
      :func:`~spm_ml.features.rep_activity.rep_activity_features`.

    Quotas and pay are compared per day employed (see the module docstring).
    """
    snapshots = snapshots.reset_index(drop=True)
    reps, as_of = snapshots["rep_id"], snapshots["as_of"]
    vocabulary = vocabulary_of(tables.reps["rep_id"])
    hire = tables.reps.set_index("rep_id")["hire_date"].reindex(reps.to_numpy()).to_numpy()
    out = pd.DataFrame(index=snapshots.index)
    out["tenure_days"] = days_between(as_of, hire)
    out["team"] = team_at(tables, reps.to_numpy(dtype=object), as_of.to_numpy())

    history = tables.rep_history
    managers = EventIndex(history["rep_id"], history["changed_at"], vocabulary)
    is_manager_change = equal_to(history["field"], MANAGER_FIELD)
    out["manager_changes_365d"] = managers.count(
        reps, as_of, window_days=MANAGER_WINDOW_DAYS, mask=is_manager_change
    ).astype(np.float64)

    periods = quota_periods(tables)
    closed = EventIndex(periods["rep_id"], periods["readable_at"], vocabulary)
    last = closed.last(reps, as_of)
    for column in QUOTA_PERIOD_COLUMNS:
        out[column] = take(periods[column].to_numpy(dtype=np.float64), last)
    out["periods_with_quota"] = np.nan_to_num(out["periods_with_quota"].to_numpy())

    pay = pay_periods(tables)
    ended = known_at_index(pay, "compensation", "paid_incentive", "rep_id", vocabulary)
    last_pay = ended.last(reps, as_of)
    out["paid_vs_target_incentive_4"] = take(
        pay["paid_vs_target_incentive_4"].to_numpy(dtype=np.float64), last_pay
    )
    out["days_since_pay_change"] = days_between(as_of, take(pay["pay_changed_at"], last_pay))

    out["base_pay_vs_peers"] = take(pay["base_pay_vs_peers"].to_numpy(dtype=np.float64), last_pay)
    last_change = managers.last(reps, as_of, mask=is_manager_change)
    out["days_since_manager_change"] = days_between(as_of, take(history["changed_at"], last_change))
    out["manager_voluntary_exits_365d"] = _manager_voluntary_exits(tables, reps, as_of, vocabulary)
    activity = rep_activity_features(tables, reps, as_of, hire, vocabulary)
    out[list(REP_ACTIVITY_COLUMNS)] = activity.to_numpy()
    lost = Bookings.build(tables, vocabulary, outcome="lost")
    lost_amount = lost.index.sum(reps, as_of, values=lost.amounts, window_days=LOSS_WINDOW_DAYS)
    quota = take(periods["full_quota"].to_numpy(dtype=np.float64), last)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["large_losses_90d"] = np.where(quota > 0, lost_amount / quota, np.nan)
    return out[list(REP_FEATURE_COLUMNS)]


def team_moves(rep_history: pd.DataFrame, vocabulary: pd.Index) -> tuple[pd.DataFrame, EventIndex]:
    """``rep_history``'s team changes, indexed by rep and time (build once, query often)."""
    return field_moves(rep_history, "team", vocabulary)


def field_moves(
    rep_history: pd.DataFrame, field: str, vocabulary: pd.Index
) -> tuple[pd.DataFrame, EventIndex]:
    """``rep_history``'s changes of ``field``, indexed by rep and time."""
    moves = rep_history[equal_to(rep_history["field"], field)].reset_index(drop=True)
    return moves, EventIndex(moves["rep_id"], moves["changed_at"], vocabulary)


def team_at(
    tables: Tables,
    reps: np.ndarray,
    as_of: np.ndarray,
    current: np.ndarray | None = None,
    moves: tuple[pd.DataFrame, EventIndex] | None = None,
) -> np.ndarray:
    """Each rep's team at ``as_of``: replayed from ``rep_history`` (reps move between teams),
    else ``current`` (default: the reps table's team, the team at extraction).

    ``moves``: :func:`team_moves` already built (a service keeps them)."""
    return field_at_rep(tables, reps, as_of, "team", current, moves)


def manager_at(tables: Tables, reps: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """Each rep's manager at ``as_of``: replayed from ``rep_history``, else the reps table's."""
    return field_at_rep(tables, reps, as_of, MANAGER_FIELD)


def field_at_rep(
    tables: Tables,
    reps: np.ndarray,
    as_of: np.ndarray,
    field: str,
    current: np.ndarray | None = None,
    moves: tuple[pd.DataFrame, EventIndex] | None = None,
) -> np.ndarray:
    """Each rep's ``field`` (a ``reps`` column ``rep_history`` records) at ``as_of``: replayed
    from its changes strictly before, else ``current`` (default: the reps table's value)."""
    if current is None:
        current = tables.reps.set_index("rep_id")[field].reindex(reps).to_numpy(dtype=object)
    if moves is None:
        moves = field_moves(tables.rep_history, field, vocabulary_of(tables.reps["rep_id"]))
    rows, index = moves  # the changes of ``field`` only (:func:`field_moves`)
    if not len(rows):
        return current
    values, recorded = replay_field(rows, reps, as_of, field, index, field_only=True)
    return np.where(recorded, values, current)


def manager_at_exit(tables: Tables, leavers: pd.DataFrame) -> np.ndarray:
    """The manager of each of ``leavers`` (rows of ``reps``) at their exit, replayed from
    ``rep_history``: not the reps table's value, which a correction after the exit may move."""
    reps, exits = leavers["rep_id"].to_numpy(dtype=object), leavers["exit_date"].to_numpy()
    return field_at_rep(tables, reps, exits, MANAGER_FIELD)


def _manager_voluntary_exits(
    tables: Tables, reps: pd.Series, as_of: pd.Series, vocabulary: pd.Index
) -> np.ndarray:
    """Voluntary exits in the 365 days before ``as_of`` under each rep's manager then (of
    sellers: a manager's own exit says nothing of how they manage).

    A leaver's manager is the one at their exit (:func:`manager_at_exit`); the exit and its
    reason are facts from the exit on.
    """
    people = tables.reps
    left = equal_to(people["exit_reason"], "voluntary") & people["exit_date"].notna().to_numpy()
    leavers = people[left].reset_index(drop=True)
    manager_then = manager_at_exit(tables, leavers)
    exits = EventIndex(pd.Series(manager_then, dtype=object), leavers["exit_date"], vocabulary)
    manager = pd.Series(manager_at(tables, reps.to_numpy(dtype=object), as_of.to_numpy()))
    return exits.count(manager, as_of, window_days=MANAGER_WINDOW_DAYS).astype(np.float64)


def employed_share(
    tables: Tables, reps: pd.Series, start: pd.Series, close: pd.Series
) -> np.ndarray:
    """Share of each period ``[start, close)`` after the rep's hire (1 for a full period).

    The exit is never read: it is the future for any ``as_of`` inside the rep's employment,
    and a period is read only once closed, before any later exit.
    """
    hire = tables.reps.set_index("rep_id")["hire_date"].reindex(reps.to_numpy()).to_numpy()
    begin = np.maximum(start.to_numpy(dtype="datetime64[ns]"), hire)
    length = days_between(close, start)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = days_between(close, begin) / length
    return np.clip(np.where(np.isnan(share), 1.0, share), 1e-3, 1.0)


def quota_periods(tables: Tables) -> pd.DataFrame:
    """Every quota row with the trailing figures a rep's features take from it.

    Rows are per rep in period order; each row's figures use that period and the ones
    before it only, so all are known at its close (``readable_at``: one second before the
    close, so that an ``as_of`` at the close reads it: see the module docstring).
    ``full_quota`` is the quota per day employed times the period's length.
    """
    periods = period_attainment(tables)
    close = periods["known_at"]
    periods = periods.assign(
        full_quota=periods["quota_amount"].to_numpy(dtype=np.float64)
        / employed_share(tables, periods["rep_id"], periods["period_start"], close),
        readable_at=close - pd.Timedelta(seconds=1),
    )
    periods = periods.sort_values(["rep_id", "period_start"], kind="stable").reset_index(drop=True)
    by_rep = periods.groupby("rep_id", sort=False)
    attainment = by_rep["attainment"]
    periods["last_attainment"] = periods["attainment"]
    periods["mean_attainment_4"] = attainment.transform(
        lambda a: a.rolling(TRAILING_PERIODS, min_periods=1).mean()
    )
    periods["attainment_trend_4"] = attainment.transform(
        lambda a: a.rolling(TRAILING_PERIODS, min_periods=2).apply(_slope, raw=True)
    )
    periods["periods_with_quota"] = by_rep.cumcount().astype(np.float64) + 1
    previous = by_rep["full_quota"].shift()
    with np.errstate(divide="ignore", invalid="ignore"):
        periods["quota_change_pct"] = np.where(
            previous > 0, periods["full_quota"] / previous - 1, np.nan
        )
    same_period = periods.groupby("known_at", sort=False)
    periods["quota_vs_peers"] = periods["full_quota"] / same_period["full_quota"].transform(
        "median"
    )
    periods["attainment_rank_pct"] = same_period["mean_attainment_4"].rank(pct=True)
    return periods


def pay_periods(tables: Tables) -> pd.DataFrame:
    """Every compensation row with the trailing pay figures known once it has ended.

    ``paid_vs_target_incentive_4``: paid over target incentive over this row and the three
    before; ``base_pay_vs_peers``: base pay per day employed over the median of the rows of
    the same period (and ``segment_focus``, when the reps table has it); ``pay_changed_at``:
    the start of the latest row (up to this one) whose base pay per day employed moved by
    more than :data:`PAY_CHANGE_TOLERANCE` from the row before.
    """
    pay = tables.compensation.sort_values(["rep_id", "period_start"], kind="stable")
    pay = pay.reset_index(drop=True)
    by_rep = pay.groupby("rep_id", sort=False)

    def trailing(column: str) -> pd.Series:
        return by_rep[column].transform(lambda v: v.rolling(TRAILING_PERIODS, min_periods=1).sum())

    paid, target = trailing("paid_incentive"), trailing("target_incentive")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(target > 0, paid / target, np.nan)
    close = period_close(pay["period_end"])
    share = employed_share(tables, pay["rep_id"], pay["period_start"], close)
    rate = pay["base_pay"].to_numpy(dtype=np.float64) / share
    previous = pd.Series(rate).groupby(pay["rep_id"].to_numpy(), sort=False).shift().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        changed = np.abs(rate / previous - 1) > PAY_CHANGE_TOLERANCE
    changed_at = pd.Series(pay["period_start"].where(changed))
    peers = [pay["period_start"].to_numpy()]
    if "segment_focus" in tables.reps:
        focus = tables.reps.set_index("rep_id")["segment_focus"].astype(object)
        peers.append(focus.reindex(pay["rep_id"].to_numpy()).fillna("").to_numpy())
    median = pd.Series(rate).groupby(peers, sort=False).transform("median").to_numpy()
    return pay.assign(
        base_pay_vs_peers=rate / median,
        paid_vs_target_incentive_4=ratio,
        pay_changed_at=changed_at.groupby(pay["rep_id"].to_numpy(), sort=False).ffill(),
    )


def _slope(values: np.ndarray) -> float:
    """Least-squares slope of ``values`` against their position (NaNs skipped)."""
    x = np.arange(len(values), dtype=np.float64)
    keep = ~np.isnan(values)
    if keep.sum() < 2:
        return np.nan
    x, y = x[keep], values[keep]
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())
