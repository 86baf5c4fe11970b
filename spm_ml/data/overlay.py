"""A deal described by a client, as the contract tables its features read.

The service scores deals sent as JSON with the same feature code training uses, and that
code reads :class:`Tables`.  A posted deal becomes a small ``Tables`` holding only its own
rows (the deal, its history, activities and emails, typed like the contract's columns); the
organisation-wide part (reps, accounts, track records) comes from the scorer's
:class:`~spm_ml.features.context.DealContext`, so nothing here copies the organisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from spm_ml.data.parse import empty_frame
from spm_ml.data.schema import TABLES
from spm_ml.data.tables import Tables

Rows = Sequence[dict[str, Any]] | pd.DataFrame


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
    their rows.  The deal is open: ``closed_at`` and ``outcome`` are empty.  Event lists may
    be dicts (as posted) or frames (rows of the data source, re-keyed).
    """
    row = {**deal, "deal_id": key, "closed_at": pd.NaT, "outcome": None}
    owner = deal["rep_id"]
    return Tables(
        reps=empty_frame(TABLES["reps"]),
        accounts=empty_frame(TABLES["accounts"]),
        deals=typed("deals", [row]),
        deal_history=_rekeyed("deal_history", history, {"deal_id": key}),
        activities=_rekeyed(
            "activities",
            activities,
            {"deal_id": key, "rep_id": owner, "account_id": deal["account_id"]},
            id_column="activity_id",
            key=key,
        ),
        emails=_rekeyed(
            "emails", emails, {"deal_id": key, "rep_id": owner}, id_column="email_id", key=key
        ),
        quotas=empty_frame(TABLES["quotas"]),
        compensation=empty_frame(TABLES["compensation"]),
    )


def _rekeyed(
    table: str,
    rows: Rows,
    defaults: dict[str, Any],
    *,
    id_column: str | None = None,
    key: str = "",
) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows.assign(deal_id=pd.Series(key, index=rows.index, dtype=rows["deal_id"].dtype))
    records = []
    for i, event in enumerate(rows):
        record = {**defaults, **event, "deal_id": defaults["deal_id"]}
        if id_column is not None:
            record.setdefault(id_column, f"{key}:{i}")
        records.append(record)
    return typed(table, records)


def typed(table: str, records: list[dict[str, Any]]) -> pd.DataFrame:
    """``records`` as a frame with the contract's dtypes for ``table`` (extra keys kept)."""
    template = empty_frame(TABLES[table])
    if not records:
        return template
    frame = pd.DataFrame.from_records(records)
    for column in template.columns:
        dtype = template[column].dtype
        if column not in frame.columns:
            frame[column] = pd.Series([None] * len(frame), dtype=dtype)
        else:
            frame[column] = _cast(frame[column], dtype)
    extras = [c for c in frame.columns if c not in template.columns]
    return frame[[*template.columns, *extras]]


def _cast(series: pd.Series, dtype) -> pd.Series:
    if str(dtype).startswith("datetime64"):
        parsed = pd.to_datetime(series, utc=True)
        return parsed.dt.tz_localize(None).astype(dtype)
    if str(dtype) in ("str", "string"):
        return series.map(lambda v: None if v is None else str(v)).astype(dtype)
    return series.astype(dtype)
