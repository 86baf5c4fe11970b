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

import numpy as np
import pandas as pd

from spm_ml.data.parse import empty_frame
from spm_ml.data.schema import TABLES
from spm_ml.data.tables import Tables, concat_rows
from spm_ml.errors import SpmMlError

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


@dataclass(frozen=True)
class PostedRep:
    """A rep as a client described it: the rep's row and the rep's rows of the other tables
    (plain dicts, contract column names; ``rep_id`` implied where a row leaves it out)."""

    rep: dict[str, Any]
    where: str = "rep"
    """Where the rep is in the request, for error messages (``reps.3.rep``)."""
    quotas: Sequence[dict[str, Any]] = ()
    compensation: Sequence[dict[str, Any]] = ()
    rep_history: Sequence[dict[str, Any]] = ()
    deals: Sequence[dict[str, Any]] = ()
    deal_history: Sequence[dict[str, Any]] = ()
    activities: Sequence[dict[str, Any]] = ()
    emails: Sequence[dict[str, Any]] = ()


class PostedRepError(SpmMlError, ValueError):
    """A posted rep's rows do not fit the organisation (a field path says where)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def with_posted_reps(tables: Tables, posted: Sequence[PostedRep]) -> Tables:
    """``tables`` with each posted rep's rows in place of the rep's rows of the data source.

    A rep's rows are: its ``reps`` row, its quota and pay periods and manager or team
    changes, the deals it owns now (final owner) with their history and emails, and the
    activities it logged or that were logged on its deals.  A rep the data source does not
    know joins it.  Posted reps must have distinct ids; their managers, accounts and the
    deals they name outside their own must be the organisation's (:class:`PostedRepError`).
    """
    ids = [p.rep["rep_id"] for p in posted]
    if len(set(ids)) != len(ids):
        raise ValueError("posted reps must have distinct ids")
    replaced = set(ids)
    deals = tables.deals
    owned = set(deals.loc[deals["rep_id"].isin(replaced).to_numpy(), "deal_id"])
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in _REP_TABLES}
    source_accounts: dict[str, str] = {}  # filled on first need: one pass, not one per row
    for p in posted:
        rep_id = p.rep["rep_id"]
        check_posted_rep(tables, p)
        rows["reps"].append({"exit_date": None, "exit_reason": None, **p.rep})  # custom: flat
        for name in ("quotas", "compensation", "rep_history"):
            rows[name] += [{**r, "rep_id": rep_id} for r in getattr(p, name)]
        rows["deals"] += [{**d, "rep_id": rep_id} for d in p.deals]
        account_of = {d["deal_id"]: d["account_id"] for d in p.deals}
        rows["deal_history"] += list(p.deal_history)
        for j, a in enumerate(p.activities):
            account = a.get("account_id") or account_of.get(a.get("deal_id"))
            if account is None:  # a data-source deal's account
                if not source_accounts:
                    source_accounts.update(zip(deals["deal_id"], deals["account_id"], strict=True))
                account = source_accounts[a["deal_id"]]
            rows["activities"].append(
                {
                    "activity_id": f"\x00{rep_id}:{j}",
                    **a,
                    "rep_id": a.get("rep_id") or rep_id,
                    "account_id": account,
                }
            )
        rows["emails"] += [
            {"email_id": f"\x00{rep_id}:{j}", **e, "rep_id": e.get("rep_id") or rep_id}
            for j, e in enumerate(p.emails)
        ]
    activities = tables.activities
    by_rep = ("reps", "quotas", "compensation", "rep_history")
    dropped = {name: getattr(tables, name)["rep_id"].isin(replaced) for name in by_rep}
    dropped["deals"] = deals["deal_id"].isin(owned)
    dropped["deal_history"] = tables.deal_history["deal_id"].isin(owned)
    dropped["activities"] = activities["rep_id"].isin(replaced) | activities["deal_id"].isin(owned)
    dropped["emails"] = tables.emails["deal_id"].isin(owned)
    merged = {
        name: _in_source_order(getattr(tables, name), ~dropped[name].to_numpy(), rows[name], name)
        for name in _REP_TABLES
    }
    return tables.replace(**merged)


_REP_TABLES = {
    "reps": ["rep_id"],
    "quotas": ["rep_id", "period_start"],
    "compensation": ["rep_id", "period_start"],
    "rep_history": ["rep_id", "changed_at", "field"],
    "deals": ["deal_id"],
    "deal_history": ["deal_id", "changed_at", "field"],
    "activities": ["rep_id", "deal_id", "occurred_at", "type"],
    "emails": ["deal_id", "sent_at", "direction"],
}
"""The tables a rep's rows are replaced in, and the columns that find a posted row's place."""


def _in_source_order(
    source: pd.DataFrame, keep: np.ndarray, records: list[dict[str, Any]], table: str
) -> pd.DataFrame:
    """``source``'s rows where ``keep``, and ``records`` (typed like ``source``), in
    ``source``'s order: a record that matches a dropped source row by the table's key (and
    rank among equal keys) takes its place, a new one goes last.  Order matters: the Monte
    Carlo draws follow the rows, so a rep posted as the data source holds it scores exactly
    as the rep by id."""
    kept = source[keep]
    if not records:
        return kept
    added = _typed_like(table, records, source)
    key = _REP_TABLES[table]
    replaced = source[~keep]
    place = replaced[key].assign(_rank=replaced.groupby(key, dropna=False).cumcount())
    place["_at"] = np.flatnonzero(~keep).astype(float)
    wanted = added[key].assign(_rank=added.groupby(key, dropna=False).cumcount())
    at = wanted.merge(place, on=[*key, "_rank"], how="left")["_at"].to_numpy()
    at = np.where(np.isnan(at), len(source) + np.arange(len(added)), at)
    merged = pd.concat([kept, added], ignore_index=True)
    position = np.concatenate([np.flatnonzero(keep).astype(float), at])
    return merged.iloc[np.argsort(position, kind="stable")].reset_index(drop=True)


def _typed_like(table: str, records: list[dict[str, Any]], like: pd.DataFrame) -> pd.DataFrame:
    """``records`` typed as the contract says, in ``like``'s columns and dtypes: the
    organisation's extra columns (email scores, custom fields, names) kept, empty where the
    records lack them; columns the organisation lacks (text already scored) left out."""
    frame = typed(table, records)
    for column in like.columns:
        if column not in frame:
            frame[column] = pd.Series([None] * len(frame), dtype=object)
        if frame[column].dtype != like[column].dtype:  # values validated at the boundary
            frame[column] = frame[column].astype(like[column].dtype)
    return frame[list(like.columns)]  # a column the organisation lacks is no model's feature


_REP_CONTRACT = frozenset(
    {"rep_id", "name", "manager_id", "team", "region", "role", "hire_date", "exit_date"}
    | {"exit_reason"}
)
"""A posted rep's own fields; any other key is one of its custom fields."""


