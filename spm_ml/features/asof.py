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

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

NS_PER_DAY = 86_400 * 10**9
_SHIFT = 32  # entity code in the high bits, seconds since 1970 in the low 32 bits
_NEVER = np.iinfo(np.uint32).max  # NaT's seconds: after every real time, so never "before"


def to_seconds(times: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Whole seconds since 1970 as int64; NaT becomes the largest value (never "before")."""
    values = as_datetime64(times)
    # floor division, as numpy's own ns -> s cast does, without a detour through datetime64[s]
    seconds = values.view(np.int64) // 10**9
    seconds[np.isnat(values)] = _NEVER
    return seconds


SMALL = 2048
"""Below this many values, Python dict lookups beat pandas' and Arrow's vectorised paths
(whose fixed cost, 20-200 µs a call, dominates a request's few rows)."""


def entity_codes(
    entities: pd.Series | pd.Index | np.ndarray,
    vocabulary: pd.Index,
    lookup: dict | None = None,
) -> np.ndarray:
    """Position of each entity in ``vocabulary`` as int64; -1 when absent or missing.

    Same answer as ``vocabulary.get_indexer(entities)``.  Entities held as Python objects, or
    a few of any kind, are looked up in a dict (``lookup``, ``{id: position}`` of
    ``vocabulary``, when the caller keeps one; else built when the vocabulary is small):
    pandas' path costs 20-200 µs a call, more when one side is Arrow and the other not.
    Many Arrow-backed strings (pandas' ``str`` dtype) take a hash lookup in Arrow, ~10x
    faster than pandas' object-array path.
    """
    array = getattr(entities, "array", None)
    if isinstance(array, pd.Categorical):  # a batch chunk's coded text: look up its categories
        found = entity_codes(pd.Index(array.categories), vocabulary, lookup)
        codes = array.codes
        return np.where(codes >= 0, found[codes], -1).astype(np.int64, copy=False)
    arrow = isinstance(array, pd.arrays.ArrowStringArray)
    if (lookup is not None or len(vocabulary) <= SMALL) and (len(entities) <= SMALL or not arrow):
        if lookup is None:
            lookup = vocabulary_lookup(vocabulary)
        if len(entities) <= 64:
            values = entities.tolist() if hasattr(entities, "tolist") else list(entities)
            return np.fromiter(
                (lookup.get(v, -1) for v in values), dtype=np.int64, count=len(values)
            )
        # many rows, few distinct ids (a request's events): hash them in C, look up the ids
        codes, distinct = pd.factorize(np.asarray(entities, dtype=object))
        if not len(distinct):  # every id missing
            return np.full(len(codes), -1, dtype=np.int64)
        found = np.fromiter(
            (lookup.get(v, -1) for v in distinct), dtype=np.int64, count=len(distinct)
        )
        return np.where(codes >= 0, found[codes], -1).astype(np.int64, copy=False)
    if arrow and isinstance(vocabulary.array, pd.arrays.ArrowStringArray):
        values = pa.array(array)
        value_set = pa.array(vocabulary.array).cast(values.type)
        found = pc.index_in(values, value_set=value_set)
        return np.asarray(found.fill_null(-1).to_numpy(), dtype=np.int64)
    return vocabulary.get_indexer(pd.Index(entities)).astype(np.int64)


def joint_codes(parts: Sequence[tuple[pd.Series | np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Codes of the values at ``rows`` of each column in ``parts``, on one vocabulary shared
    by every part (equal values, equal codes; -1 where missing): how the same id (a contact)
    is matched across tables.

    Columns coded already on one set of categories (a batch chunk's cut, see
    :meth:`~spm_ml.features.context.DealContext.own_rows`) give their codes as they are;
    others are factorised together."""
    arrays = [getattr(values, "array", None) for values, _ in parts]
    coded = all(isinstance(a, pd.Categorical) for a in arrays)
    if arrays and coded and all(a.dtype is arrays[0].dtype for a in arrays):
        rows = [rows for _, rows in parts]
        return [a.codes[r].astype(np.int64) for a, r in zip(arrays, rows, strict=True)]
    taken = [np.asarray(values, dtype=object)[rows] for values, rows in parts]
    codes, _ = pd.factorize(np.concatenate(taken)) if taken else (np.array([], np.int64), None)
    return np.split(codes.astype(np.int64, copy=False), np.cumsum([len(t) for t in taken])[:-1])


def vocabulary_of(ids: pd.Series) -> pd.Index:
    """The distinct ids of ``ids`` as an index of the same dtype (no type inference)."""
    return pd.Index(ids.unique(), dtype=ids.dtype)


def vocabulary_lookup(vocabulary: pd.Index) -> dict:
    """``{id: position}`` for the ids of ``vocabulary`` (missing values never match)."""
    return {v: i for i, v in enumerate(vocabulary.tolist()) if v is not None and v == v}


@dataclass(frozen=True)
class AsOfQuery:
    """(entity, as_of) pairs resolved once against an index's vocabulary.

    Building one per set of snapshots and reusing it for every count, sum and last avoids
    looking up the same ids and converting the same times dozens of times.
    """

    codes: np.ndarray
    """Each pair's entity position in the vocabulary (-1: unknown entity, never matches)."""
    seconds: np.ndarray
    """Each pair's ``as_of`` in whole seconds since 1970."""

    # The index keys every count, sum and last of this query searches for, computed on
    # first use and kept: a request's query is searched dozens of times.
    @functools.cached_property
    def start_keys(self) -> np.ndarray:
        """Key of each pair's entity at second 0: where its events start."""
        return self.codes << _SHIFT

    @functools.cached_property
    def end_keys(self) -> np.ndarray:
        """Key of each pair's (entity, as_of): its events before as_of end there."""
        return self.start_keys | self.seconds

    @functools.cached_property
    def unknown(self) -> np.ndarray:
        """Pairs whose entity is not in the vocabulary: every count is 0."""
        return self.codes < 0

    @classmethod
    def of(
        cls, entities: pd.Series, as_of: pd.Series, vocabulary: pd.Index, lookup: dict | None = None
    ) -> AsOfQuery:
        return cls(entity_codes(entities, vocabulary, lookup), to_seconds(as_of))


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
        self._build(entity_codes(entities, vocabulary), to_seconds(times), vocabulary)

    @classmethod
    def from_codes(cls, codes: np.ndarray, seconds: np.ndarray, vocabulary: pd.Index) -> EventIndex:
        """An index over events whose entities are already positions in ``vocabulary``."""
        index = object.__new__(cls)
        index._build(np.asarray(codes, dtype=np.int64), np.asarray(seconds), vocabulary)
        return index

    def _build(self, codes: np.ndarray, seconds: np.ndarray, vocabulary: pd.Index) -> None:
        keep = (codes >= 0) & (seconds < _NEVER)
        kept = np.flatnonzero(keep)
        keys = (codes[kept] << _SHIFT) | seconds[kept]
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.rows = kept[order]  # positions in the original frame, in key order
        self.vocabulary = vocabulary

    @property
    def entity_codes(self) -> np.ndarray:
        """Each indexed event's entity (its position in the vocabulary), in index order."""
        return self.keys >> _SHIFT

    @property
    def seconds(self) -> np.ndarray:
        """Each indexed event's time in whole seconds since 1970, in index order."""
        return self.keys & ((1 << _SHIFT) - 1)

    def query(self, entities: pd.Series, as_of: pd.Series) -> AsOfQuery:
        """Resolve ``(entity, as_of)`` pairs once, to pass to many counts, sums and lasts."""
        lookup = self._lookup() if len(entities) <= SMALL else None
        return AsOfQuery.of(entities, as_of, self.vocabulary, lookup)

    def prepare_lookup(self) -> EventIndex:
        """Build the dict small queries use now (a service does before its first request)."""
        self._lookup()
        return self

    def _lookup(self) -> dict:
        """The vocabulary as a dict, built on the first small query and kept: an index built
        once (a track record) answers each request's few ids without pandas' fixed cost."""
        lookup = getattr(self, "_vocabulary_lookup", None)
        if lookup is None:
            lookup = self._vocabulary_lookup = vocabulary_lookup(self.vocabulary)
        return lookup

    def _resolve(self, entities: pd.Series | AsOfQuery, as_of: pd.Series | None) -> AsOfQuery:
        if isinstance(entities, AsOfQuery):
            return entities
        return self.query(entities, as_of)

    def _position(self, codes: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Index of the first event of ``codes`` at or after ``seconds`` (so: count before)."""
        return np.searchsorted(self.keys, (codes << _SHIFT) | seconds, side="left")

    def _start(self, query: AsOfQuery) -> np.ndarray:
        """Index of each pair's entity's first event (the position of (code, second 0))."""
        return np.searchsorted(self.keys, query.start_keys, side="left")

    def _end(self, query: AsOfQuery) -> np.ndarray:
        """Index just past each pair's last event before ``as_of``."""
        return np.searchsorted(self.keys, query.end_keys, side="left")

    def _bounds(self, query: AsOfQuery, window_days: float | None) -> tuple[np.ndarray, ...]:
        hi = self._end(query)
        if window_days is None:
            lo = self._start(query)
        else:
            since = np.maximum(query.seconds - int(window_days * 86_400), 0)
            lo = self._position(query.codes, since)
        return lo, hi

    def count(
        self,
        entities: pd.Series | AsOfQuery,
        as_of: pd.Series | None = None,
        window_days: float | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Events of each entity in ``[as_of - window, as_of)`` (all before ``as_of`` if no window).

        ``entities`` may be an :class:`AsOfQuery` from :meth:`query` (then ``as_of`` is not
        given).  ``mask`` (aligned with the original events) restricts which events count.
        """
        query = self._resolve(entities, as_of)
        lo, hi = self._bounds(query, window_days)
        if mask is None:
            out = hi - lo
        else:
            cumulative = np.zeros(len(self.rows) + 1, dtype=np.int64)
            np.cumsum(np.asarray(mask, dtype=bool)[self.rows], out=cumulative[1:])
            out = cumulative[hi] - cumulative[lo]
        out[query.unknown] = 0
        return out.astype(np.int64, copy=False)

    def sum(
        self,
        entities: pd.Series | AsOfQuery,
        as_of: pd.Series | None = None,
        values: np.ndarray | None = None,
        window_days: float | None = None,
    ) -> np.ndarray:
        """Sum of ``values`` (aligned with the original events) over the same window as count."""
        query = self._resolve(entities, as_of)
        return self.sums(query, values, (window_days,))[0]

    def sums(
        self, query: AsOfQuery, values: np.ndarray | None, windows_days: Sequence[float | None]
    ) -> list[np.ndarray]:
        """:meth:`sum` of the same ``values`` over several windows, summing them once."""
        running = None
        if values is not None and len(self.rows):
            sorted_values = np.nan_to_num(np.asarray(values, dtype=np.float64)[self.rows])
            # Running sums restart for each entity, so a sum depends only on that entity's
            # own earlier events: bit-identical whatever happens later or to other entities
            # (a global cumsum would not be, floating-point addition not being associative).
            running = running_sums(sorted_values, self.keys >> _SHIFT)
        results = []
        for window_days in windows_days:
            lo, hi = self._bounds(query, window_days)
            if values is None:
                out = (hi - lo).astype(np.float64)
            elif running is None:
                out = np.zeros(len(query.codes))
            else:
                first = lo if window_days is None else self._start(query)

                def prefix(position: np.ndarray, first=first) -> np.ndarray:
                    return np.where(position > first, running[np.maximum(position - 1, 0)], 0.0)

                out = prefix(hi) - prefix(lo)
            out[query.unknown] = 0.0
            results.append(out)
        return results

    def last(
        self,
        entities: pd.Series | AsOfQuery,
        as_of: pd.Series | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Original row position of each entity's latest event before ``as_of``, or -1.

        With ``mask``, only events where the mask is true are considered.
        """
        query = self._resolve(entities, as_of)
        if mask is not None:
            return self.subset(mask).last(query)
        codes = query.codes
        hi = self._end(query) - 1
        valid = (hi >= 0) & (codes >= 0)
        found = np.full(len(codes), -1, dtype=np.int64)
        candidate = hi[valid]
        same_entity = (self.keys[candidate] >> _SHIFT) == codes[valid]
        found[valid] = np.where(same_entity, self.rows[candidate], -1)
        return found

    def first(self, query: AsOfQuery, mask: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Each entity's earliest event, whenever it happened: its original row position and
        its time in whole seconds (-1 and a time after every ``as_of`` if it has none).

        Ties in time go to the first in the original order.  The caller compares the time
        with ``as_of``: an entity's first event is the same whether or not later ones exist.
        """
        index = self if mask is None else self.subset(mask)
        codes = query.codes
        lo = index._start(query)
        valid = (codes >= 0) & (lo < len(index.keys))
        valid[valid] = (index.keys[lo[valid]] >> _SHIFT) == codes[valid]
        rows = np.full(len(codes), -1, dtype=np.int64)
        seconds = np.full(len(codes), _NEVER, dtype=np.int64)
        rows[valid] = index.rows[lo[valid]]
        seconds[valid] = index.keys[lo[valid]] & ((1 << _SHIFT) - 1)
        return rows, seconds

    def subset(self, mask: np.ndarray) -> EventIndex:
        """The same index restricted to events where ``mask`` (original order) is true."""
        keep = np.asarray(mask, dtype=bool)[self.rows]
        clone = object.__new__(EventIndex)
        clone.keys = self.keys[keep]
        clone.rows = self.rows[keep]
        clone.vocabulary = self.vocabulary
        clone._vocabulary_lookup = getattr(self, "_vocabulary_lookup", None)
        return clone


_ATTACHED = "_spm_ml_numpy_columns"


def attach_columns(frame: pd.DataFrame, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Keep numpy ``columns`` beside ``frame`` for :func:`column` to read; returns ``frame``.

    Each array must equal ``frame[name].to_numpy()``, and ``frame`` must not change
    afterwards (a frame derived from it carries nothing: pandas never copies the
    attribute).  A request's rows are a few slices of the service's presorted tables: pandas
    pays 10-20 µs for each column read of them, and the blocks of one request read about
    forty, where slicing the presorted arrays costs well under a microsecond.
    """
    object.__setattr__(frame, _ATTACHED, columns)
    return frame


def column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """``frame[name].to_numpy()``: the array :func:`attach_columns` kept, when there is one."""
    array = _attached(frame, name)
    return frame[name].to_numpy() if array is None else array


def values_of(frame: pd.DataFrame, name: str) -> pd.Series | np.ndarray:
    """``frame[name]`` for the helpers here that take a Series or an array: the array
    :func:`attach_columns` kept, else the Series itself (for many rows its Arrow text takes
    the helpers' fast paths, where a whole column converted to numpy would not)."""
    array = _attached(frame, name)
    return frame[name] if array is None else array


def _attached(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    attached = frame.__dict__.get(_ATTACHED)
    return None if attached is None else attached.get(name)


def equal_to(values: pd.Series | np.ndarray, value: object) -> np.ndarray:
    """``values == value`` as a bool array (missing never equal), at the cost that suits the
    size: a numpy comparison for a request's few rows (pandas' costs ~60 µs whatever the
    size), pandas' (Arrow's, for text) for many."""
    if len(values) <= SMALL or isinstance(values, np.ndarray):
        return np.asarray(values, dtype=object) == value
    return (values == value).to_numpy(dtype=bool, na_value=False)


SMALL_RUNNING = 512
"""Up to this many events, running sums are added up in Python: pandas' grouped cumsum
costs ~150 µs a call whatever the size, the loop ~0.1 µs an event."""


def running_sums(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` within each run of equal ``groups`` (sorted), restarting
    at each group, exactly as pandas' grouped ``cumsum`` adds them up.

    pandas adds with Kahan compensation; the small-input loop repeats its steps in the
    same IEEE doubles, so both paths give the same bits (a test holds them to it): a
    request's features are those training computed.
    """
    if len(values) > SMALL_RUNNING:
        return pd.Series(values).groupby(groups, sort=False).cumsum().to_numpy()
    out = np.empty(len(values), dtype=np.float64)
    total = compensation = 0.0
    previous = None
    for i, (value, group) in enumerate(zip(values.tolist(), groups.tolist(), strict=True)):
        if group != previous:
            total = compensation = 0.0
            previous = group
        step = value - compensation
        new_total = total + step
        compensation = (new_total - total) - step
        total = new_total
        out[i] = total
    return out


def known_at_index(
    frame: pd.DataFrame, table: str, column: str, entity: str, vocabulary: pd.Index
) -> EventIndex:
    """``table``'s rows by ``entity``, dated when ``column``'s value became known.

    The contract says when (:meth:`~spm_ml.data.schema.TableSchema.known_at`): a row of
    compensation is dated by its ``period_end``, but its base pay was known from its
    ``period_start``; cutting every column at the table's own date would hide this quarter's
    pay mid-quarter, and cutting every column at the period's start would show the incentive
    paid for a quarter before it ended.  Every read of a dated column goes through here.
    """
    from spm_ml.data.schema import TABLES

    time_column = TABLES[table].known_at(column)
    if time_column is None:
        raise ValueError(f"{table}.{column} is not dated: it has no known-at time to cut on")
    return EventIndex(frame[entity], frame[time_column], vocabulary)


def take(values: pd.Series | np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values[positions]``, missing (NaN/NaT/None) where the position is -1 (nothing found)."""
    found = positions >= 0
    if isinstance(values, pd.Series) and (len(values) <= SMALL or values.dtype.kind in "fiubM"):
        # numbers and times are views; a few text rows convert faster than pandas' iloc
        values = values.to_numpy()
    if isinstance(values, pd.Series):
        # convert only the rows taken: turning a whole Arrow string column into a numpy object
        # array costs far more than the lookup itself
        array = np.asarray(values.iloc[positions[found]])
        out = _missing_like(array, len(positions))
        out[found] = array
        return out
    array = np.asarray(values)
    out = _missing_like(array, len(positions))
    out[found] = array[positions[found]]
    return out


def _missing_like(array: np.ndarray, n: int) -> np.ndarray:
    if array.dtype.kind == "M":
        out = np.full(n, np.datetime64("NaT"), dtype=array.dtype)
    elif array.dtype.kind in "fiub":
        out = np.full(n, np.nan)
    else:
        out = np.full(n, None, dtype=object)
    return out


def as_datetime64(times: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Times as a ``datetime64[ns]`` numpy array (NaT where missing).

    Times already held as datetime64 are only viewed, not re-parsed: ``pd.to_datetime``
    costs ~100 µs even on a handful of values, which a request pays dozens of times.
    """
    values = np.asarray(times)
    if values.dtype.kind == "M":
        return values.astype("datetime64[ns]", copy=False)
    if values.dtype == object and all(v is None for v in values):
        return np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    return np.asarray(pd.to_datetime(times), dtype="datetime64[ns]")


def days_between(later: pd.Series | np.ndarray, earlier: pd.Series | np.ndarray) -> np.ndarray:
    """``later - earlier`` in days as floats (NaN where either is missing)."""
    delta = (as_datetime64(later) - as_datetime64(earlier)).astype("timedelta64[ns]")
    out = delta.astype(np.float64) / NS_PER_DAY
    out[np.isnat(delta)] = np.nan
    return out
