"""What the simulator knew about each deal at a moment, for ceilings and truth-based checks.

Three uses of ``org.truth`` that must stay honest about time:

- :func:`latent_deal_state` is the **ceiling's** extra input: the deal's hidden state as it
  stood strictly before ``as_of`` (its health and whether it was already dead at the last
  step of its own clock, the rep's current skill and engagement...).  A model given it on
  top of the observed features shows how much of the outcome was knowable at all.
- :func:`latent_rep_state` is the same for a rep: latent engagement, manager quality,
  underpay and exit hazard of the current month, whether they have already decided to leave,
  and their last raise.
- :func:`truth_population` is the **evaluation's** reference: every deal open on each test
  date, labelled "won within the horizon" from the simulator's eventual outcome, whatever
  the extraction cut-off hid.

Outcome fields (``eventual_outcome``, ``eventual_closed_at``, ``health_at_end``,
``n_slips``, ``pulled_in``, ``pushed_out``, ``open_at_extraction``) are what happened
*after* the moment: :func:`latent_deal_state` never reads them.  Time-varying state is read
through :class:`spm_ml.features.asof.EventIndex`, the same helper that cuts time for the
features, so a step starting exactly at ``as_of`` is not seen.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from spm_ml.features.asof import EventIndex, days_between, take

STATIC_DEAL_TRUTH = {
    "segment": "latent_segment",
    "health_at_creation": "latent_health_at_creation",
    "account_fit": "latent_account_fit",
    "rep_skill": "latent_rep_skill_at_creation",
    "rep_engagement": "latent_rep_engagement_at_creation",
    "n_contacts": "latent_buying_committee",
}
"""Deal truths fixed when the deal was created (so known at any later ``as_of``), renamed."""

OUTCOME_TRUTH = (
    "eventual_outcome",
    "eventual_closed_at",
    "open_at_extraction",
    "health_at_end",
    "n_slips",
    "pulled_in",
    "pushed_out",
)
"""Deal truths that describe what happened after any open snapshot: never latent state."""

REP_MONTH_TRUTH = {
    "skill": "latent_rep_skill",
    "engagement": "latent_rep_engagement",
    "manager_quality": "latent_rep_manager_quality",
}
"""The deal's original rep's state in the latest month that began before ``as_of``."""

CURRENT_MONTH_DAYS = 32
"""A rep month older than this at ``as_of`` is not the rep's current state (the rep left)."""


def latent_deal_state(truth: Mapping[str, pd.DataFrame], snapshots: pd.DataFrame) -> pd.DataFrame:
    """The simulator's latent state of each snapshot's deal, from truths dated before ``as_of``.

    One row per row of ``snapshots`` (columns ``deal_id``, ``as_of``), in the same order.
    Columns (all prefixed ``latent_``):

    - fixed at creation (from ``truth["deals"]``): segment, health at creation, account fit,
      the rep's skill and engagement when the deal was created, buying-committee size;
    - from the last ``truth["deal_steps"]`` row starting strictly before ``as_of``:
      ``latent_health`` and ``latent_dead`` (a lost deal still open: the "zombie"),
      ``latent_health_trend`` (its change since the step before), ``latent_steps`` (steps of
      the deal's clock begun so far), ``latent_step_days`` (the clock's pace: days between
      the last two steps) and ``latent_days_since_step``;
    - from ``truth["rep_months"]``: the deal's original rep's skill, engagement and manager
      quality in the latest month that began strictly before ``as_of``, if it began at most
      ``CURRENT_MONTH_DAYS`` earlier (else missing: the rep has left).

    Who owns the deal at ``as_of`` is not in the truth frames, so the rep is the original
    owner (``original_rep_id``), which is fixed at creation.
    """
    snapshots = snapshots.reset_index(drop=True)
    ids, as_of = snapshots["deal_id"], snapshots["as_of"]
    deals = truth["deals"].set_index("deal_id")
    static = deals.reindex(ids.to_numpy())
    out = pd.DataFrame(
        {new: static[old].to_numpy() for old, new in STATIC_DEAL_TRUTH.items()},
        index=snapshots.index,
    )
    out["latent_segment"] = out["latent_segment"].astype("object")
    out["latent_buying_committee"] = out["latent_buying_committee"].astype("float64")

    steps = truth["deal_steps"]
    index = EventIndex(steps["deal_id"], steps["step_start"], pd.Index(ids.unique()))
    query = index.query(ids, as_of)
    last = index.last(query)
    # the step before the last one: the last step strictly before the last step's start
    # (asked only where there is a last step: a missing time would mean "after everything")
    previous = np.full(len(last), -1, dtype=np.int64)
    found = last >= 0
    previous[found] = index.last(
        ids[found].reset_index(drop=True), pd.Series(take(steps["step_start"], last[found]))
    )
    health = take(steps["health"].to_numpy(dtype="float64"), last)
    out["latent_health"] = health
    out["latent_dead"] = take(steps["dead"].to_numpy(dtype="float64"), last)
    out["latent_health_trend"] = health - take(steps["health"].to_numpy(dtype="float64"), previous)
    out["latent_steps"] = index.count(query).astype("float64")
    out["latent_step_days"] = days_between(
        take(steps["step_start"], last), take(steps["step_start"], previous)
    )
    out["latent_days_since_step"] = days_between(as_of, take(steps["step_start"], last))

    months = truth["rep_months"]
    reps = static["original_rep_id"]
    month_index = EventIndex(
        months["rep_id"], months["month_start"], pd.Index(reps.dropna().unique())
    )
    month = month_index.last(reps.reset_index(drop=True), as_of)
    started = take(months["month_start"], month)
    current = days_between(as_of, started) <= CURRENT_MONTH_DAYS
    month = np.where(current, month, -1)
    for old, new in REP_MONTH_TRUTH.items():
        out[new] = take(months[old].to_numpy(dtype="float64"), month)
    return out


