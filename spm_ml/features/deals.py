"""Deal features as of a moment: what a sales manager could have known about a deal then.

Entry point: :func:`deal_features` ``(tables, snapshots) -> DataFrame``, one row per
snapshot ``(deal_id, as_of)``.  Each block below is a small pure function over the same
snapshots; all time filtering goes through :class:`~spm_ml.features.asof.EventIndex`, so an
event dated at or after a snapshot's ``as_of`` can never reach its row.

What is deliberately *not* used: the deals table's ``stage``, ``amount``,
``expected_close_at``, ``closed_at``, ``outcome`` and ``rep_id`` describe the deal at
extraction time, i.e. possibly after ``as_of``.  The state at ``as_of`` is replayed from
``deal_history``, the owner included (:func:`~spm_ml.features.deal_fields.owner_at`); custom
fields are used only when the config names them, after a leak screen
(:mod:`spm_ml.features.custom_fields`).  The owner's team is replayed at ``as_of`` from
``rep_history``; hire dates and account attributes (industry, region, size) are fixed facts
in the contract; exit dates are never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spm_ml.data.schema import ACTIVITY_TYPES, DEAL_STAGES
from spm_ml.data.tables import Tables
from spm_ml.features.asof import (
    AsOfQuery,
    EventIndex,
    as_datetime64,
    column,
    days_between,
    entity_codes,
    equal_to,
    joint_codes,
    take,
    to_seconds,
    values_of,
    vocabulary_lookup,
    vocabulary_of,
)
from spm_ml.features.context import DealContext
from spm_ml.features.custom_fields import custom_field_features
from spm_ml.features.deal_events import DealEvents
from spm_ml.features.deal_fields import (
    NEW_NUMBER,
    NEW_TIME,
    OLD_NUMBER,
    OLD_TIME,
    owner_at,
    with_parsed_values,
)
from spm_ml.features.email_signals import email_sentiment_features, has_sentiment

FEATURE_SET_VERSION = "deal_features.v3"
"""v2: rep features follow the owner at ``as_of``; custom fields opt-in and screened.
v3: no all-time closed-deal counts (``rep_closed_deals``, ``account_closed_deals``): they
count from wherever the data begins, so they grow with the calendar and a model trained on
earlier snapshots meets larger values at every later date (``docs/benchmarks.md``)."""
WINDOWS_DAYS = (7, 30, 90)


@dataclass(frozen=True)
class DealFeatureConfig:
    """Choices of the deal feature set; logged with every model trained on it."""

    version: str = FEATURE_SET_VERSION
    windows_days: tuple[int, ...] = WINDOWS_DAYS
    win_rate_prior_strength: float = 10.0
    """Pseudo-deals of the global win rate added to each rep's and account's record."""
    custom_fields: tuple[str, ...] = ()
    """Extra deal columns (custom CRM fields) to use as ``custom_<name>``; none unless named.

    Each must pass :func:`~spm_ml.features.custom_fields.screen_custom_fields`, or the
    features are refused with :class:`~spm_ml.errors.LeakageError`.
    """
    email_sentiment: bool = True
    """Add the email-tone block when the emails carry sentiment scores."""

    def __post_init__(self) -> None:
        # a list from the CLI or a config file: keep the frozen config hashable
        object.__setattr__(self, "custom_fields", tuple(self.custom_fields))


def open_deals_at(tables: Tables, as_of: pd.Timestamp) -> pd.DataFrame:
    """Snapshots of every deal open at ``as_of``: created before it and not closed before it."""
    deals = tables.deals
    is_open = (deals["created_at"] < as_of) & ~(deals["closed_at"] < as_of)
    return pd.DataFrame(
        {"deal_id": deals.loc[is_open, "deal_id"].to_numpy(), "as_of": pd.Timestamp(as_of)}
    ).astype({"as_of": "datetime64[ns]"})


Columns = dict[str, np.ndarray]
"""Feature columns by name, each one value per snapshot: what every block returns."""


def deal_features(
    tables: Tables,
    snapshots: pd.DataFrame | pd.Timestamp,
    config: DealFeatureConfig | None = None,
    context: DealContext | None = None,
) -> pd.DataFrame:
    """All deal features for ``snapshots`` (columns ``deal_id``, ``as_of``), one row each.

    ``snapshots`` may be a single timestamp, meaning every deal open at that moment.  The
    result has a fresh ``RangeIndex`` in the snapshots' order and keeps ``deal_id`` and
    ``as_of`` as columns; see :func:`deal_feature_columns` for the rest.
    """
    if not isinstance(snapshots, pd.DataFrame):
        snapshots = open_deals_at(tables, pd.Timestamp(snapshots))
    return pd.DataFrame(deal_feature_columns(tables, snapshots, config, context), copy=False)


def deal_feature_columns(
    tables: Tables,
    snapshots: pd.DataFrame | Mapping[str, Any],
    config: DealFeatureConfig | None = None,
    context: DealContext | None = None,
) -> Columns:
    """:func:`deal_features` as columns (``deal_id`` and ``as_of`` first), before any frame.

    The service scores a request's few rows straight from these arrays: a pandas frame of
    seventy columns costs more to build and to read back than the features themselves.

    ``tables`` must hold the snapshots' deals and their own rows (history, activities,
    emails); the organisation around them (reps, accounts, track records, screened custom
    fields) comes from ``context``, built from ``tables`` when not given.  The service
    passes a request's own rows and a context built once, so a request never touches the
    whole organisation.  A snapshot may carry ``in_context`` (bool): False for a deal the
    context does not hold (a posted new deal), whose own ownership then adds to its rep's
    open deals as it would have in the data.  ``snapshots`` may be a frame or its columns
    (:func:`snapshot_columns`).
    """
    config = config or DealFeatureConfig()
    if context is None:
        context = DealContext.build(tables, config)
    tables = tables.replace(deal_history=context.parsed_history(tables.deal_history))
    given, snapshots = snapshots, snapshot_columns(snapshots)
    columns: Columns = {"deal_id": snapshots["deal_id"], "as_of": _as_given(given["as_of"])}
    tables = _own_rows(tables, snapshots, context)
    events = DealEvents.of(tables, snapshots)  # indexed once, read by every block
    # each snapshot's deal row and its owner at as_of are read by several blocks: once here
    snapshots[DEAL_ROW] = _deal_positions(tables, snapshots)
    snapshots["owner"] = owner_at(tables, snapshots, events.history)
    for block in (
        static_features(tables, snapshots, context),
        history_features(tables, snapshots, events),
        activity_features(tables, snapshots, config, events),
        email_features(tables, snapshots, events),
        contact_features(tables, snapshots, events),
        track_record_features(tables, snapshots, config, context),
        custom_field_features(tables, snapshots, context.custom_fields),
    ):
        columns.update(block)
    # the organisation decides whether tone is a feature, not the rows of one request
    if config.email_sentiment and has_sentiment(context.tables):
        columns.update(email_sentiment_features(tables, snapshots, events))
    return columns


OWN_ROWS_SHARE = 0.25
"""Snapshots of at most this share of the organisation's deals are featurised from their
deals' own rows, cut out first (:meth:`DealContext.own_rows`): a batch chunk of 5,000 deals
then reads its deals' events, not the tens of millions of a million-deal organisation."""


