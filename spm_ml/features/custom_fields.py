"""Custom CRM fields as deal features: used only when opted in by name, and only if screened.

An extra column of the deals table (a custom CRM field) holds its value at extraction, which
for a closed deal may have been written at close: ``Probability`` jumps to 100 or 0,
``ForecastCategory`` becomes ``Closed`` or ``Omitted``, a ``Loss Reason`` is filled in.  So
no custom field is used unless the feature config names it, and every named field must pass:

1. it is an extra column of deals, not one the source's adapter lists as a non-feature
   (``Tables.non_feature_columns``: identifiers, targets, flags that follow the outcome);
2. the flat-export trainer's leak screen (:func:`spm_ml.features.tabular.screen_columns`), run
   on the closed deals' values *as the features would see them just before close*, against
   their outcome: a field that alone separates won from lost (ROC AUC >= 0.95), a date named
   like the outcome, an identifier, a constant or an empty field is refused;
3. for a field without history: it must not be filled on closed deals only (a value entered at
   close), judged on the deals still open at extraction.

A refused field raises :class:`~spm_ml.errors.LeakageError` naming the field and the reason,
rather than being dropped silently: the user asked for it.

Point in time: when ``deal_history`` records the field (rows whose ``field`` is its name),
its value at ``as_of`` is replayed like the owner's (:mod:`spm_ml.features.deal_fields`);
otherwise the deals-table value is taken as set when the deal was created.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.data.parse import values_like
from spm_ml.data.schema import TABLES
from spm_ml.data.tables import Tables
from spm_ml.errors import LeakageError, SchemaError
from spm_ml.features.asof import days_between, entity_codes, take
from spm_ml.features.deal_fields import replay_field
from spm_ml.features.tabular import (
    LEAK_AUC_EXCLUDE,
    ColumnDecision,
    clean_text,
    parse_dates,
    parse_numbers,
    screen_columns,
)

logger = logging.getLogger(__name__)

PREFIX = "custom_"
"""Feature column of custom field ``name``: ``custom_<name>``."""
MIN_CLOSED_PER_CLASS = 10
"""Won and lost closed deals needed to screen a field at all."""
MIN_EXPECTED_FILLED_OPEN = 10
"""Open deals that must be expected to carry a value before "filled only at close" is judged."""
CLOSE_ONLY_RATIO = 0.1
"""Open deals filled at under this share of the closed deals' rate: a value entered at close."""


@dataclass(frozen=True)
class CustomField:
    """An opted-in custom field that passed the screen, and how the features read it."""

    name: str
    kind: str
    """``numeric``, ``category`` or ``datetime`` (a date becomes days from ``as_of`` to it)."""
    tracked: bool
    """``deal_history`` records its changes, so its value at ``as_of`` is replayed."""
    auc: float
    """Single-column ROC AUC of its values just before close against the outcome."""
    date_format: str | None = None


def extra_deal_columns(tables: Tables) -> list[str]:
    """Columns of the deals table beyond the contract's: the candidate custom fields."""
    contract = TABLES["deals"].column_names
    return [c for c in tables.deals.columns if c not in contract]


def is_tracked(tables: Tables, name: str) -> bool:
    """Whether ``deal_history`` records changes of custom field ``name``."""
    return bool((tables.deal_history["field"] == name).any())


def custom_values_at(tables: Tables, deal_ids: pd.Series, as_of: pd.Series, name: str) -> pd.Series:
    """Value of custom field ``name`` for each ``(deal_id, as_of)``, typed like its column.

    Replayed from ``deal_history`` for deals with rows of the field; otherwise (and for every
    deal when the field has no history) the deals-table value, taken as set at creation.
    """
    deals = tables.deals
    column = deals[name]
    if pd.api.types.is_bool_dtype(column.dtype):
        column = column.astype("float64")  # history text parses to 1.0/0.0 alike
    position = entity_codes(pd.Series(deal_ids), pd.Index(deals["deal_id"]))
    current = pd.Series(take(column, position))
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        current = current.astype("datetime64[ns]")
    if not is_tracked(tables, name):
        return current
    values, recorded = replay_field(tables.deal_history, deal_ids, as_of, name)
    replayed = values_like(pd.Series(values, dtype="object"), deals[name])
    return replayed.where(recorded, current)


