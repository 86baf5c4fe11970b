"""Training rows for the attrition model: every employed AE at each month start, labelled.

A retention conversation happens about the reps on the team today, so the rows are every
AE employed at each month start (hired before it, not gone by it): stayers, leavers and
those let go alike, never only the reps whose story has ended.  The label is **left
voluntarily within ``horizon_days`` after ``as_of``**:

- a voluntary exit in ``(as_of, as_of + horizon]`` is 1, known at the exit;
- an involuntary exit in the window is 0 (the rep did not choose to leave), known at the
  exit: the rep can no longer resign within the window;
- a rep still employed ``horizon_days`` later is 0, known then;
- a rep still employed at extraction whose window has not passed is right-censored (NaN).

``label_known_at`` says when each label became known, for the time split
(:func:`~spm_ml.training.split.time_split`).  The exit date and reason are read here, for the
label only: no feature reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.errors import TrainingError
from spm_ml.features.snapshots import extraction_time

DEFAULT_ATTRITION_HORIZON_DAYS = 90
"""A quarter: long enough to act on (a pay review, a territory change, a talk with the
manager), short enough that the signs of a search (a slowdown, missed quarters) are visible;
the simulator's reps decide 21-75 days before they go."""

VOLUNTARY = "voluntary"


@dataclass(frozen=True)
class AttritionLabel:
    """What an attrition model predicts; stored with every model trained on it."""

    horizon_days: int = DEFAULT_ATTRITION_HORIZON_DAYS
    roles: tuple[str, ...] = ("AE",)
    """``reps.role`` values (case-insensitive) of the people scored: quota-carrying sellers."""

    @property
    def description(self) -> str:
        return f"leaves voluntarily within {self.horizon_days} days of as_of"

    def as_dict(self) -> dict:
        return {
            "definition": self.description,
            "horizon_days": self.horizon_days,
            "roles": list(self.roles),
            "involuntary_exit": "0 (not a voluntary exit), known at the exit",
        }


def month_starts(tables: Tables) -> pd.DatetimeIndex:
    """Month starts from the first quota period's start to before the extraction."""
    quotas = tables.quotas
    first = quotas["period_start"].min() if len(quotas) else tables.reps["hire_date"].min()
    if pd.isna(first):
        raise TrainingError("no quota periods or hire dates: nothing to snapshot reps on")
    end = extraction_time(tables)
    dates = pd.date_range(pd.Timestamp(first).normalize(), end, freq="MS")
    return dates[dates < end]


def attrition_snapshots(
    tables: Tables,
    label: AttritionLabel | None = None,
    dates: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """Snapshots ``(rep_id, as_of, left, label_known_at)``: every rep of ``label.roles``
    employed at each date (default: :func:`month_starts`); see the module docstring."""
    label = label or AttritionLabel()
    dates = month_starts(tables) if dates is None else dates
    reps = tables.reps
    roles = {r.lower() for r in label.roles}
    reps = reps[reps["role"].astype("object").str.lower().isin(roles).to_numpy()]
    hired = reps["hire_date"].to_numpy(dtype="datetime64[ns]")
    exited = reps["exit_date"].to_numpy(dtype="datetime64[ns]")
    at = np.asarray(dates, dtype="datetime64[ns]")
    # employed at as_of: hired before it, not gone at it (NaT compares False: still there)
    employed = (hired[:, None] < at[None, :]) & ~(exited[:, None] <= at[None, :])
    rep_rows, date_rows = np.nonzero(employed)
    as_of = at[date_rows]
    exit_at = exited[rep_rows]
    voluntary = (reps["exit_reason"].to_numpy(dtype=object) == VOLUNTARY)[rep_rows]
    horizon_end = as_of + np.timedelta64(label.horizon_days, "D").astype("timedelta64[ns]")
    leaves_in_window = ~np.isnat(exit_at) & (exit_at <= horizon_end)
    left = (leaves_in_window & voluntary).astype(np.float64)
    extracted = np.datetime64(extraction_time(tables), "ns")
    left[~leaves_in_window & (horizon_end > extracted)] = np.nan
    snapshots = pd.DataFrame(
        {
            "rep_id": reps["rep_id"].to_numpy(dtype=object)[rep_rows],
            "as_of": as_of,
            "left": left,
            "label_known_at": np.where(leaves_in_window, exit_at, horizon_end).astype(
                "datetime64[ns]"
            ),
        }
    )
    return snapshots.sort_values(["as_of", "rep_id"], kind="stable").reset_index(drop=True)


def top_performers(attainment_rank_pct: pd.Series | np.ndarray, share: float) -> np.ndarray:
    """Whether each row's trailing attainment ranks in the company's top ``share`` (0.25:
    top quartile) among the reps with a quota in the same last closed period; False when the
    rep has no closed period yet."""
    rank = np.asarray(attainment_rank_pct, dtype=np.float64)
    return np.nan_to_num(rank, nan=0.0) > 1 - share