def _own_rows(tables: Tables, snapshots: dict[str, Any], context: DealContext) -> Tables:
    """``tables`` cut to the snapshots' deals' own rows when they are a few of the context's
    deals (the same features, see :meth:`DealContext.own_rows`); else ``tables``.

    With a cut, the snapshots' ``deal_id`` (in ``snapshots``, not the output) becomes Python
    objects like the cut tables' ids: every lookup of one in the other then hashes objects
    against objects, not Arrow text against objects (pandas' slowest path)."""
    n_deals = len(tables.deals)
    if len(snapshots["deal_id"]) > OWN_ROWS_SHARE * n_deals or not context.holds(tables):
        return tables
    positions = context.deal_positions(snapshots["deal_id"])
    if positions is None or (positions < 0).any():  # the whole path names the unknown deal
        return tables
    snapshots["deal_id"] = pd.Series(snapshots["deal_id"].to_numpy(dtype=object), dtype=object)
    return context.own_rows(positions)


DEAL_ROW = "deal_row"
"""Snapshot column: the position of the snapshot's deal in ``tables.deals``."""

Snapshots = pd.DataFrame | Mapping[str, Any]
"""What a block reads snapshots from: a frame, or :func:`snapshot_columns`' dict."""


def snapshot_columns(snapshots: Snapshots) -> dict[str, Any]:
    """The snapshots as columns, read by every block: ``deal_id`` a Series in snapshot order
    (as given: its dtype picks the fast id lookup), ``as_of`` as ``datetime64[ns]``, and any
    other column (``in_context``, ``owner``) as a numpy array.

    A request's few rows pay pandas' fixed cost on every column read and row-wise copy; a
    dict of arrays costs nothing to read or to extend.
    """
    if isinstance(snapshots, pd.DataFrame):
        snapshots = {c: snapshots[c] for c in snapshots.columns}
    ids = snapshots["deal_id"]
    out: dict[str, Any] = {
        "deal_id": ids.reset_index(drop=True)
        if isinstance(ids, pd.Series)
        else pd.Series(ids, dtype=object),
        "as_of": as_datetime64(snapshots["as_of"]),
    }
    for name, values in snapshots.items():
        if name not in out:
            out[name] = np.asarray(values)
    return out