def check_posted_rep(tables: Tables, p: PostedRep) -> None:
    """The references a posted rep makes outside its own rows exist in ``tables``' organisation
    (:class:`PostedRepError` naming the field where one does not)."""
    where, rep_id = p.where, p.rep["rep_id"]
    reps = set(tables.reps["rep_id"]) | {rep_id}
    accounts = set(tables.accounts["account_id"])
    deals = tables.deals
    other_deals = set(deals.loc[(deals["rep_id"] != rep_id).to_numpy(), "deal_id"])
    manager = p.rep.get("manager_id")
    if manager is not None and (manager not in reps or manager == p.rep["rep_id"]):
        raise PostedRepError(
            f"manager {manager!r} is not a rep of the data source", f"{where}.manager_id"
        )
    for name in p.rep:
        if name not in tables.reps.columns and name not in _REP_CONTRACT:
            raise PostedRepError(
                f"{name!r} is not a column of the data source's reps table: the models read "
                "only the organisation's columns (leave it out)",
                f"{where}.custom_fields.{name}",
            )
    for j, d in enumerate(p.deals):
        for name in d:
            if name not in deals.columns:
                raise PostedRepError(
                    f"{name!r} is not a column of the data source's deals table: the models "
                    "read only the organisation's custom fields (leave it out)",
                    f"{where}.deals.{j}.{name}",
                )
        if d["deal_id"] in other_deals:
            raise PostedRepError(
                f"deal {d['deal_id']!r} is another rep's deal in the data source",
                f"{where}.deals.{j}.deal_id",
            )
        if d["account_id"] not in accounts:
            raise PostedRepError(
                f"account {d['account_id']!r} is not an account of the data source",
                f"{where}.deals.{j}.account_id",
            )
    posted = {d["deal_id"] for d in p.deals}
    for j, a in enumerate(p.activities):
        deal, account, by = a.get("deal_id"), a.get("account_id"), a.get("rep_id")
        if deal is not None and deal not in posted and deal not in other_deals:
            raise PostedRepError(
                f"deal {deal!r} is neither a posted deal nor one of the data source",
                f"{where}.activities.{j}.deal_id",
            )
        if account is not None and account not in accounts:
            raise PostedRepError(
                f"account {account!r} is not an account of the data source",
                f"{where}.activities.{j}.account_id",
            )
        if by is not None and by not in reps:
            raise PostedRepError(
                f"rep {by!r} is not a rep of the data source", f"{where}.activities.{j}.rep_id"
            )
    for j, e in enumerate(p.emails):
        if e.get("rep_id") is not None and e["rep_id"] not in reps:
            raise PostedRepError(
                f"rep {e['rep_id']!r} is not a rep of the data source", f"{where}.emails.{j}.rep_id"
            )


