"""The organisation-wide part of deal features, computed once and reused by every snapshot.

A deal's features come from two kinds of data: its own rows (the deal, its history,
activities and emails) and the organisation around it (the owner's team and tenure, the
account's size, the track records of the owner and the account, the custom fields the
model was allowed to read).  :class:`DealContext` holds the second kind, indexed by entity
and time, so that

- training builds it once from the tables and featurises every snapshot against it;
- the service builds it once per model load and featurises a request from that request's
  own rows plus the context: a request costs the same whatever the organisation's size;
- a deal the data source knows can be featurised from its own rows, cut out of presorted
  tables (:meth:`rows_for`) in time proportional to those rows.

Everything in it is dated (track records count deals closed *before* each ``as_of``; owner
changes are replayed at ``as_of``), so one context serves any ``as_of``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables, concat_rows
from spm_ml.features.asof import (
    SMALL,
    EventIndex,
    attach_columns,
    entity_codes,
    take,
    vocabulary_lookup,
)
from spm_ml.features.custom_fields import CustomField, screen_custom_fields
from spm_ml.features.deal_fields import (
    owner_at_close,
    owner_events,
    with_parsed_values,
)
from spm_ml.features.email_signals import SENTIMENT_COLUMNS
from spm_ml.features.reps import team_at, team_moves

PER_DEAL_TABLES = ("deal_history", "activities", "emails")
"""Tables whose rows belong to one deal (``deal_id``) and are cut out per request."""

CUT_COLUMNS = {
    "activities": ("deal_id", "occurred_at", "type", "contact_id"),
    "emails": ("deal_id", "sent_at", "direction", "contact_id", *SENTIMENT_COLUMNS),
}
"""The columns of the event tables that deal features read: the only ones the row index
keeps (ids of events, reps and accounts, never read per deal, would double its memory).
Deals and history keep every column (custom fields, replayed values)."""


@dataclass(frozen=True)
class TrackRecord:
    """Closed deals and open-deal ownership by entity and time: counts before any ``as_of``."""

    closed_by_rep: EventIndex
    won_by_rep: EventIndex
    closed_by_account: EventIndex
    won_by_account: EventIndex
    closed_overall: EventIndex
    won_overall: EventIndex
    gained_by_rep: EventIndex
    lost_by_rep: EventIndex

    @classmethod
    def build(cls, tables: Tables) -> TrackRecord:
        deals = tables.deals
        closer = owner_at_close(tables)
        closed_at = deals["closed_at"]
        closed = closed_at.notna().to_numpy()
        won = closed & (deals["outcome"] == "won").fillna(False).to_numpy()
        reps = pd.Index(
            pd.unique(np.concatenate([tables.reps["rep_id"].to_numpy(), _known(closer)]))
        )
        accounts = pd.Index(deals["account_id"].unique())
        by_rep = EventIndex(pd.Series(closer, dtype="object"), closed_at, reps)
        by_account = EventIndex(deals["account_id"], closed_at, accounts)
        overall = EventIndex(pd.Series("*", index=deals.index), closed_at, pd.Index(["*"]))
        events = owner_events(tables, closer)
        held = EventIndex(events["rep_id"], events["at"], reps)  # same vocabulary as by_rep
        change = events["change"].to_numpy()
        return cls(
            closed_by_rep=by_rep.subset(closed),
            won_by_rep=by_rep.subset(won),
            closed_by_account=by_account.subset(closed),
            won_by_account=by_account.subset(won),
            closed_overall=overall.subset(closed),
            won_overall=overall.subset(won),
            gained_by_rep=held.subset(change > 0),
            lost_by_rep=held.subset(change < 0),
        )


class Keyed:
    """A table's rows by id, as numpy columns: a few ids are looked up in microseconds.

    pandas' ``reindex`` costs ~0.2 ms per call whatever the number of ids; a request looks
    up its deals' reps and accounts several times.  The id-to-row dict is built on the
    first small lookup and kept.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.index = frame.index
        self.columns = {c: _plain_column(frame[c]) for c in frame.columns}
        self._lookup: dict | None = None

    def positions(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        """Row of each id (-1 where unknown or missing)."""
        if len(ids) <= SMALL and self._lookup is None:
            self._lookup = vocabulary_lookup(self.index)
        return entity_codes(ids, self.index, self._lookup if len(ids) <= SMALL else None)

    def take(self, column: str, positions: np.ndarray) -> np.ndarray:
        """``column`` at ``positions`` (missing where -1)."""
        return take(self.columns[column], positions)


@dataclass(frozen=True)
class DealContext:
    """See the module docstring.  Build it with :meth:`build`; it never changes after."""

    tables: Tables
    reps: pd.DataFrame
    """Reps by ``rep_id`` (team, hire date)."""
    accounts: pd.DataFrame
    """Accounts by ``account_id``."""
    track_record: TrackRecord
    custom_fields: tuple[CustomField, ...]
    """The opted-in custom fields that passed the leak screen, resolved once."""
    source_history: pd.DataFrame | None = dataclasses.field(default=None, repr=False)
    """The ``deal_history`` frame :attr:`tables` holds parsed (see :meth:`parsed_history`)."""

    @classmethod
    def build(
        cls,
        tables: Tables,
        config=None,
        *,
        custom_fields: Sequence[CustomField] | None = None,
    ) -> DealContext:
        """Index ``tables`` once.  ``custom_fields`` already resolved (stored with a model)
        skip the screen; else the config's names are screened here."""
        if custom_fields is None:
            names = getattr(config, "custom_fields", ()) or ()
            custom_fields = screen_custom_fields(tables, names)
        # history values parsed once here, and cut out with each deal's rows by rows_for
        source = tables.deal_history
        tables = tables.replace(deal_history=with_parsed_values(source))
        return cls(
            tables=tables,
            reps=tables.reps.set_index("rep_id"),
            accounts=tables.accounts.set_index("account_id"),
            track_record=TrackRecord.build(tables),
            custom_fields=tuple(custom_fields),
            source_history=source,
        )

    def parsed_history(self, history: pd.DataFrame) -> pd.DataFrame:
        """``history`` with its values parsed: the context's own copy when ``history`` is the
        frame it was built from (training featurises the tables it indexed), else parsed now."""
        if history is self.source_history:
            return self.tables.deal_history
        return with_parsed_values(history)

    @functools.cached_property
    def _rows(self) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, tuple[int, int]]]]:
        """Each per-deal table (and deals) sorted by ``deal_id``, and each deal's
        ``[start, end)`` rows in it.

        The sorted copies hold text as Python objects in consolidated blocks, so cutting a
        few deals out is one ``take`` per table (tens of microseconds), where Arrow-backed
        columns pay per column and per chunk.  Built on first use: only request scoring cuts
        deals out (the service builds it at start-up with :meth:`index_rows`); training and
        batch scoring never pay for it.
        """
        frames, spans = {}, {}
        for name in (*PER_DEAL_TABLES, "deals"):
            frame = getattr(self.tables, name)
            if name in CUT_COLUMNS:
                frame = frame[[c for c in CUT_COLUMNS[name] if c in frame.columns]]
            ids = frame["deal_id"].to_numpy(dtype=object, na_value=None)
            order = np.argsort(np.where(ids == None, "", ids).astype(str), kind="stable")  # noqa: E711
            ids = ids[order]
            frames[name] = (
                pd.DataFrame({c: _plain_column(frame[c])[order] for c in frame.columns}, copy=False)
                .astype({c: object for c in frame.columns if _is_text(frame[c])})
                .copy()  # consolidated: a cut takes one block per dtype, not one per column
            )
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else []
            ends = [*starts[1:], len(ids)]
            spans[name] = {ids[s]: (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
        return frames, spans

    @functools.cached_property
    def _own_rows(self) -> dict[str, tuple[dict[str, np.ndarray | Coded | str], np.ndarray]]:
        """The deals table and each per-deal table as numpy columns ordered by deal (the
        deal's position in ``tables.deals``; table order within a deal), and where each
        deal's rows start (``len(deals) + 1`` bounds).  Rows of no known deal (account-level
        activities) are left out: no deal's features read them.

        Text is held as Python objects, one per distinct value, except in the event tables'
        columns of :data:`CODED_COLUMNS`, held as codes (:class:`Coded`, contacts on one
        vocabulary for activities and emails) and the per-deal tables' ``deal_id``, not held
        at all (:data:`BY_DEAL`: the rows' order says whose they are); the event tables keep
        only the columns deal features read
        (:data:`CUT_COLUMNS`).  A batch chunk's deals are then read as a few ordered slices
        (:meth:`own_rows`) instead of Arrow gathers scattered over tens of millions of
        rows, and their text is matched as integers.  Built on first use (the batch's first
        chunk); the service and training never build it."""
        vocabulary = pd.Index(self.tables.deals["deal_id"])
        coded = _coded_columns(self.tables)
        out = {}
        for name in ("deals", *PER_DEAL_TABLES):
            frame = getattr(self.tables, name)
            if name in CUT_COLUMNS:
                frame = frame[[c for c in CUT_COLUMNS[name] if c in frame.columns]]
            codes = entity_codes(frame["deal_id"], vocabulary)
            order = np.argsort(codes, kind="stable")
            order = order[np.searchsorted(codes[order], 0) :]  # rows of known deals
            codes = codes[order]
            bounds = np.searchsorted(codes, np.arange(len(vocabulary) + 1), side="left")
            columns: dict[str, np.ndarray | Coded | str] = {}
            for c in frame.columns:
                if c == "deal_id":
                    columns[c] = self._id_objects[codes] if name == "deals" else BY_DEAL
                elif (name, c) in coded:
                    columns[c] = Coded(coded[name, c].codes[order], coded[name, c].dtype)
                else:
                    columns[c] = _ordered(frame[c], order)
            out[name] = (columns, bounds)
        return out

    @functools.cached_property
    def _id_objects(self) -> np.ndarray:
        """``tables.deals``' ids as Python objects, in table order."""
        return _plain_column(self.tables.deals["deal_id"])

    @functools.cached_property
    def _deal_index(self) -> pd.Index:
        """``tables.deals``' ids as an object index: pandas builds its hash table on the
        first lookup and keeps it, where each lookup against the Arrow column would hash
        the organisation's million ids again."""
        return pd.Index(self.tables.deals["deal_id"].to_numpy(dtype=object), dtype=object)

    def deal_positions(self, deal_ids: pd.Series | np.ndarray) -> np.ndarray | None:
        """Each id's position in ``tables.deals`` (-1: unknown); ``None`` when the deals
        table's ids are not unique (then positions are not defined)."""
        index = self._deal_index
        if not index.is_unique:
            return None
        ids = pd.Index(np.asarray(deal_ids, dtype=object), dtype=object)
        return index.get_indexer(ids).astype(np.int64, copy=False)

    def own_rows(self, deal_positions: np.ndarray) -> Tables:
        """:attr:`tables` cut to the rows of the deals at ``deal_positions`` (positions in
        ``tables.deals``): the deals, their history, activities and emails (the columns deal
        features read), each deal's rows in table order.

        Deal features read nothing else of these tables and nothing of one deal's rows
        depends on another deal's or on how deals interleave, so features of those deals
        built on the cut tables are the features built on the whole organisation, bit for
        bit (``tests/features/test_own_rows.py``); their cost follows the deals' own rows,
        not the organisation's."""
        positions = np.unique(np.asarray(deal_positions, dtype=np.int64))
        cut = {}
        for name, (columns, bounds) in self._own_rows.items():
            starts, lengths = bounds[positions], bounds[positions + 1] - bounds[positions]
            rows = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
            rows += np.arange(len(rows))
            frame = pd.DataFrame(
                {c: self._cut_column(v, rows, positions, lengths) for c, v in columns.items()},
                copy=False,
            )
            frame.attrs = dict(getattr(self.tables, name).attrs)
            cut[name] = frame
        return self.tables.replace(**cut)

    def _cut_column(
        self,
        values: np.ndarray | Coded | str,
        rows: np.ndarray,
        positions: np.ndarray,
        lengths: np.ndarray,
    ) -> pd.Series:
        """One column of :meth:`own_rows`' cut: coded text as a categorical; ``deal_id``
        as a categorical over the cut's own deals (its codes say which without hashing)."""
        if values is BY_DEAL:
            local = np.repeat(np.arange(len(positions)), lengths)
            categories = pd.Index(self._id_objects[positions], dtype=object)
            return pd.Series(pd.Categorical.from_codes(local, categories=categories))
        if isinstance(values, Coded):
            return pd.Series(
                pd.Categorical.from_codes(values.codes[rows], dtype=values.dtype, validate=False)
            )
        return _series(values[rows])

    def over(self, tables: Tables) -> DealContext:
        """This organisation's context over ``tables`` (a chunk's own rows, :meth:`own_rows`,
        with the organisation's small tables): the indexes of the whole organisation (track
        records, reps, accounts, screened custom fields) kept, nothing built again from
        ``tables`` but what its own deals need.  What a worker that receives one chunk at a
        time scores with: features of the chunk's deals are those of the whole context."""
        return dataclasses.replace(self, tables=tables, source_history=None)

    def without_deal_rows(self) -> DealContext:
        """:meth:`over` empty per-deal tables: the part of the context a worker keeps (a
        fraction of the whole, which holds every deal's events)."""
        empty = {name: getattr(self.tables, name).iloc[:0] for name in ("deals", *PER_DEAL_TABLES)}
        return self.over(self.tables.replace(**empty))

    def holds(self, tables: Tables) -> bool:
        """Whether ``tables``' deals and per-deal tables are this context's own frames (so
        :meth:`own_rows` may cut them)."""
        return all(
            getattr(tables, name) is getattr(self.tables, name)
            for name in ("deals", *PER_DEAL_TABLES)
        )

    @functools.cached_property
    def rep_rows(self) -> Keyed:
        """:attr:`reps` as numpy columns, for fast lookups of a few reps."""
        return Keyed(self.reps)

    @functools.cached_property
    def account_rows(self) -> Keyed:
        """:attr:`accounts` as numpy columns, for fast lookups of a few accounts."""
        return Keyed(self.accounts)

    @functools.cached_property
    def _rep_team_history(self) -> tuple[pd.DataFrame, EventIndex]:
        """``rep_history``'s team moves, indexed by rep and time once."""
        moves, index = team_moves(self.tables.rep_history, self.reps.index)
        # the values as Python objects once: a request then takes its rows of them, where
        # an Arrow text column would be converted whole on every request (its cost grew
        # with the organisation)
        moves = moves.astype({"old_value": object, "new_value": object})
        return moves, index.prepare_lookup()

    def rep_team_at(self, reps: np.ndarray, as_of: np.ndarray) -> np.ndarray:
        """Each rep's team at ``as_of``: replayed from ``rep_history`` (reps move between
        teams), else the reps table's team, which is the team at extraction."""
        current = self.rep_rows.take("team", self.rep_rows.positions(reps))
        return team_at(self.tables, reps, as_of, current, self._rep_team_history)

    def index_rows(self) -> DealContext:
        """Build the per-deal row index and the id lookups now (a service does, before its
        first request)."""
        _ = self._rows, self._row_arrays, self._deal_times, self._rep_team_history
        for keyed in (self.rep_rows, self.account_rows):
            keyed.positions(keyed.index[:1])
        for field in dataclasses.fields(self.track_record):
            getattr(self.track_record, field.name).prepare_lookup()
        return self

    def knows(self, deal_id: str) -> bool:
        """Whether the data source holds deal ``deal_id``."""
        return deal_id in self._rows[1]["deals"]

    def created_and_closed(self, deal_id: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """When a known deal was created and closed (NaT while open)."""
        created, closed = self._deal_times[deal_id]
        return pd.Timestamp(created), pd.Timestamp(closed)

    @functools.cached_property
    def _deal_times(self) -> dict[str, tuple[np.datetime64, np.datetime64]]:
        deals = self.tables.deals
        return dict(
            zip(
                deals["deal_id"].tolist(),
                zip(
                    deals["created_at"].to_numpy(dtype="datetime64[ns]"),
                    deals["closed_at"].to_numpy(dtype="datetime64[ns]"),
                    strict=True,
                ),
                strict=True,
            )
        )

    def rows_for(self, deal_ids: Sequence[str], keys: Sequence[str] | None = None) -> Tables:
        """The deals' own rows (deal, history, activities, emails), cut from presorted tables.

        With ``keys``, each deal's rows are filed under its key instead of its id (the
        private key of a posted deal inside a batch).  Without, each deal is cut out once
        however often it is named.
        """
        if keys is None:
            deal_ids = list(dict.fromkeys(deal_ids))
        frames, all_spans = self._rows
        cut = {}
        for name in ("deals", *PER_DEAL_TABLES):
            spans, arrays = all_spans[name], self._row_arrays[name]
            found = [
                (spans[d], k) for d, k in zip(deal_ids, keys or deal_ids, strict=True) if d in spans
            ]
            if len(found) == 1:  # one deal: its rows are one slice, a view (no copy)
                (start, end), _ = found[0]
                rows = frames[name].iloc[start:end].reset_index(drop=True)
                columns = {c: a[start:end] for c, a in arrays.items()}
            else:
                take = (
                    np.concatenate([np.arange(s, e) for (s, e), _ in found])
                    if found
                    else np.zeros(0, dtype=np.int64)
                )
                rows = frames[name].take(take)
                rows.index = pd.RangeIndex(len(rows))
                columns = {c: a[take] for c, a in arrays.items()}
            if keys is not None:
                columns["deal_id"] = np.repeat(
                    np.asarray([k for _, k in found], dtype=object), [e - s for (s, e), _ in found]
                )
                rows["deal_id"] = columns["deal_id"]
            cut[name] = attach_columns(rows, columns)
        return self.tables.replace(**cut)

    @functools.cached_property
    def _row_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """:attr:`_rows`' frames as numpy columns (``frame[c].to_numpy()``): a request's rows
        are cut from them as slices and attached to its frames (:func:`attach_columns`)."""
        frames, _ = self._rows
        return {
            name: {c: frame[c].to_numpy() for c in frame.columns} for name, frame in frames.items()
        }

    def combine(self, parts: Sequence[Tables]) -> Tables:
        """Several requests' own rows as one set of tables (for one vectorised call).

        Each part's history has its values parsed (a posted deal's are parsed here), so the
        combined history never mixes parsed and unparsed rows.
        """
        parts = [p.replace(deal_history=with_parsed_values(p.deal_history)) for p in parts]
        if len(parts) == 1:
            return parts[0]
        frames = {
            name: concat_rows([getattr(p, name) for p in parts])
            for name in ("deals", *PER_DEAL_TABLES)
        }
        return parts[0].replace(**frames)


CODED_COLUMNS = {
    "deal_history": ("field",),
    "activities": ("type", "contact_id"),
    "emails": ("direction", "contact_id"),
}
"""Text columns of the per-deal tables that :meth:`DealContext.own_rows` cuts as codes:
each is compared with a value or matched across tables for every chunk (a few distinct
values, or contacts), which costs a hash or a string comparison per row as objects."""


@dataclass(frozen=True)
class Coded:
    """A text column as codes on the categories of ``dtype`` (-1: missing)."""

    codes: np.ndarray
    dtype: pd.CategoricalDtype


BY_DEAL = "by deal"
"""What the presorted per-deal tables hold for ``deal_id``: nothing, the rows being ordered
by deal; a cut names its deals' ids from their positions (:meth:`DealContext.own_rows`)."""


def _coded_columns(tables: Tables) -> dict[tuple[str, str], Coded]:
    """The columns of :data:`CODED_COLUMNS` as codes, in table order: one vocabulary per
    column, one for ``contact_id`` in both tables (a contact is matched across them)."""
    factorized = []
    for name, names in CODED_COLUMNS.items():
        frame = getattr(tables, name)
        for c in (c for c in names if c in frame.columns):
            codes, values = pd.factorize(frame[c])
            vocabulary = c if c == "contact_id" else f"{name}.{c}"
            factorized.append((name, c, vocabulary, codes, np.asarray(values, dtype=object)))
    dtypes = {}
    for vocabulary in {v for _, _, v, _, _ in factorized}:
        parts = [values for _, _, v, _, values in factorized if v == vocabulary]
        dtypes[vocabulary] = pd.CategoricalDtype(pd.Index(pd.unique(np.concatenate(parts))))
    out = {}
    for name, c, vocabulary, codes, values in factorized:
        dtype = dtypes[vocabulary]
        recode = np.append(dtype.categories.get_indexer(values), -1).astype(np.int32)
        out[name, c] = Coded(recode[codes], dtype)  # code -1 (missing) reads the last: -1
    return out


def _known(values: np.ndarray) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and v == v], dtype=object)


def _series(values: np.ndarray) -> pd.Series:
    """A column as a Series of the array's own dtype: text stays Python objects (pandas
    would otherwise spend more converting it to Arrow strings than the features take)."""
    dtype = object if isinstance(values, np.ndarray) and values.dtype.kind == "O" else None
    return pd.Series(values, dtype=dtype, copy=False)


def _ordered(values: pd.Series, order: np.ndarray) -> np.ndarray:
    """``values`` at positions ``order`` as :func:`_plain_column` holds them (an extension
    array other than text, such as nullable integers, stays one)."""
    if _is_text(values) or isinstance(values.dtype, np.dtype):
        return _plain_column(values)[order]
    return values.array.take(order)


def _is_text(values: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(values.dtype) or values.dtype == object


def _plain_column(values: pd.Series) -> np.ndarray:
    """A column as numpy: text as objects (missing as NaN, as pandas gives it), times as
    datetime64, numbers as they are."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.to_numpy(dtype="datetime64[ns]")
    if _is_text(values):
        # one Python object per distinct value (an activity type, a stage...), not per row:
        # millions of rows would otherwise hold millions of copies of a few strings
        codes, distinct = pd.factorize(values)
        return np.append(np.asarray(distinct, dtype=object), np.nan)[codes]
    return values.to_numpy()
