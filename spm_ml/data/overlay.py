"""Adding one deal, as a client describes it, to an organisation's tables.

The service scores deals sent as JSON with the same feature code used in training; that
code reads :class:`Tables`.  So a posted deal is laid over the organisation's context
(reps, accounts, other deals for track records) as if it had been in the CRM all along.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from spm_ml.data.parse import empty_frame
from spm_ml.data.schema import TABLES
from spm_ml.data.tables import Tables


def with_deal(
    tables: Tables,
    deal: dict[str, Any],
    *,
    history: Sequence[dict[str, Any]] = (),
    activities: Sequence[dict[str, Any]] = (),
    emails: Sequence[dict[str, Any]] = (),
) -> Tables:
    """``tables`` plus ``deal`` (replacing a deal of the same id) and its events.

    Without ``history``, the deal's current stage, amount and expected close date are
    recorded as set at ``created_at``: the best a client that sends only the current state
    can tell us.
    """
    deal_id = str(deal["deal_id"])
    row = {**deal, "deal_id": deal_id, "closed_at": pd.NaT, "outcome": None}
    deals = _append(tables.deals[tables.deals["deal_id"] != deal_id], "deals", [row])
    if not history:
        created = pd.Timestamp(deal["created_at"])
        history = [
            {
                "changed_at": created,
                "field": "stage",
                "new_value": deal.get("stage", "prospecting"),
            },
            {"changed_at": created, "field": "amount", "new_value": str(deal["amount"])},
            {
                "changed_at": created,
                "field": "expected_close_at",
                "new_value": str(pd.Timestamp(deal["expected_close_at"]).date()),
            },
        ]
    keep = lambda frame: frame[frame["deal_id"] != deal_id]  # noqa: E731
    new_history = [{**h, "deal_id": deal_id} for h in history]
    new_activities = [
        {
            "activity_id": f"{deal_id}:a{i}",
            "rep_id": deal["rep_id"],
            "deal_id": deal_id,
            "account_id": deal["account_id"],
            **a,
        }
        for i, a in enumerate(activities)
    ]
    new_emails = [
        {"email_id": f"{deal_id}:e{i}", "deal_id": deal_id, "rep_id": deal["rep_id"], **e}
        for i, e in enumerate(emails)
    ]
    return tables.replace(
        deals=deals,
        deal_history=_append(keep(tables.deal_history), "deal_history", new_history),
        activities=_append(keep(tables.activities), "activities", new_activities),
        emails=_append(keep(tables.emails), "emails", new_emails),
    )


def _append(frame: pd.DataFrame, table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return frame
    template = empty_frame(TABLES[table])
    added = pd.DataFrame(rows)
    for column in added.columns:
        if column in template.columns:
            added[column] = _cast(added[column], template[column].dtype)
    for column in frame.columns:
        if column not in added.columns:
            added[column] = pd.Series([None] * len(added), dtype=frame[column].dtype)
    added = added[[c for c in frame.columns] + [c for c in added.columns if c not in frame]]
    return pd.concat([frame, added], ignore_index=True)


def _cast(series: pd.Series, dtype) -> pd.Series:
    if str(dtype).startswith("datetime64"):
        parsed = pd.to_datetime(series, utc=True)
        return parsed.dt.tz_localize(None).astype(dtype)
    if dtype == "str":
        return series.map(lambda v: None if v is None else str(v)).astype(dtype)
    return series.astype(dtype)