def _as_given(as_of: Any) -> Any:
    """The ``as_of`` column of the output as the caller gave it (its own time unit)."""
    return as_of.reset_index(drop=True) if isinstance(as_of, pd.Series) else as_datetime64(as_of)


def _owners(tables: Tables, snapshots: Snapshots) -> np.ndarray:
    """The owner at each snapshot's ``as_of``: the ``owner`` column when the caller resolved
    it already (:func:`deal_features` does, once), else :func:`owner_at`."""
    if "owner" in snapshots:
        return np.asarray(snapshots["owner"], dtype=object)
    return owner_at(tables, snapshots)


def _deal_positions(tables: Tables, snapshots: Snapshots) -> np.ndarray:
    """Each snapshot's row in ``tables.deals``; every snapshot's deal must be there.

    :func:`deal_feature_columns` looks them up once (``deal_row``) for every block."""
    if DEAL_ROW in snapshots:
        return np.asarray(snapshots[DEAL_ROW])
    ids = snapshots["deal_id"]
    positions = entity_codes(ids, pd.Index(tables.deals["deal_id"]))
    missing = positions < 0
    if missing.any():
        from spm_ml.errors import SchemaError

        first = np.asarray(ids, dtype=object)[int(np.flatnonzero(missing)[0])]
        raise SchemaError(f"snapshot deal_id {first!r} is not in the deals table")
    return positions


def static_features(tables: Tables, snapshots: pd.DataFrame, context: DealContext) -> Columns:
    """Product and account (fixed at creation) and the owning rep at ``as_of``: its tenure,
    and its team then (reps move between teams: ``rep_history``)."""
    deals, row = tables.deals, _deal_positions(tables, snapshots)
    accounts, reps = context.account_rows, context.rep_rows
    account = accounts.positions(take(values_of(deals, "account_id"), row))
    owners = _owners(tables, snapshots)
    rep = reps.positions(owners)
    return {
        "product": take(values_of(deals, "product"), row),
        "account_industry": accounts.take("industry", account),
        "account_region": accounts.take("region", account),
        "account_log_employees": np.log1p(accounts.take("employees", account).astype("float64")),
        "account_log_revenue": np.log1p(accounts.take("annual_revenue", account).astype("float64")),
        "rep_team": context.rep_team_at(owners, snapshots["as_of"]),
        "rep_tenure_days": days_between(snapshots["as_of"], reps.take("hire_date", rep)),
        "deal_age_days": days_between(
            snapshots["as_of"], take(values_of(deals, "created_at"), row)
        ),
    }


