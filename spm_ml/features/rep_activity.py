"""A rep's activity against their own past: the slowdown of someone checking out.

A rep who has decided to leave keeps working their deals but does less of what only they
drive: calls, outbound emails, tasks (meetings and demos need the buyer too).  Raw counts
follow the pipeline as much as the rep, so two normalisations are used:

- **the rep's own recent past**: a short recent window over the rate in the months before
  it (a decision is recent: a short window sees it sooner, a baseline of a few months
  follows the rep's book of deals);
- **what buyers do on the same deals**: inbound emails come from buyers and do not depend
  on the rep's effort, so rep-driven activities per inbound email measure effort for the
  pipeline the rep actually has.

Every count goes through :class:`~spm_ml.features.asof.EventIndex` (events strictly before
``as_of``); baselines are cut at the hire (known: it is in the past).  Counts are of the
activities and emails each rep logged while owning the deal (each row carries the owner at
its own time).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.features.asof import EventIndex, days_between, equal_to, vocabulary_of

REP_DRIVEN_TYPES = ("call", "email", "task")
"""Activity types the rep alone decides on (meetings and demos need the buyer too)."""
ACTIVITY_RECENT_DAYS = 30
ACTIVITY_BASELINE_DAYS = 180
MIN_BASELINE_DAYS = 30
"""A baseline shorter than this (a new hire) gives no ratio."""
SLOWDOWN_RECENT_DAYS = 14
SLOWDOWN_BASELINE_DAYS = 90
EFFORT_RECENT_DAYS = 21
EFFORT_BASELINE_DAYS = 180

REP_ACTIVITY_COLUMNS = (
    "activity_30d_vs_baseline",
    "rep_activity_14d_vs_90d",
    "rep_activity_per_inbound_21d",
    "rep_activity_per_inbound_21d_vs_180d",
)


def rep_activity_features(
    tables: Tables, reps: pd.Series, as_of: pd.Series, hire: np.ndarray, vocabulary: pd.Index
) -> pd.DataFrame:
    """Activity features per ``(rep, as_of)`` row (columns :data:`REP_ACTIVITY_COLUMNS`).

    - ``activity_30d_vs_baseline``: activities per day in the 30 days before ``as_of`` over
      the rate in the 180 days before those.
    - ``rep_activity_14d_vs_90d``: the same for rep-driven activities (calls, emails, tasks),
      the last 14 days over the 90 days before them.
    - ``rep_activity_per_inbound_21d``: log((rep-driven activities + 1) / (inbound emails + 1))
      over the 21 days before ``as_of``.
    - ``rep_activity_per_inbound_21d_vs_180d``: that log ratio minus the same over the 180
      days before those.

    The ratios against a baseline are NaN when the baseline (cut at the hire) is shorter than
    30 days; the first two also when it is empty.
    """
    activities = tables.activities
    index = EventIndex(activities["rep_id"], activities["occurred_at"], vocabulary)
    query = index.query(reps, as_of)
    rep_driven = np.isin(activities["type"].astype(object).to_numpy(), REP_DRIVEN_TYPES)
    employed_days = days_between(as_of, hire)
    out = pd.DataFrame(index=reps.index)
    out["activity_30d_vs_baseline"] = _rate_ratio(
        index.count(query, window_days=ACTIVITY_RECENT_DAYS),
        index.count(query, window_days=ACTIVITY_RECENT_DAYS + ACTIVITY_BASELINE_DAYS),
        employed_days,
        ACTIVITY_RECENT_DAYS,
        ACTIVITY_BASELINE_DAYS,
    )
    out["rep_activity_14d_vs_90d"] = _rate_ratio(
        index.count(query, window_days=SLOWDOWN_RECENT_DAYS, mask=rep_driven),
        index.count(
            query, window_days=SLOWDOWN_RECENT_DAYS + SLOWDOWN_BASELINE_DAYS, mask=rep_driven
        ),
        employed_days,
        SLOWDOWN_RECENT_DAYS,
        SLOWDOWN_BASELINE_DAYS,
    )
    emails = tables.emails
    inbound_index = EventIndex(emails["rep_id"], emails["sent_at"], vocabulary).subset(
        equal_to(emails["direction"], "inbound")
    )
    inbound = inbound_index.query(reps, as_of)
    span = EFFORT_RECENT_DAYS + EFFORT_BASELINE_DAYS
    done_recent = index.count(query, window_days=EFFORT_RECENT_DAYS, mask=rep_driven)
    done_span = index.count(query, window_days=span, mask=rep_driven)
    asked_recent = inbound_index.count(inbound, window_days=EFFORT_RECENT_DAYS)
    asked_span = inbound_index.count(inbound, window_days=span)
    recent = np.log((done_recent + 1) / (asked_recent + 1))
    before = np.log((done_span - done_recent + 1) / (asked_span - asked_recent + 1))
    baseline_days = np.clip(employed_days - EFFORT_RECENT_DAYS, 0, EFFORT_BASELINE_DAYS)
    out["rep_activity_per_inbound_21d"] = recent
    out["rep_activity_per_inbound_21d_vs_180d"] = np.where(
        baseline_days >= MIN_BASELINE_DAYS, recent - before, np.nan
    )
    return out[list(REP_ACTIVITY_COLUMNS)]


def _rate_ratio(
    recent: np.ndarray,
    span: np.ndarray,
    employed_days: np.ndarray,
    recent_days: int,
    baseline_days: int,
) -> np.ndarray:
    """Events per day in the recent window over the rate in the baseline before it (the
    baseline cut at the hire); NaN when that baseline is under 30 days or empty."""
    days = np.clip(employed_days - recent_days, 0, baseline_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        baseline_rate = (span - recent) / np.where(days > 0, days, np.nan)
        ratio = (recent / recent_days) / baseline_rate
    usable = (days >= MIN_BASELINE_DAYS) & (baseline_rate > 0)
    return np.where(usable, ratio, np.nan)


def activity_by_type(
    tables: Tables, snapshots: pd.DataFrame, types: tuple[str, ...]
) -> dict[str, pd.DataFrame]:
    """Per ``(rep_id, as_of)`` row, for each activity type of ``types`` (``"all"``: every
    type): ``recent`` (activities in the 30 days before ``as_of``), ``usual`` (the mean per
    30 days over the 180 days before those, cut at the hire; NaN under 30 days) and
    ``ratio`` (recent rate over usual rate: ``activity_30d_vs_baseline`` for ``"all"``)."""
    vocabulary = vocabulary_of(tables.reps["rep_id"])
    reps = snapshots["rep_id"].reset_index(drop=True)
    as_of = snapshots["as_of"].reset_index(drop=True)
    hire = tables.reps.set_index("rep_id")["hire_date"].reindex(reps.to_numpy()).to_numpy()
    activities = tables.activities
    index = EventIndex(activities["rep_id"], activities["occurred_at"], vocabulary)
    query = index.query(reps, as_of)
    employed_days = days_between(as_of, hire)
    days = np.clip(employed_days - ACTIVITY_RECENT_DAYS, 0, ACTIVITY_BASELINE_DAYS)
    kinds = activities["type"].astype(object).to_numpy()
    out = {}
    for kind in types:
        mask = None if kind == "all" else kinds == kind
        recent = index.count(query, window_days=ACTIVITY_RECENT_DAYS, mask=mask)
        span = index.count(
            query, window_days=ACTIVITY_RECENT_DAYS + ACTIVITY_BASELINE_DAYS, mask=mask
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            usual = np.where(
                days >= MIN_BASELINE_DAYS, (span - recent) / days * ACTIVITY_RECENT_DAYS, np.nan
            )
        ratio = _rate_ratio(
            recent, span, employed_days, ACTIVITY_RECENT_DAYS, ACTIVITY_BASELINE_DAYS
        )
        out[kind] = pd.DataFrame(
            {"recent": recent.astype(np.float64), "usual": usual, "ratio": ratio}
        )
    return out
