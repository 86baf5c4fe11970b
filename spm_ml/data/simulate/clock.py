"""The simulation clock: integer minutes since ``start``, months and calendar quarters.

Times are int64 minutes internally, so ordering and "strictly before close" comparisons are
exact and cheap over millions of events; they become ``datetime64[ns]`` only when the tables
are assembled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Clock:
    """Month and quarter boundaries of one simulation, in minutes since ``start``."""

    start: pd.Timestamp
    months: int
    month_starts: np.ndarray
    """``months + 1`` boundaries; the last one is ``extracted_at``."""
    quarter_starts: np.ndarray
    """Starts of the calendar quarters overlapping the simulation, then the end of the last one
    (may be before ``start`` for the first and after ``extracted_at`` for the last)."""
    quarter_labels: tuple[pd.Timestamp, ...]

    @property
    def end(self) -> int:
        return int(self.month_starts[-1])

    def to_datetime(self, minutes: np.ndarray) -> np.ndarray:
        """Minutes since start to naive ``datetime64[ns]``."""
        base = np.datetime64(self.start.to_datetime64(), "ns")
        return base + np.asarray(minutes, dtype=np.int64).astype("timedelta64[m]")

    def quarter_of(self, minutes: np.ndarray) -> np.ndarray:
        """Index into ``quarter_starts`` of the quarter containing each time."""
        return np.searchsorted(self.quarter_starts, minutes, side="right") - 1

    def month_of(self, minutes: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.month_starts, minutes, side="right") - 1


def make_clock(start: pd.Timestamp, months: int) -> Clock:
    """Build the clock for a simulation of ``months`` months from ``start``."""

    def minutes(ts: pd.Timestamp) -> int:
        return int((ts - start) / pd.Timedelta(minutes=1))

    month_starts = np.array(
        [minutes(start + pd.DateOffset(months=m)) for m in range(months + 1)], dtype=np.int64
    )
    end = start + pd.DateOffset(months=months)
    first_q = pd.Timestamp(year=start.year, month=3 * ((start.month - 1) // 3) + 1, day=1)
    labels = []
    q = first_q
    while q < end:
        labels.append(q)
        q = q + pd.DateOffset(months=3)
    bounds = np.array([minutes(x) for x in [*labels, q]], dtype=np.int64)
    return Clock(start, months, month_starts, bounds, tuple(labels))


def day_strings(start: pd.Timestamp, n_days: int, fmt: str) -> np.ndarray:
    """``strftime`` of each day from ``start`` as an object array (lookup instead of formatting
    millions of timestamps)."""
    days = pd.date_range(start, periods=n_days, freq="D")
    return np.asarray(days.strftime(fmt), dtype=object)