def screen_custom_fields(
    tables: Tables, names: Sequence[str], *, seed: int = 0
) -> list[CustomField]:
    """The opted-in fields ``names`` after the screen (module docstring); raise if any fails.

    Raises
    ------
    SchemaError
        A name is not an extra column of the deals table.
    LeakageError
        A field is a listed non-feature, an outcome leak, filled only at close, or unusable
        (identifier, constant, empty); the message names every refused field and why.
    """
    if not names:
        return []
    _check_names(tables, names)
    non_features = set(tables.non_feature_columns.get("deals", ()))
    deals = tables.deals
    closed = deals[deals["closed_at"].notna() & deals["outcome"].notna()]
    y = (closed["outcome"] == "won").to_numpy().astype(int)
    n_won, n_lost = int(y.sum()), int(len(y) - y.sum())
    if min(n_won, n_lost) < MIN_CLOSED_PER_CLASS:
        raise LeakageError(
            f"custom field(s) {', '.join(map(repr, names))} cannot be screened for outcome "
            f"leaks: {n_won} won and {n_lost} lost closed deals, at least "
            f"{MIN_CLOSED_PER_CLASS} of each needed; train without --custom-field"
        )
    refused: dict[str, str] = {}
    accepted = []
    for name in names:
        if name in non_features:
            refused[name] = (
                "the source's adapter lists it as a non-feature column (an identifier, a "
                "target or a flag that follows the outcome)"
            )
            continue
        tracked = is_tracked(tables, name)
        # what a snapshot could see at the latest: the value just before the deal closed
        values = custom_values_at(tables, closed["deal_id"], closed["closed_at"], name)
        decision = screen_columns(
            pd.DataFrame({name: values.to_numpy()}),
            y,
            target="outcome",  # a contract column, never a custom field's name
            labels=("lost", "won"),
            seed=seed,
        )[0]
        why = _refusal(decision, tracked)
        if why is None and not tracked:
            why = _filled_only_at_close(deals, name)
        if why is not None:
            refused[name] = why
            continue
        if decision.warning:
            logger.warning("custom field %r used, but: %s", name, decision.warning)
        accepted.append(
            CustomField(name, decision.kind, tracked, float(decision.auc), decision.date_format)
        )
    if refused:
        detail = "; ".join(f"{name!r}: {why}" for name, why in refused.items())
        raise LeakageError(
            f"custom field(s) refused: {detail}. Leave them out of the feature config "
            "(--custom-field); a field your CRM sets before close can be used once "
            "deal_history records its changes"
        )
    return accepted


def custom_field_features(
    tables: Tables, snapshots: pd.DataFrame, fields: Sequence[CustomField]
) -> dict[str, np.ndarray]:
    """``custom_<name>`` per screened field: its value at ``as_of`` (dates: days to it)."""
    out = {}
    for field in fields:
        values = custom_values_at(tables, snapshots["deal_id"], snapshots["as_of"], field.name)
        if field.kind == "numeric":
            column = parse_numbers(values).to_numpy()
        elif field.kind == "datetime":
            column = days_between(parse_dates(values, field.date_format), snapshots["as_of"])
        else:
            text = values.astype("object").where(values.notna())
            column = text.map(clean_text).to_numpy(dtype=object)
        out[f"{PREFIX}{field.name}"] = column
    return out


def _check_names(tables: Tables, names: Sequence[str]) -> None:
    contract = TABLES["deals"].column_names
    extras = extra_deal_columns(tables)
    wrong = [n for n in names if n not in extras]
    if not wrong:
        return
    reasons = [
        f"{n!r} is a contract column (its value at as_of is already a feature)"
        if n in contract
        else f"{n!r} is not a column of deals"
        for n in wrong
    ]
    raise SchemaError(
        f"custom field(s) {'; '.join(reasons)}; custom fields are the extra columns of "
        f"deals: {', '.join(extras) or '(none)'}"
    )


def _refusal(decision: ColumnDecision, tracked: bool) -> str | None:
    """Why the screen's decision refuses the field, in words for the person who opted in."""
    if decision.used:
        return None
    when = "just before close" if tracked else "on closed deals"
    if decision.reason.startswith("leak"):
        if decision.auc is not None and decision.auc >= LEAK_AUC_EXCLUDE:
            return (
                f"its value {when} alone separates won from lost deals (single-column ROC AUC "
                f"{decision.auc:.3f}): recorded at or after close, an outcome leak"
            )
        return "a date named like the outcome, stamped when the deal closes: an outcome leak"
    if decision.kind == "empty":
        return f"no value {when}" + ("; set only at close?" if tracked else "")
    return f"{decision.kind} {when} ({decision.reason}): nothing a model can learn from"


def _filled_only_at_close(deals: pd.DataFrame, name: str) -> str | None:
    filled = _filled(deals[name])
    is_open = deals["closed_at"].isna().to_numpy()
    closed_rate = float(filled[~is_open].mean()) if (~is_open).any() else 0.0
    expected = is_open.sum() * closed_rate
    if expected < MIN_EXPECTED_FILLED_OPEN:
        return None
    open_rate = float(filled[is_open].mean())
    if open_rate >= CLOSE_ONLY_RATIO * closed_rate:
        return None
    return (
        f"filled on {closed_rate:.0%} of closed deals but {open_rate:.0%} of open ones: a value "
        "entered at close (record its changes in deal_history if it is set earlier)"
    )


def _filled(values: pd.Series) -> np.ndarray:
    present = values.notna().to_numpy()
    if pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
        blank = values.astype("str").str.strip().eq("").fillna(False).to_numpy()
        present = present & ~blank
    return present