def rep_record(tables: Tables, rep_id: str) -> dict[str, Any]:
    """Rep ``rep_id``'s rows of ``tables`` as a posted rep (JSON-ready, the API's ``rep``):
    what :func:`with_posted_reps` puts back.  For clients building requests from their own
    copy of the contract tables, and for the tests that post a rep and compare."""
    rep = tables.reps[tables.reps["rep_id"] == rep_id]
    if rep.empty:
        raise KeyError(rep_id)
    deals = tables.deals[tables.deals["rep_id"] == rep_id]
    owned = set(deals["deal_id"])
    activities = tables.activities
    logged = activities[activities["rep_id"].eq(rep_id) | activities["deal_id"].isin(owned)]
    emails = tables.emails[tables.emails["deal_id"].isin(owned)]
    scores = [c for c in ("p_negative", "p_neutral", "p_positive") if c in emails]
    contact = ["contact_id"] if "contact_id" in emails else []

    def rows(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
        return [_plain(r) for r in frame[columns].to_dict("records")]

    contract = ["rep_id", "manager_id", "team", "region", "role", "hire_date"]
    contract += ["exit_date", "exit_reason"]
    record = _plain(rep.iloc[0][contract])
    if "name" in rep:
        record["name"] = rep.iloc[0]["name"]
    others = [c for c in rep.columns if c not in {*contract, "name"}]
    if others:
        record["custom_fields"] = _plain(rep.iloc[0][others])
    period = ["period_start", "period_end"]
    pay = [*period, "base_pay", "target_incentive", "paid_incentive"]
    deal_columns = ["deal_id", "account_id", "product", "amount", "created_at"]
    deal_columns += ["expected_close_at", "stage", "closed_at", "outcome"]
    deal_columns += [c for c in deals.columns if c not in deal_columns and c != "rep_id"]
    change = ["changed_at", "field", "old_value", "new_value"]
    activity = ["type", "occurred_at", "deal_id", "rep_id", "account_id"]
    activity += [c for c in ("contact_id", "duration_min") if c in activities]
    rep_changes = tables.rep_history[tables.rep_history["rep_id"] == rep_id]
    deal_changes = tables.deal_history[tables.deal_history["deal_id"].isin(owned)]
    record.update(
        quotas=rows(tables.quotas[tables.quotas["rep_id"] == rep_id], [*period, "quota_amount"]),
        compensation=rows(tables.compensation[tables.compensation["rep_id"] == rep_id], pay),
        history=rows(rep_changes, change),
        deals=rows(deals, deal_columns),
        deal_history=rows(deal_changes, ["deal_id", *change]),
        activities=rows(logged, activity),
        emails=rows(emails, ["deal_id", "rep_id", "direction", "sent_at", *contact, *scores]),
    )
    return record


def _plain(row) -> dict[str, Any]:
    """A row as JSON values: ISO datetimes, ``None`` for missing, no ``None`` entries."""
    out = {}
    for key, value in dict(row).items():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        out[key] = value.isoformat() if isinstance(value, pd.Timestamp) else _scalar(value)
    return out


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
