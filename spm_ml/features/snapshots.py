"""Training rows for the deal model: closed deals seen at calendar dates while still open.

A deal is scored in production every week while it is open, never "at 30% of its life"
(which would need its close date).  So training snapshots sit on a calendar grid: every
``every_days`` from the first deal's creation, each deal closed by extraction time gives one
row per grid date strictly between its creation and its close.  The label (won) is known
only after ``as_of``, as labels should be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.errors import TrainingError


def deal_snapshots(tables: Tables, every_days: int = 7) -> pd.DataFrame:
    """Snapshots ``(deal_id, as_of, closed_at, won)`` of closed deals on a calendar grid."""
    deals = tables.deals
    closed = deals[deals["closed_at"].notna() & deals["outcome"].notna()]
    if closed.empty:
        raise TrainingError("no closed deals (won or lost) to learn from")
    origin = deals["created_at"].min().normalize()
    step = np.timedelta64(every_days, "D").astype("timedelta64[ns]")
    created = closed["created_at"].to_numpy(dtype="datetime64[ns]")
    closed_at = closed["closed_at"].to_numpy(dtype="datetime64[ns]")
    origin64 = np.datetime64(origin, "ns")
    # first grid point strictly after creation, last strictly before close
    first = np.floor((created - origin64) / step).astype(np.int64) + 1
    last = np.ceil((closed_at - origin64) / step).astype(np.int64) - 1
    counts = np.maximum(last - first + 1, 0)
    rows = np.repeat(np.arange(len(closed)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    grid = first[rows] + offsets
    snapshots = pd.DataFrame(
        {
            "deal_id": closed["deal_id"].to_numpy()[rows],
            "as_of": origin64 + grid * step,
            "closed_at": closed_at[rows],
            "won": (closed["outcome"].to_numpy()[rows] == "won").astype(np.int8),
        }
    )
    return snapshots.sort_values(["as_of", "deal_id"], kind="stable").reset_index(drop=True)