def history_features(
    tables: Tables,
    snapshots: pd.DataFrame,
    events: DealEvents | None = None,
    *,
    state_only: bool = False,
) -> Columns:
    """Stage, amount and expected close date as they stood at ``as_of``, and their changes
    (``state_only``: :data:`PIPELINE_STATE` alone, what :func:`pipeline_state` reads)."""
    history = with_parsed_values(tables.deal_history)
    ids, as_of = snapshots["deal_id"], snapshots["as_of"]
    if events is not None:
        index = events.history
    else:  # what DealEvents.of indexes for this block, without the activities and emails
        index = EventIndex(
            values_of(history, "deal_id"), values_of(history, "changed_at"), vocabulary_of(ids)
        )
    query = index.query(ids, as_of)
    fields = values_of(history, "field")
    is_stage, is_amount, is_close = (
        equal_to(fields, f) for f in ("stage", "amount", "expected_close_at")
    )
    new_number = column(history, NEW_NUMBER)
    new_time = column(history, NEW_TIME)

    last_stage = index.last(query, mask=is_stage)
    stage = take(values_of(history, "new_value"), last_stage)
    last_amount = index.last(query, mask=is_amount)
    amount = take(new_number, last_amount)
    expected_close = take(new_time, index.last(query, mask=is_close))
    if state_only:
        return {
            "stage": stage,
            "amount": amount,
            "days_to_expected_close": days_between(expected_close, as_of),
        }
    stage_rank = np.array([STAGE_RANK.get(s, np.nan) for s in stage], dtype="float64")
    first_amount = _first_value(new_number, is_amount, index, query)
    old_number = column(history, OLD_NUMBER)
    old_time = column(history, OLD_TIME)

    push_days = days_between(new_time, old_time)  # NaT (so NaN) off close-date rows
    is_push = np.nan_to_num(push_days) > 0
    is_cut = new_number < old_number  # NaN (so False) off amount rows

    return {
        "stage": stage,
        "stage_rank": stage_rank,
        "days_in_stage": days_between(as_of, take(values_of(history, "changed_at"), last_stage)),
        "stage_changes": np.maximum(index.count(query, mask=is_stage) - 1, 0),
        "amount": amount,
        "log_amount": np.log1p(amount),
        "amount_change_ratio": amount / first_amount,
        "amount_cuts": index.count(query, mask=is_cut),
        "days_to_expected_close": days_between(expected_close, as_of),
        "close_date_pushes": index.count(query, mask=is_push),
        "close_date_push_days": index.sum(query, values=np.where(is_push, push_days, 0.0)),
    }


STAGE_RANK = {s: float(i) for i, s in enumerate(DEAL_STAGES)}

PIPELINE_STATE = ("stage", "amount", "days_to_expected_close")
"""What a pipeline read (quota risk's and the forecast's rates) takes from a deal's features."""


def pipeline_state(
    tables: Tables, snapshots: pd.DataFrame, context: DealContext | None = None
) -> pd.DataFrame:
    """:data:`PIPELINE_STATE` at each snapshot's ``as_of``, one row each, as
    :func:`deal_features` gives them (the same :func:`history_features` code), without the
    other blocks: the forecast's past periods read only these, for every deal open at every
    replayed point (tens of millions of rows at a million open deals).

    ``context`` supplies the parsed history when it was built from ``tables``.
    """
    history = (
        context.parsed_history(tables.deal_history)
        if context is not None
        else with_parsed_values(tables.deal_history)
    )
    columns = history_features(
        tables.replace(deal_history=history), snapshot_columns(snapshots), state_only=True
    )
    return pd.DataFrame({name: columns[name] for name in PIPELINE_STATE})


def _first_value(
    values: np.ndarray, mask: np.ndarray, index: EventIndex, query: AsOfQuery
) -> np.ndarray:
    """The field's first recorded value (the initial one), if recorded before ``as_of``.

    "First" is the row with the earliest ``changed_at`` (in the index's whole seconds), the
    first in table order among rows stamped at the same second.
    """
    rows, seconds = index.first(query, mask=mask)
    seen = (rows >= 0) & (seconds < query.seconds)
    out = np.full(len(rows), np.nan)
    out[seen] = values[rows[seen]]
    return out


_ACTIVITY_TYPES = pd.Index(ACTIVITY_TYPES, dtype="str")
_ACTIVITY_TYPE_CODES = vocabulary_lookup(_ACTIVITY_TYPES)


def activity_features(
    tables: Tables,
    snapshots: pd.DataFrame,
    config: DealFeatureConfig,
    events: DealEvents | None = None,
) -> Columns:
    """Activity counts by type over recent windows, and days since the last of each type."""
    activities = tables.activities
    index = (events or DealEvents.of(tables, snapshots)).activities
    as_of = snapshots["as_of"]
    query = index.query(snapshots["deal_id"], as_of)
    types = entity_codes(values_of(activities, "type"), _ACTIVITY_TYPES, _ACTIVITY_TYPE_CODES)
    occurred_at = column(activities, "occurred_at")
    out: dict[str, np.ndarray] = {"activities_total": index.count(query)}
    for window in config.windows_days:
        out[f"activities_{window}d"] = index.count(query, window_days=window)
    for code, kind in enumerate(ACTIVITY_TYPES):
        kind_index = index.subset(types == code)
        for window in config.windows_days:
            out[f"{kind}s_{window}d"] = kind_index.count(query, window_days=window)
        if kind in ("meeting", "demo"):
            out[f"{kind}s_total"] = kind_index.count(query)
        if kind in ("call", "meeting", "demo"):
            last = kind_index.last(query)
            out[f"days_since_{kind}"] = days_between(as_of, take(occurred_at, last))
    last_any = index.last(query)
    out["days_since_activity"] = days_between(as_of, take(occurred_at, last_any))
    return out


