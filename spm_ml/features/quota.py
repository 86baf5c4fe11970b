"""Quota-risk rows: each rep's quota period seen at several moments inside it.

A manager asks "will this rep make quota this period?" on any day of the period, so the
training rows are ``(rep, period, as_of)`` snapshots at fixed fractions of each past period
(:data:`DEFAULT_FRACTIONS`), and the label is the period's final attainment below a
threshold of quota (:class:`QuotaLabel`).  The label is known at the period's close; a
period not closed at extraction is right-censored and counted, never guessed.

Features describe the period so far and the pipeline the rep holds at ``as_of``; the open
deals (:func:`open_deal_rows`) are scored by a deal model that never saw their outcome (the
caller passes those probabilities), so "win-probability-weighted pipeline" is what a
manager could have read that day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.errors import TrainingError
from spm_ml.features.asof import EventIndex, days_between, vocabulary_of
from spm_ml.features.attainment import Bookings, period_attainment, period_close
from spm_ml.features.deal_fields import owner_at
from spm_ml.features.snapshots import extraction_time

DEFAULT_FRACTIONS = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875)
"""Moments of a period a snapshot is taken at: every eighth, so that 25/50/75% are among
them (the issue's reporting points) and a quarter gives seven rows per rep."""

EARLY_STAGES = ("prospecting", "qualification")
LATE_STAGES = ("proposal", "negotiation")


@dataclass(frozen=True)
class QuotaLabel:
    """What a quota-risk model predicts; stored with every model trained on it."""

    threshold: float = 1.0
    """Attainment below this share of quota is a miss (1.0: below 100% of quota)."""

    @property
    def description(self) -> str:
        return f"attainment at period end below {self.threshold:.0%} of quota"

    def as_dict(self) -> dict:
        return {"definition": self.description, "threshold": self.threshold}


@dataclass(frozen=True)
class QuotaFeatureConfig:
    """Choices of the quota-risk feature set; logged with every model trained on it."""

    version: str = "quota_features.v1"
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        if not self.fractions or not all(0 < f < 1 for f in self.fractions):
            raise TrainingError(
                f"snapshot fractions must lie strictly inside (0, 1): {self.fractions}"
            )


def quota_snapshots(
    tables: Tables,
    label: QuotaLabel | None = None,
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
) -> tuple[pd.DataFrame, dict]:
    """Snapshots of every quota period, labelled, and what was left out (and why).

    Columns: ``rep_id, period_start, period_end, quota_amount, as_of, fraction_elapsed,
    miss`` (1.0/0.0, NaN while the period is open at extraction), ``label_known_at`` (the
    period's close) and ``final_attainment`` (for evaluation and intervals, never a
    feature).  A rep is snapshotted only while employed at ``as_of``.  Zero quotas have no
    attainment and are left out; the report counts them.
    """
    label = label or QuotaLabel()
    if tables.quotas.empty:
        raise TrainingError("no quota rows: quota risk needs the quotas table")
    periods = period_attainment(tables)
    zero = periods["quota_amount"].to_numpy() <= 0
    periods = periods[~zero].reset_index(drop=True)
    start = periods["period_start"].to_numpy(dtype="datetime64[ns]")
    close = periods["known_at"].to_numpy(dtype="datetime64[ns]")
    length = (close - start).astype("timedelta64[s]").astype(np.int64)
    rows, as_of, fraction = [], [], []
    for f in fractions:
        offset = np.round(length * f / 86_400).astype(np.int64).astype("timedelta64[D]")
        rows.append(np.arange(len(periods)))
        as_of.append(start + offset.astype("timedelta64[ns]"))
        fraction.append(np.full(len(periods), f))
    rows, as_of = np.concatenate(rows), np.concatenate(as_of)
    snap = periods.iloc[rows].reset_index(drop=True)
    snap["as_of"] = as_of
    snap["fraction_elapsed"] = np.concatenate(fraction)

    reps = tables.reps.set_index("rep_id")
    hired = snap["rep_id"].map(reps["hire_date"])
    left = snap["rep_id"].map(reps["exit_date"])
    employed = (hired < snap["as_of"]).to_numpy() & ~(left < snap["as_of"]).to_numpy()
    extracted = extraction_time(tables)
    closed = (snap["known_at"] <= extracted).to_numpy()
    miss = (snap["attainment"].to_numpy() < label.threshold).astype(float)
    miss[~closed] = np.nan
    snap = snap.assign(miss=miss, label_known_at=snap["known_at"])
    snap = snap.rename(columns={"attainment": "final_attainment"})
    snap = snap[employed & (snap["as_of"] < extracted).to_numpy()]
    report = {
        "zero_quota_periods": int(zero.sum()),
        "snapshots": int(len(snap)),
        "not_employed_at_as_of": int((~employed).sum()),
        "open_period_censored": int(snap["miss"].isna().sum()),
    }
    columns = [
        "rep_id",
        "period_start",
        "period_end",
        "quota_amount",
        "as_of",
        "fraction_elapsed",
        "miss",
        "label_known_at",
        "final_attainment",
    ]
    snap = snap[columns].sort_values(["as_of", "rep_id"], kind="stable").reset_index(drop=True)
    return snap, report


def open_deal_owners(tables: Tables, times: np.ndarray | pd.Series) -> pd.DataFrame:
    """``deal_id, as_of, rep_id``: every deal open at each of ``times`` (in ``np.unique``
    order) and its owner then, replayed in one pass over ``deal_history``.

    Open means created before ``as_of`` and not closed before it.  The forecast asks this
    of every past point it replays and again for each rep who can book; one replay of a
    million deals' history is the cost, not one per question.
    """
    deals = tables.deals
    created = deals["created_at"].to_numpy(dtype="datetime64[ns]")
    closed = deals["closed_at"].to_numpy(dtype="datetime64[ns]")
    when = np.unique(np.asarray(times, dtype="datetime64[ns]"))
    rows = [
        np.flatnonzero((created < t) & (np.isnat(closed) | (closed >= t))) for t in when
    ]  # positions, so the ids are cut once from their own (Arrow) column, not per time
    positions = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    candidates = pd.DataFrame(
        {
            "deal_id": deals["deal_id"].take(positions).reset_index(drop=True),
            "as_of": np.repeat(when, [len(r) for r in rows]),
        }
    )
    candidates["rep_id"] = owner_at(tables, candidates)
    return candidates


def open_deal_rows(
    tables: Tables, snapshots: pd.DataFrame, owned: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every deal open at a snapshot's ``as_of`` and owned by its rep then.

    Returns ``snapshot`` (position in ``snapshots``), ``deal_id`` and ``as_of``: rows the
    caller featurises and scores with a deal model.  Open means created before ``as_of``
    and not closed before it; the owner is replayed at ``as_of``.  ``owned``:
    :func:`open_deal_owners` at (at least) the snapshots' times, when the caller has it.
    """
    if owned is None:
        owned = open_deal_owners(tables, snapshots["as_of"])
    candidates = owned
    keys = snapshots[["rep_id", "as_of"]].reset_index(drop=True)
    keys["snapshot"] = np.arange(len(keys))
    rows = candidates.merge(keys, on=["rep_id", "as_of"], how="inner")
    return (
        rows[["snapshot", "deal_id", "as_of"]]
        .sort_values(["snapshot", "deal_id"])
        .reset_index(drop=True)
    )


def quota_features(
    tables: Tables,
    snapshots: pd.DataFrame,
    deals: pd.DataFrame,
    bookings: Bookings | None = None,
) -> pd.DataFrame:
    """The period so far and the pipeline held at ``as_of``, one row per snapshot.

    ``deals`` is :func:`open_deal_rows` with the deal features ``stage``, ``amount``,
    ``days_to_expected_close`` and the deal model's probability ``p_win``.  Amounts are
    shares of the period's quota, so reps of any size compare.
    """
    bookings = bookings or Bookings.build(tables)
    n = len(snapshots)
    quota = snapshots["quota_amount"].to_numpy(dtype=np.float64)
    close = period_close(snapshots["period_end"])
    days_left = days_between(close, snapshots["as_of"])
    booked = bookings.between(snapshots["rep_id"], snapshots["period_start"], snapshots["as_of"])
    attained = booked / quota

    position = deals["snapshot"].to_numpy()
    amount = deals["amount"].to_numpy(dtype=np.float64)
    amount = np.nan_to_num(amount) / quota[position]
    stage = deals["stage"].to_numpy(dtype=object)
    due = deals["days_to_expected_close"].to_numpy(dtype=np.float64) <= days_left[position]
    weighted = amount * deals["p_win"].to_numpy(dtype=np.float64)

    def per_snapshot(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        values = values if mask is None else np.where(mask, values, 0.0)
        return np.bincount(position, weights=values, minlength=n)

    early, late = np.isin(stage, EARLY_STAGES), np.isin(stage, LATE_STAGES)
    ones = np.ones(len(deals))
    remaining = np.maximum(1.0 - attained, 0.0)
    pipeline = per_snapshot(amount)
    created = _created_in_period(tables, snapshots)
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(remaining > 0, pipeline / remaining, np.nan)
    return pd.DataFrame(
        {
            "fraction_elapsed": snapshots["fraction_elapsed"].to_numpy(dtype=np.float64),
            "days_left": days_left,
            "log_quota": np.log1p(quota),
            "attainment_to_date": attained,
            "remaining_quota_share": remaining,
            "open_deals": per_snapshot(ones),
            "pipeline_share": pipeline,
            "pipeline_early_share": per_snapshot(amount, early),
            "pipeline_late_share": per_snapshot(amount, late),
            "pipeline_due_share": per_snapshot(amount, due),
            "pipeline_coverage": coverage,
            "weighted_pipeline_share": per_snapshot(weighted),
            "weighted_due_share": per_snapshot(weighted, due),
            "expected_attainment_simple": attained + per_snapshot(weighted, due),
            "deals_created_in_period": created,
        },
        index=snapshots.index,
    )


def _created_in_period(tables: Tables, snapshots: pd.DataFrame) -> np.ndarray:
    """Deals each rep created (owned at creation, as the track record counts them) from the
    period start to ``as_of``."""
    deals = tables.deals
    at_creation = pd.DataFrame({"deal_id": deals["deal_id"], "as_of": deals["created_at"]})
    owner = pd.Series(owner_at(tables, at_creation), dtype="object")
    index = EventIndex(owner, deals["created_at"], vocabulary_of(tables.reps["rep_id"]))
    reps = snapshots["rep_id"]
    return (
        index.count(reps, snapshots["as_of"]) - index.count(reps, snapshots["period_start"])
    ).astype(np.float64)