REP_STATE_TRUTH = {
    "skill": "latent_rep_skill",
    "engagement": "latent_rep_engagement",
    "manager_quality": "latent_rep_manager_quality",
    "underpay_gap": "latent_rep_underpay_gap",
    "attrition_hazard": "latent_rep_attrition_hazard",
}
"""A rep's state in the latest month that began before ``as_of``, renamed."""


def latent_rep_state(truth: Mapping[str, pd.DataFrame], snapshots: pd.DataFrame) -> pd.DataFrame:
    """The simulator's latent state of each snapshot's rep, from truths dated before ``as_of``.

    The ceiling's extra input for rep-level models (quota risk, attrition): one row per row
    of ``snapshots`` (columns ``rep_id``, ``as_of``), in the same order, with

    - from ``truth["rep_months"]`` in the latest month that began strictly before ``as_of``
      (at most ``CURRENT_MONTH_DAYS`` earlier, else missing): skill, engagement, manager
      quality, underpay gap and the month's voluntary-exit hazard;
    - ``latent_rep_resigning``: 1 when the rep decided to leave strictly before ``as_of``
      (``truth["resignations"]``, exact to the day) and had not left by then, else 0;
    - ``latent_rep_last_raise`` and ``latent_rep_days_since_raise``: the latest pay review
      effective strictly before ``as_of`` (``truth["raises"]``; missing when none).

    A month's hazard is a probability set at the month's start, not its outcome; the
    decision to leave is read only once taken.
    """
    snapshots = snapshots.reset_index(drop=True)
    reps, as_of = snapshots["rep_id"], snapshots["as_of"]
    out = pd.DataFrame(index=snapshots.index)
    months = truth["rep_months"]
    index = EventIndex(months["rep_id"], months["month_start"], pd.Index(reps.dropna().unique()))
    month = index.last(reps, as_of)
    current = days_between(as_of, take(months["month_start"], month)) <= CURRENT_MONTH_DAYS
    month = np.where(current, month, -1)
    for old, new in REP_STATE_TRUTH.items():
        out[new] = take(months[old].to_numpy(dtype="float64"), month)

    quits = truth["resignations"]
    decided = reps.map(quits.set_index("rep_id")["decided_at"]).to_numpy(dtype="datetime64[ns]")
    gone = reps.map(quits.set_index("rep_id")["exit_at"]).to_numpy(dtype="datetime64[ns]")
    at = as_of.to_numpy(dtype="datetime64[ns]")
    out["latent_rep_resigning"] = ((decided < at) & ~(gone <= at)).astype("float64")

    raises = truth["raises"]
    index = EventIndex(raises["rep_id"], raises["effective_at"], pd.Index(reps.dropna().unique()))
    last = index.last(reps, as_of)
    out["latent_rep_last_raise"] = take(raises["raise_pct"].to_numpy(dtype="float64"), last)
    out["latent_rep_days_since_raise"] = days_between(as_of, take(raises["effective_at"], last))
    return out


def truth_population(
    tables_deals: pd.DataFrame,
    truth: Mapping[str, pd.DataFrame],
    dates: np.ndarray | pd.Series,
    *,
    horizon_days: int,
) -> pd.DataFrame:
    """Every deal open on each date, labelled "won within ``horizon_days``" from the truth.

    Rows ``(deal_id, as_of, won)``: for each date, the deals created before it whose
    eventual close (``truth["deals"]``, known even for deals open at extraction) is after
    it; ``won`` is 1 when the eventual outcome is a win at most ``horizon_days`` later.
    ``tables_deals`` gives the creation times (the contract's ``deals`` table).
    """
    deals = tables_deals[["deal_id", "created_at"]].merge(
        truth["deals"][["deal_id", "eventual_outcome", "eventual_closed_at"]], on="deal_id"
    )
    horizon = pd.Timedelta(days=horizon_days)
    rows = []
    for date in pd.to_datetime(np.asarray(dates)):
        open_then = deals[(deals["created_at"] < date) & (deals["eventual_closed_at"] > date)]
        won = (open_then["eventual_outcome"] == "won") & (
            open_then["eventual_closed_at"] <= date + horizon
        )
        rows.append(pd.DataFrame({"deal_id": open_then["deal_id"], "as_of": date, "won": won}))
    if not rows:
        return pd.DataFrame({"deal_id": [], "as_of": [], "won": []}).astype(
            {"as_of": "datetime64[ns]", "won": int}
        )
    return pd.concat(rows, ignore_index=True).astype({"as_of": "datetime64[ns]", "won": int})