def email_features(
    tables: Tables, snapshots: pd.DataFrame, events: DealEvents | None = None
) -> Columns:
    """Inbound/outbound email balance, recency and the buyer's reply latency."""
    emails = tables.emails
    vocabulary = events.vocabulary if events is not None else vocabulary_of(snapshots["deal_id"])
    codes = entity_codes(values_of(emails, "deal_id"), vocabulary)
    sent_all = column(emails, "sent_at").astype("datetime64[ns]", copy=False)
    # the snapshots' deals' emails by (deal, sent_at), ties in table order, as a stable sort would
    mine = np.flatnonzero(codes >= 0)
    order = mine[np.lexsort((sent_all[mine].view(np.int64), codes[mine]))]
    codes, sent_at = codes[order], sent_all[order]
    inbound = equal_to(values_of(emails, "direction"), "inbound")[order]
    outbound = ~inbound
    latency = days_between(sent_at, _last_outbound(codes, sent_at, outbound))
    latency_known = inbound & ~np.isnan(latency)
    index = EventIndex.from_codes(codes, to_seconds(sent_at), vocabulary)
    as_of = snapshots["as_of"]
    query = index.query(snapshots["deal_id"], as_of)

    inbound_30 = index.count(query, window_days=30, mask=inbound)
    outbound_30 = index.count(query, window_days=30, mask=outbound)
    replies = index.count(query, mask=latency_known)
    latency_sum = index.sum(query, values=np.where(latency_known, latency, 0.0))
    return {
        "emails_inbound_total": index.count(query, mask=inbound),
        "emails_outbound_total": index.count(query, mask=outbound),
        "emails_inbound_14d": index.count(query, window_days=14, mask=inbound),
        "emails_inbound_30d": inbound_30,
        "emails_outbound_30d": outbound_30,
        "email_inbound_share_30d": np.where(
            inbound_30 + outbound_30 > 0,
            inbound_30 / np.maximum(inbound_30 + outbound_30, 1),
            np.nan,
        ),
        "days_since_inbound_email": days_between(
            as_of, take(sent_at, index.last(query, mask=inbound))
        ),
        "days_since_outbound_email": days_between(
            as_of, take(sent_at, index.last(query, mask=outbound))
        ),
        "reply_latency_days_mean": np.where(
            replies > 0, latency_sum / np.maximum(replies, 1), np.nan
        ),
    }


def _last_outbound(codes: np.ndarray, sent_at: np.ndarray, outbound: np.ndarray) -> np.ndarray:
    """For emails sorted by (deal, time): when the deal's latest outbound email so far was sent."""
    position = np.arange(len(codes))
    latest = np.where(outbound & ~np.isnat(sent_at), position, -1)
    if len(latest):
        latest = np.maximum.accumulate(latest)
    starts = np.ones(len(codes), dtype=bool)
    starts[1:] = codes[1:] != codes[:-1]
    deal_start = np.maximum.accumulate(np.where(starts, position, 0)) if len(codes) else position
    same_deal = latest >= deal_start
    out = np.full(len(codes), np.datetime64("NaT"), dtype="datetime64[ns]")
    out[same_deal] = sent_at[latest[same_deal]]
    return out


