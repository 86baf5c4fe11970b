"""Training rows for the deal model: every deal seen at calendar dates while it is open.

A deal is scored in production every week while it is open, never "at 30% of its life"
(which would need its close date).  So training snapshots sit on a calendar grid: every
``every_days`` from the first deal's creation, each deal gives one row per grid date
strictly between its creation and its close (or the extraction, for deals still open).

What is predicted must be observable for every snapshot, or the rows whose outcome is not
yet known vanish and take the slow deals with them (the review measured a 0.02 ROC AUC
bias from that).  So the label is **won within ``horizon_days`` of ``as_of``**:

- a deal closed won at most ``horizon_days`` after ``as_of`` is 1;
- a deal lost, or won later, or still open ``horizon_days`` after ``as_of`` is 0;
- a deal still open at extraction whose horizon has not passed yet is *right-censored*:
  its label is unknown (NaN).

Each row also says when its label became known (``label_known_at``: the close, or the end
of the horizon, whichever comes first), so a split can use exactly the labels a team would
have had on a given day, and an evaluation can keep to dates whose horizon has passed, where
every open deal has a label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.errors import TrainingError

DEFAULT_HORIZON_DAYS = 180
"""Why 180: in the simulated organisation 95% of the snapshots of eventually-won deals close
within 180 days (enterprise deals take a median 199 days from creation), so the label is
"eventual win" for nearly every deal, while a test window still fits in two years of
history.  Shorter horizons answer a forecast's question ("won this half-year?")."""


@dataclass(frozen=True)
class LabelDefinition:
    """What a deal-win model predicts; stored with every model trained on it."""

    horizon_days: int = DEFAULT_HORIZON_DAYS

    @property
    def description(self) -> str:
        return f"won within {self.horizon_days} days of as_of"

    def as_dict(self) -> dict:
        return {"definition": self.description, "horizon_days": self.horizon_days}


def extraction_time(tables: Tables) -> pd.Timestamp:
    """When the data was pulled: ``tables.extracted_at``, else the latest dated deal event."""
    if tables.extracted_at is not None:
        return pd.Timestamp(tables.extracted_at)
    deals = tables.deals
    latest = pd.concat([deals["created_at"], deals["closed_at"]]).max()
    if pd.isna(latest):
        raise TrainingError("cannot tell when the data was extracted: no dated deals")
    return pd.Timestamp(latest)


def deal_snapshots(
    tables: Tables,
    every_days: int = 7,
    label: LabelDefinition | None = None,
) -> pd.DataFrame:
    """Snapshots ``(deal_id, as_of, won, label_known_at)`` of every deal on a calendar grid.

    ``won`` is 1.0, 0.0 or NaN (right-censored at extraction); see the module docstring.
    Deals closed without an outcome have NaN labels too (they are counted, never guessed).
    """
    label = label or LabelDefinition()
    deals = tables.deals
    if deals.empty:
        raise TrainingError("no deals to learn from")
    extracted = np.datetime64(extraction_time(tables), "ns")
    origin = np.datetime64(deals["created_at"].min().normalize(), "ns")
    step = np.timedelta64(every_days, "D").astype("timedelta64[ns]")
    horizon = np.timedelta64(label.horizon_days, "D").astype("timedelta64[ns]")

    created = deals["created_at"].to_numpy(dtype="datetime64[ns]")
    closed_at = deals["closed_at"].to_numpy(dtype="datetime64[ns]")
    ends = np.where(np.isnat(closed_at), extracted, np.minimum(closed_at, extracted))
    # first grid point strictly after creation, last strictly before the end
    first = np.floor((created - origin) / step).astype(np.int64) + 1
    last = np.ceil((ends - origin) / step).astype(np.int64) - 1
    counts = np.maximum(last - first + 1, 0)
    rows = np.repeat(np.arange(len(deals)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    as_of = origin + (first[rows] + offsets) * step

    close = closed_at[rows]
    outcome = deals["outcome"].to_numpy(dtype=object)[rows]
    horizon_end = as_of + horizon
    closed_in_time = ~np.isnat(close) & (close <= horizon_end)
    won = np.where(closed_in_time, (outcome == "won").astype(float), 0.0)
    closed_without_outcome = closed_in_time & pd.isna(outcome)
    censored = np.isnat(close) & (horizon_end > extracted)
    won[closed_without_outcome | censored] = np.nan
    known_at = np.where(closed_in_time, close, horizon_end)

    snapshots = pd.DataFrame(
        {
            "deal_id": deals["deal_id"].to_numpy()[rows],
            "as_of": as_of,
            "won": won,
            "label_known_at": known_at.astype("datetime64[ns]"),
        }
    )
    return snapshots.sort_values(["as_of", "deal_id"], kind="stable").reset_index(drop=True)
