"""A deal's owner and custom fields as they stood at a moment, replayed from ``deal_history``.

The deals table holds each deal as it was at extraction: its ``rep_id`` is the last owner and
its custom columns the last values, possibly set after the moment a feature describes.  When
``deal_history`` records a field's changes (owner changes as ``field = 'rep_id'``, a custom
field under its own name), the value at ``as_of`` is:

- the ``new_value`` of the deal's latest row of that field strictly before ``as_of``;
- before the deal's first row, that row's ``old_value`` (what the field held until then;
  empty if the row has none);
- for a deal without any row of that field, the deals-table value: it never changed.

All time filtering goes through :class:`~spm_ml.features.asof.EventIndex`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_ml.data.schema import OWNER_FIELD
from spm_ml.data.tables import Tables
from spm_ml.features.asof import (
    EventIndex,
    entity_codes,
    equal_to,
    take,
    to_seconds,
    values_of,
    vocabulary_of,
)

NEW_NUMBER, OLD_NUMBER = "new_value_number", "old_value_number"
NEW_TIME, OLD_TIME = "new_value_time", "old_value_time"
PARSED_COLUMNS = (NEW_NUMBER, OLD_NUMBER, NEW_TIME, OLD_TIME)
"""``deal_history`` values parsed once: amounts as numbers, expected close dates as times."""


def with_parsed_values(history: pd.DataFrame) -> pd.DataFrame:
    """``history`` with its amount and close-date values parsed (:data:`PARSED_COLUMNS`).

    History values are text (any field can change); parsing them costs more than every
    other step of a small request, so the service parses its data source once at load and
    cuts the parsed columns out with each deal's rows.  A frame that has them is returned
    as it is.  Unparsable values become NaN/NaT, as does every other field's row.
    """
    if all(c in history.columns for c in PARSED_COLUMNS):
        return history
    fields = history["field"].to_numpy()
    is_amount, is_close = fields == "amount", fields == "expected_close_at"
    parsed = {}
    for column, number, time in (
        ("new_value", NEW_NUMBER, NEW_TIME),
        ("old_value", OLD_NUMBER, OLD_TIME),
    ):
        values = history[column]
        parsed[number] = pd.to_numeric(values.where(is_amount), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        parsed[time] = np.asarray(
            pd.to_datetime(values.where(is_close), errors="coerce"), dtype="datetime64[ns]"
        )
    return history.assign(**parsed)


def replay_field(
    history: pd.DataFrame,
    deal_ids: pd.Series,
    as_of: pd.Series,
    field: str,
    index: EventIndex | None = None,
    *,
    field_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Recorded value of ``field`` for each ``(deal_id, as_of)``, and where one is recorded.

    Returns ``(values, recorded)``: ``values`` (object array of history text) is meaningful
    where ``recorded`` is true, i.e. where the deal has any row of ``field``; elsewhere the
    caller falls back on the deals-table value.  ``index``: ``history`` already indexed by
    (deal, time) over a vocabulary holding ``deal_ids`` (built here if not given).
    ``field_only``: every row of ``history`` is a change of ``field`` (a service's
    pre-filtered moves), so the rows are not filtered again: filtering costs each request
    time in proportion to the organisation's history.
    """
    if index is None:
        index = EventIndex(history["deal_id"], history["changed_at"], vocabulary_of(deal_ids))
    if not field_only:
        index = index.subset(equal_to(values_of(history, "field"), field))
    query = index.query(deal_ids, as_of)
    last = index.last(query)
    values = take(values_of(history, "new_value"), last)
    # the value before the first change: the first row's old value (the index's order:
    # whole seconds, ties in table order)
    first, _ = index.first(query)
    recorded = first >= 0
    before_first = recorded & (last < 0)
    values[before_first] = take(values_of(history, "old_value"), first[before_first])
    return values, recorded


def field_at(
    tables: Tables, snapshots: pd.DataFrame, field: str, index: EventIndex | None = None
) -> np.ndarray:
    """Value of deal column ``field`` at each snapshot's ``as_of`` (object array).

    Replayed from ``deal_history`` where the deal has rows of ``field``, else the deals-table
    value; see the module docstring for the rule.
    """
    values, recorded = replay_field(
        tables.deal_history, snapshots["deal_id"], snapshots["as_of"], field, index
    )
    if "deal_row" in snapshots:  # looked up once by deal_feature_columns
        current = take(values_of(tables.deals, field), np.asarray(snapshots["deal_row"]))
    else:
        current = _deal_column(tables, snapshots["deal_id"], field)
    return np.where(recorded, values, current)