def contact_features(
    tables: Tables, snapshots: pd.DataFrame, events: DealEvents | None = None
) -> Columns:
    """Distinct buyer contacts seen on the deal (emails and activities with a ``contact_id``)."""
    events = events or DealEvents.of(tables, snapshots)
    parts = [
        (frame, index)
        for frame, index in ((tables.emails, events.emails), (tables.activities, events.activities))
        if "contact_id" in frame.columns
    ]
    if not parts:
        return {"contacts_engaged": np.full(len(snapshots["deal_id"]), np.nan)}
    vocabulary = events.vocabulary
    # the index holds each dated event of the snapshots' deals: their contacts, coded alike
    contacts = joint_codes([(values_of(frame, "contact_id"), index.rows) for frame, index in parts])
    deal_codes, contact_codes, seconds = [], [], []
    for (_, index), contact in zip(parts, contacts, strict=True):
        keep = contact >= 0
        deal_codes.append(index.entity_codes[keep])
        contact_codes.append(contact[keep])
        seconds.append(index.seconds[keep])
    pairs = (np.concatenate(deal_codes) << 32) | np.concatenate(contact_codes)
    touches = np.concatenate(seconds)
    # each (deal, contact) pair counts from its first touch on
    order = np.lexsort((touches, pairs))
    pairs, touches = pairs[order], touches[order]
    first = np.flatnonzero(np.r_[True, pairs[1:] != pairs[:-1]]) if len(pairs) else []
    index = EventIndex.from_codes(pairs[first] >> 32, touches[first], vocabulary)
    counts = index.count(snapshots["deal_id"], snapshots["as_of"])
    return {"contacts_engaged": counts.astype("float64")}


def track_record_features(
    tables: Tables, snapshots: pd.DataFrame, config: DealFeatureConfig, context: DealContext
) -> Columns:
    """Smoothed win rate of the deals closed before ``as_of`` by the deal's owner at
    ``as_of`` (each deal counted for its owner at close) and by its account; the owner's open
    deals at ``as_of``.

    How many deals closed is not a feature: counted since the data begins, it grows with the
    calendar (on the default simulated org the test fold's counts are about three times the
    training fold's), and a tree model trained on earlier dates reads it as something else
    later.  The rates are shrunk towards the overall rate by ``win_rate_prior_strength``
    pseudo-deals, so a thin record still says how thin it is."""
    counts = track_record_counts(tables, snapshots, context)
    n_all, won_all = counts["overall_closed"], counts["overall_won"]
    prior = np.where(n_all > 0, won_all / np.maximum(n_all, 1), 0.25)
    strength = config.win_rate_prior_strength
    out: dict[str, np.ndarray] = {
        f"{name}_win_rate": (counts[f"{name}_won"] + strength * prior)
        / (counts[f"{name}_closed"] + strength)
        for name in ("rep", "account")
    }
    out["rep_open_deals"] = counts["rep_open_deals"]
    return out


def track_record_counts(tables: Tables, snapshots: pd.DataFrame, context: DealContext) -> Columns:
    """Deals closed and won before ``as_of`` by the deal's owner at ``as_of`` (each deal
    counted for its owner at close), by its account and overall (``{rep,account,overall}_
    {closed,won}``), and the owner's open deals at ``as_of``: the evidence behind
    :func:`track_record_features`."""
    record = context.track_record
    accounts = take(values_of(tables.deals, "account_id"), _deal_positions(tables, snapshots))
    as_of = snapshots["as_of"]
    owner = _owners(tables, snapshots)
    everyone = np.full(len(owner), "*", dtype=object)
    # one query per vocabulary: subsets of an index share its vocabulary
    by_owner = record.closed_by_rep.query(owner, as_of)
    by_account = record.closed_by_account.query(accounts, as_of)
    overall = record.closed_overall.query(everyone, as_of)
    out: dict[str, np.ndarray] = {}
    for name, query, closed, won in (
        ("rep", by_owner, record.closed_by_rep, record.won_by_rep),
        ("account", by_account, record.closed_by_account, record.won_by_account),
        ("overall", overall, record.closed_overall, record.won_overall),
    ):
        out[f"{name}_closed"] = closed.count(query)
        out[f"{name}_won"] = won.count(query)
    # open deals the owner holds at as_of: gains (creation, transfer in) minus losses
    # (transfer out, close), each dated when it happened
    held = record.gained_by_rep.count(by_owner) - record.lost_by_rep.count(by_owner)
    if "in_context" in snapshots:  # a deal the context lacks is held by its owner too
        held = held + (~np.asarray(snapshots["in_context"], dtype=bool)).astype(np.int64)
    out["rep_open_deals"] = held.astype(np.int64)
    return out


CATEGORICAL_FEATURES = (
    "product",
    "account_industry",
    "account_region",
    "rep_team",
    "stage",
)
"""Text features the model treats as categories; custom fields of text type join them."""
