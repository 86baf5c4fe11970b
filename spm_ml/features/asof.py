"""The one place where time is cut: events strictly before each row's ``as_of``.

Every feature in spm-ml is computed "as of" a moment and must never see anything dated at
or after it.  Rather than filtering tables in each feature (and getting it subtly wrong
once), feature code asks an :class:`EventIndex` questions such as "how many meetings did
deal D have in the 30 days before t?".  The index sorts events once by (entity, time) and
answers for many (entity, as_of) pairs with binary searches, so 100,000 snapshots over ten
million events cost a few sorts and searches, not a Python loop.

The rule lives in :meth:`EventIndex._position`: ``side="left"`` on the as-of time means an
event stamped exactly at ``as_of`` is *not* seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

NS_PER_DAY = 86_400 * 10**9
_SHIFT = 32  # entity code in the high bits, seconds since 1970 in the low 32 bits


def to_seconds(times: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Whole seconds since 1970 as int64; NaT becomes the largest value (never "before")."""
    values = np.asarray(pd.to_datetime(times).astype("datetime64[s]"), dtype="datetime64[s]")
    seconds = values.astype("int64")
    seconds[np.isnat(values)] = np.iinfo(np.uint32).max
    return seconds


class EventIndex:
    """Events of one kind (activities, emails, history rows...) keyed by entity and time.

    Parameters
    ----------
    entities:
        The entity each event belongs to (deal id, rep id...).  Events with a missing entity
        are ignored: they belong to nobody.
    times:
        When each event happened.
    vocabulary:
        The entity ids that queries will use; ids outside it are simply never matched.
    """

    def __init__(
        self,
        entities: pd.Series,
        times: pd.Series,
        vocabulary: pd.Index,
    ) -> None:
        codes = vocabulary.get_indexer(pd.Index(entities))
        seconds = to_seconds(times)
        keep = (codes >= 0) & (seconds < np.iinfo(np.uint32).max)
        kept = np.flatnonzero(keep)
        keys = (codes[keep].astype(np.int64) << _SHIFT) | seconds[keep]
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.rows = kept[order]  # positions in the original frame, in key order
        self.vocabulary = vocabulary

    def _position(self, codes: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Index of the first event of ``codes`` at or after ``seconds`` (so: count before)."""
        return np.searchsorted(self.keys, (codes << _SHIFT) | seconds, side="left")

    def count(
        self,
        entities: pd.Series,
        as_of: pd.Series,
        window_days: float | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Events of each entity in ``[as_of - window, as_of)`` (all before ``as_of`` if no window).

        ``mask`` (aligned with the original events) restricts which events count.
        """
        values = None if mask is None else mask.astype(np.float64)
        return self.sum(entities, as_of, values, window_days).astype(np.int64)

    def sum(
        self,
        entities: pd.Series,
        as_of: pd.Series,
        values: np.ndarray | None = None,
        window_days: float | None = None,
    ) -> np.ndarray:
        """Sum of ``values`` (aligned with the original events) over the same window as count."""
        codes = self.vocabulary.get_indexer(pd.Index(entities)).astype(np.int64)
        end_s = to_seconds(as_of)
        start_s = (
            np.zeros_like(end_s)
            if window_days is None
            else np.maximum(end_s - int(window_days * 86_400), 0)
        )
        hi = self._position(codes, end_s)
        lo = self._position(codes, start_s)
        if values is None:
            out = (hi - lo).astype(np.float64)
        else:
            sorted_values = np.nan_to_num(np.asarray(values, dtype=np.float64)[self.rows])
            cumulative = np.concatenate([[0.0], np.cumsum(sorted_values)])
            out = cumulative[hi] - cumulative[lo]
        out[codes < 0] = 0.0
        return out

    def last(
        self, entities: pd.Series, as_of: pd.Series, mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Original row position of each entity's latest event before ``as_of``, or -1.

        With ``mask``, only events where the mask is true are considered.
        """
        if mask is not None:
            return self.subset(mask).last(entities, as_of)
        codes = self.vocabulary.get_indexer(pd.Index(entities)).astype(np.int64)
        hi = self._position(codes, to_seconds(as_of)) - 1
        valid = (hi >= 0) & (codes >= 0)
        found = np.full(len(codes), -1, dtype=np.int64)
        candidate = hi[valid]
        same_entity = (self.keys[candidate] >> _SHIFT) == codes[valid]
        found_valid = np.where(same_entity, self.rows[candidate], -1)
        found[valid] = found_valid
        return found

    def subset(self, mask: np.ndarray) -> EventIndex:
        """The same index restricted to events where ``mask`` (original order) is true."""
        keep = np.asarray(mask, dtype=bool)[self.rows]
        clone = object.__new__(EventIndex)
        clone.keys = self.keys[keep]
        clone.rows = self.rows[keep]
        clone.vocabulary = self.vocabulary
        return clone


def take(values: pd.Series | np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values[positions]``, missing (NaN/NaT/None) where the position is -1 (nothing found)."""
    array = np.asarray(values)
    if array.dtype.kind == "M":
        out = np.full(len(positions), np.datetime64("NaT"), dtype=array.dtype)
    elif array.dtype.kind in "fiub":
        out = np.full(len(positions), np.nan)
    else:
        out = np.full(len(positions), None, dtype=object)
    found = positions >= 0
    out[found] = array[positions[found]]
    return out


def days_between(later: pd.Series | np.ndarray, earlier: pd.Series | np.ndarray) -> np.ndarray:
    """``later - earlier`` in days as floats (NaN where either is missing)."""
    a = np.asarray(pd.to_datetime(later), dtype="datetime64[ns]")
    b = np.asarray(pd.to_datetime(earlier), dtype="datetime64[ns]")
    delta = (a - b).astype("timedelta64[ns]")
    out = delta.astype(np.float64) / NS_PER_DAY
    out[np.isnat(delta)] = np.nan
    return out


def before(frame: pd.DataFrame, time_column: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """Rows of ``frame`` dated strictly before one ``as_of`` (the scalar form of the rule)."""
    return frame[frame[time_column] < as_of]


def check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        from spm_ml.errors import SchemaError

        raise SchemaError(f"{what} needs column(s) {', '.join(missing)}")