def owner_at(
    tables: Tables, snapshots: pd.DataFrame, index: EventIndex | None = None
) -> np.ndarray:
    """``rep_id`` owning each snapshot's deal at its ``as_of`` (object array; missing if unknown).

    Owner changes are ``deal_history`` rows with ``field = 'rep_id'``; data without them has
    never reassigned a deal, so the deals table's owner holds throughout.
    """
    return field_at(tables, snapshots, OWNER_FIELD, index)


def owner_at_close(tables: Tables) -> np.ndarray:
    """Owner of each deal (deals-table order) when it closed, from changes strictly before
    its close; None for deals still open.  Known from the close on: the deal's track record
    counts for this rep."""
    deals = tables.deals
    out = np.full(len(deals), None, dtype=object)
    ended = deals["closed_at"].notna().to_numpy()
    at_close = pd.DataFrame({"deal_id": deals["deal_id"], "as_of": deals["closed_at"]})[ended]
    out[ended] = owner_at(tables, at_close)
    return out


def owner_events(tables: Tables, at_close: np.ndarray | None = None) -> pd.DataFrame:
    """Every gain and loss of an open deal by a rep: ``rep_id``, ``at``, ``change`` (+1/-1).

    +1 to the owner at creation, -1/+1 to the previous and the new owner at each transfer while
    the deal is open, -1 to the owner at close (``at_close``, from :func:`owner_at_close` if
    not given).  Summed before ``as_of`` per rep, this counts the open deals the rep owns at
    ``as_of``; each event is dated when it happened, so the sum never depends on later rows.
    """
    deals = tables.deals
    created, closed = deals["created_at"], deals["closed_at"]
    at_creation = owner_at(tables, pd.DataFrame({"deal_id": deals["deal_id"], "as_of": created}))
    if at_close is None:
        at_close = owner_at_close(tables)
    history = tables.deal_history
    moves = history[(history["field"] == OWNER_FIELD).to_numpy()]
    # (deal, time) order as the index sees it: whole seconds, ties in table order
    moves = moves.iloc[np.argsort(to_seconds(moves["changed_at"]), kind="stable")]
    deal_codes = entity_codes(moves["deal_id"], pd.Index(deals["deal_id"]))
    moves = moves.iloc[np.argsort(deal_codes, kind="stable")]
    # the owner a transfer takes the deal from: the previous transfer's new owner, or for the
    # deal's first transfer its recorded old owner (as owner_at reads them)
    previous = moves.groupby("deal_id", sort=False)["new_value"].shift()
    first = ~moves["deal_id"].duplicated().to_numpy()
    previous = previous.where(~first, moves["old_value"])
    lookup = deals.set_index("deal_id")
    # compared in the index's whole seconds, so the chain agrees with owner_at exactly
    opened = to_seconds(lookup["created_at"].reindex(moves["deal_id"]))
    ends = to_seconds(lookup["closed_at"].reindex(moves["deal_id"]))
    at = to_seconds(moves["changed_at"])
    while_open = (at >= opened) & (at < ends)
    moves, previous = moves[while_open], previous[while_open]
    ended = closed.notna().to_numpy()
    parts = [
        (at_creation, created.to_numpy(), 1),
        (previous.to_numpy(), moves["changed_at"].to_numpy(), -1),
        (moves["new_value"].to_numpy(), moves["changed_at"].to_numpy(), 1),
        (at_close[ended], closed.to_numpy()[ended], -1),
    ]
    return pd.DataFrame(
        {
            "rep_id": np.concatenate([np.asarray(who, dtype=object) for who, _, _ in parts]),
            "at": np.concatenate(
                [np.asarray(when, dtype="datetime64[ns]") for _, when, _ in parts]
            ),
            "change": np.concatenate([np.full(len(who), sign, np.int64) for who, _, sign in parts]),
        }
    )


def _deal_column(tables: Tables, deal_ids: pd.Series, column: str) -> np.ndarray:
    deals = tables.deals
    position = entity_codes(deal_ids, pd.Index(deals["deal_id"]))
    return take(deals[column], position)
