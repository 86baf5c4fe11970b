"""Time-based splits of snapshot rows: the model is judged as if trained at a past date.

Random splits of snapshots leak: two snapshots of one deal share its outcome, so a model
that memorises the deal looks brilliant.  Here every cut is a date:

- **test**: snapshots taken at or after ``test_start``;
- **fit**/**valid**: snapshots of deals *closed before* ``test_start`` (labels a team would
  have had on that day), split again at ``valid_start``: fit rows come from deals closed
  before it, valid rows are snapshots taken in ``[valid_start, test_start)``.

Labels in fit and valid are therefore all known before any test snapshot is taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.errors import TrainingError


@dataclass(frozen=True)
class TimeSplit:
    """Row positions of each fold and the dates that define them."""

    fit: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    valid_start: pd.Timestamp
    test_start: pd.Timestamp

    def params(self) -> dict[str, str | int]:
        """What to log to MLflow so the split can be reproduced."""
        return {
            "split": "time",
            "split_valid_start": str(self.valid_start.date()),
            "split_test_start": str(self.test_start.date()),
            "n_fit": len(self.fit),
            "n_valid": len(self.valid),
            "n_test": len(self.test),
        }


def time_split(
    as_of: pd.Series,
    closed_at: pd.Series,
    *,
    test_fraction: float = 0.25,
    valid_fraction: float = 0.2,
) -> TimeSplit:
    """Split snapshot rows by date; see the module docstring for the rule."""
    times = pd.to_datetime(as_of).to_numpy()
    closed = pd.to_datetime(closed_at).to_numpy()
    test_start = pd.Timestamp(np.quantile(times.astype("int64"), 1 - test_fraction)).normalize()
    test = np.flatnonzero(times >= test_start.to_datetime64())
    pool = np.flatnonzero(closed < test_start.to_datetime64())
    if len(pool) == 0 or len(test) == 0:
        raise TrainingError("too little history for a time-based split (need earlier and later)")
    valid_start = pd.Timestamp(
        np.quantile(times[pool].astype("int64"), 1 - valid_fraction)
    ).normalize()
    fit = pool[closed[pool] < valid_start.to_datetime64()]
    valid = pool[times[pool] >= valid_start.to_datetime64()]
    for name, rows in (("fit", fit), ("valid", valid), ("test", test)):
        if len(rows) == 0:
            raise TrainingError(f"time-based split left the {name} fold empty")
    return TimeSplit(fit, valid, test, valid_start, test_start)
