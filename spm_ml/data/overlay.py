"""A deal described by a client, as the contract tables its features read.

The service scores deals sent as JSON with the same feature code training uses, and that
code reads :class:`Tables`.  A posted deal becomes a small ``Tables`` holding only its own
rows (the deal, its history, activities and emails, typed like the contract's columns); the
organisation-wide part (reps, accounts, track records) comes from the scorer's
:class:`~spm_ml.features.context.DealContext`, so nothing here copies the organisation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from spm_ml.data.parse import empty_frame
from spm_ml.data.schema import TABLES
from spm_ml.data.tables import Tables, concat_rows

Rows = Sequence[dict[str, Any]] | pd.DataFrame

EVENT_TABLES = ("deal_history", "activities", "emails")


@dataclass(frozen=True)
class PostedDeal:
    """A deal as a client described it, its rows to be filed under deal id ``key``.

    Event lists may be dicts (as posted) or frames (rows of the data source, re-keyed).
    """

    deal: dict[str, Any]
    key: str
    history: Rows = ()
    activities: Rows = ()
    emails: Rows = ()


def posted_deal_tables(
    deal: dict[str, Any],
    key: str,
    *,
    history: Rows = (),
    activities: Rows = (),
    emails: Rows = (),
) -> Tables:
    """The posted ``deal`` and its events as tables, its rows filed under deal id ``key``.

    ``key`` is private to the request, so two requests for deals of the same id never mix
    their rows.  The deal is open: ``closed_at`` and ``outcome`` are empty.
    """
    return posted_deals_tables([PostedDeal(deal, key, history, activities, emails)])


def posted_deals_tables(posted: Sequence[PostedDeal]) -> Tables:
    """Many posted deals as one set of tables: one typed frame per table for a whole batch
    (typing a frame costs far more than its rows, so a batch types each table once)."""
    deals, records = [], {name: [] for name in EVENT_TABLES}
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in EVENT_TABLES}
    for p in posted:
        deals.append({**p.deal, "deal_id": p.key, "closed_at": pd.NaT, "outcome": None})
        owner, account = p.deal["rep_id"], p.deal["account_id"]
        for name, rows, defaults, id_column in (
            ("deal_history", p.history, {}, None),
            ("activities", p.activities, {"rep_id": owner, "account_id": account}, "activity_id"),
            ("emails", p.emails, {"rep_id": owner}, "email_id"),
        ):
            if isinstance(rows, pd.DataFrame):
                key = pd.Series(p.key, index=rows.index, dtype=rows["deal_id"].dtype)
                frames[name].append(rows.assign(deal_id=key))
            else:
                records[name].extend(_records(rows, p.key, defaults, id_column))
    events = {
        name: concat_rows([typed(name, records[name]), *frames[name]]) for name in EVENT_TABLES
    }
    return Tables(
        reps=_template("reps"),
        accounts=_template("accounts"),
        deals=typed("deals", deals),
        **events,
        quotas=_template("quotas"),
        compensation=_template("compensation"),
    )


def _records(
    rows: Sequence[dict[str, Any]], key: str, defaults: dict[str, Any], id_column: str | None
) -> list[dict[str, Any]]:
    out = []
    for i, event in enumerate(rows):
        record = {**defaults, **event, "deal_id": key}
        if id_column is not None:
            record.setdefault(id_column, f"{key}:{i}")
        out.append(record)
    return out


@functools.cache
def _empty(table: str) -> pd.DataFrame:
    return empty_frame(TABLES[table])


def _template(table: str) -> pd.DataFrame:
    """The contract's empty frame for ``table``, built once (a fresh object each call)."""
    return _empty(table).copy(deep=False)


def typed(table: str, records: list[dict[str, Any]]) -> pd.DataFrame:
    """``records`` as a frame with the contract's dtypes for ``table`` (extra keys kept).

    Built column by column from plain lists and assembled once: a request's few rows cost
    microseconds per column, where filling a frame column by column costs milliseconds.
    """
    template = _template(table)
    if not records:
        return template
    columns = list(template.columns)
    columns += [k for k in dict.fromkeys(k for r in records for k in r) if k not in template]
    data = {}
    for column in columns:
        values = [r.get(column) for r in records]
        if column in template.columns:
            data[column] = _cast(values, template[column].dtype)
        else:
            data[column] = pd.Series(values)
    return pd.DataFrame(data, columns=columns, copy=False)


def _cast(values: list, dtype) -> pd.Series:
    if str(dtype).startswith("datetime64"):
        parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
        return parsed.dt.tz_localize(None).astype(dtype)
    if str(dtype) in ("str", "string"):
        return pd.Series([None if v is None else str(v) for v in values], dtype=dtype)
    return pd.Series(values, dtype=object).astype(dtype)
