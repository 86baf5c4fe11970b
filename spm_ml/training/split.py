"""Time-based splits of snapshot rows: the model is judged as if trained at a past date.

Random splits of snapshots leak: two snapshots of one deal share its outcome, so a model
that memorises the deal looks brilliant.  Here every cut is a date, and every fold holds
only labels that were known when it would have been used:

- **test**: snapshots taken in ``[test_start, observable_end]``, where ``observable_end``
  is the last date whose outcome window has passed by extraction.  Every deal open on a
  test date has a label, so the test population is the one a user faces, not the deals
  that happened to close fast.
- **fit**/**valid**: snapshots whose label was known *before* ``test_start`` (what a team
  would have had on that day), split again at ``valid_start``: fit rows' labels were known
  before it, valid rows' labels became known in ``[valid_start, test_start)``.

Snapshots whose label was not yet known at the training date are right-censored for
training and left out of it; :class:`TimeSplit` counts them (``censoring``) so the metrics
say how many there were and how they were treated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spm_ml.errors import TrainingError


@dataclass(frozen=True)
class TimeSplit:
    """Row positions of each fold, the dates that define them, and what was left out."""

    fit: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    valid_start: pd.Timestamp
    test_start: pd.Timestamp
    observable_end: pd.Timestamp
    censoring: dict[str, int] = field(default_factory=dict)

    @property
    def train(self) -> np.ndarray:
        """Fit and valid rows: what the final model and the references are trained on."""
        return np.concatenate([self.fit, self.valid])

    def compact(self) -> tuple[np.ndarray, TimeSplit]:
        """The rows in some fold (fit, valid, test order) and the split re-indexed on them:
        rows in no fold need not be featurised."""
        used = np.concatenate([self.fit, self.valid, self.test])
        n_fit, n_valid = len(self.fit), len(self.valid)
        positions = np.arange(len(used))
        return used, TimeSplit(
            fit=positions[:n_fit],
            valid=positions[n_fit : n_fit + n_valid],
            test=positions[n_fit + n_valid :],
            valid_start=self.valid_start,
            test_start=self.test_start,
            observable_end=self.observable_end,
            censoring=self.censoring,
        )

    def params(self) -> dict[str, str | int]:
        """What to log to MLflow so the split can be reproduced."""
        return {
            "split": "time",
            "split_valid_start": str(self.valid_start.date()),
            "split_test_start": str(self.test_start.date()),
            "split_observable_end": str(self.observable_end.date()),
            "n_fit": len(self.fit),
            "n_valid": len(self.valid),
            "n_test": len(self.test),
        }

    def cutoffs(self) -> dict[str, str]:
        """The dates, as stored with the model (training labels end at ``test_start``)."""
        return {
            "valid_start": self.valid_start.isoformat(),
            "test_start": self.test_start.isoformat(),
            "observable_end": self.observable_end.isoformat(),
        }


def time_split(
    as_of: pd.Series,
    label_known_at: pd.Series,
    labels: np.ndarray,
    *,
    observable_end: pd.Timestamp,
    test_fraction: float = 0.25,
    valid_fraction: float = 0.2,
) -> TimeSplit:
    """Split snapshot rows by date; see the module docstring for the rule.

    ``labels`` may hold NaN for right-censored rows; ``observable_end`` is the extraction
    time minus the label's horizon.
    """
    times = pd.to_datetime(as_of).to_numpy(dtype="datetime64[ns]")
    known = pd.to_datetime(label_known_at).to_numpy(dtype="datetime64[ns]")
    labelled = ~np.isnan(np.asarray(labels, dtype=float))
    end = np.datetime64(pd.Timestamp(observable_end), "ns")
    window = np.flatnonzero(times <= end)
    if len(window) == 0:
        raise TrainingError(
            f"no snapshot is older than the label horizon (observable until {observable_end}): "
            "the history is shorter than the horizon; use a shorter --horizon-days"
        )
    test_start = pd.Timestamp(np.quantile(times[window].astype("int64"), 1 - test_fraction))
    test_start = test_start.normalize()
    t0 = np.datetime64(test_start, "ns")
    test = window[times[window] >= t0]
    pool = np.flatnonzero(labelled & (known < t0))
    if len(pool) == 0 or len(test) == 0:
        raise TrainingError("too little history for a time-based split (need earlier and later)")
    valid_start = pd.Timestamp(
        np.quantile(times[pool].astype("int64"), 1 - valid_fraction)
    ).normalize()
    v0 = np.datetime64(valid_start, "ns")
    fit = pool[known[pool] < v0]
    valid = pool[known[pool] >= v0]
    for name, rows in (("fit", fit), ("valid", valid), ("test", test)):
        if len(rows) == 0:
            raise TrainingError(f"time-based split left the {name} fold empty")
    if np.isnan(np.asarray(labels, dtype=float)[test]).any():
        raise TrainingError("a test snapshot has no label although its horizon has passed")
    before_test = times < t0
    censoring = {
        "snapshots": int(len(times)),
        "censored_at_extraction": int((~labelled).sum()),
        "unknown_at_training_date": int((before_test & ~(labelled & (known < t0))).sum()),
        "after_observable_end": int((times > end).sum()),
    }
    return TimeSplit(
        fit, valid, test, valid_start, test_start, pd.Timestamp(observable_end), censoring
    )


def split_snapshots(
    snapshots: pd.DataFrame,
    label: str,
    *,
    observable_end: pd.Timestamp,
    test_fraction: float = 0.25,
    valid_fraction: float = 0.2,
) -> tuple[pd.DataFrame, TimeSplit]:
    """The snapshots a run trains and tests on, and the split whose positions index them.

    ``snapshots`` has ``as_of``, ``label_known_at`` and the ``label`` column.  Snapshots in
    no fold (labels unknown at the training date, or after the last date whose outcome
    window has passed) are counted in ``split.censoring`` and dropped, so they are never
    featurised.
    """
    split = time_split(
        snapshots["as_of"],
        snapshots["label_known_at"],
        snapshots[label].to_numpy(),
        observable_end=observable_end,
        test_fraction=test_fraction,
        valid_fraction=valid_fraction,
    )
    used, compact = split.compact()
    return snapshots.iloc[used].reset_index(drop=True), compact
