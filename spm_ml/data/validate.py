"""Checks across rows and tables of parsed data: keys, references, dates, consistency.

Per-value checks (types, enums, negatives, required cells) happen while parsing
(:mod:`spm_ml.data.parse`); this module checks what needs whole tables: unique ids, foreign
keys, date order, events after the data's as-of, deal stage/outcome consistency, the
fields of deal_history (owner changes name known reps, custom fields name deals columns) and
rep_history (managers are known reps, changes fall inside the rep's employment and chain up
to the reps table).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from spm_ml.data.parse import MAX_PROBLEMS_PER_CHECK, values_like
from spm_ml.data.problems import Problem
from spm_ml.data.schema import (
    MANAGER_FIELD,
    OPEN_STAGES,
    OPTIONAL_TABLES,
    OWNER_FIELD,
    TABLES,
    TableSchema,
)
from spm_ml.data.tables import Tables

NON_EMPTY_TABLES = ("reps", "accounts", "deals")
"""A source with none of these rows has nothing to model."""

EVENT_COLUMNS = {
    "reps": ("hire_date", "exit_date"),
    "deals": ("created_at", "closed_at"),
    "deal_history": ("changed_at",),
    "rep_history": ("changed_at",),
    "activities": ("occurred_at",),
    "emails": ("sent_at",),
}
"""Columns that record something that happened, so cannot lie after the data's as-of.

Planned dates (``expected_close_at``, quota periods) may legitimately be in the future.
"""


def validate_tables(
    tables: Tables, *, non_empty: tuple[str, ...] = NON_EMPTY_TABLES
) -> list[Problem]:
    """Every cross-row problem of ``tables`` (an empty list means the data is usable).

    ``non_empty`` names the tables that must have rows (an HR-only export has only reps).
    """
    problems: list[Problem] = []
    for name, frame in tables.items():
        schema = TABLES[name]
        label = _labeller(schema, frame)
        problems += _check_not_empty(schema, frame, name in non_empty)
        problems += _check_unique_key(schema, frame, label)
        problems += _check_foreign_keys(schema, frame, tables, label)
        problems += _check_date_order(schema, frame, label)
        if tables.extracted_at is not None:
            problems += _check_not_after(schema, frame, tables.extracted_at, label)
    problems += _check_deal_states(tables.deals, _labeller(TABLES["deals"], tables.deals))
    problems += _check_history_fields(tables)
    problems += _check_rep_history(tables)
    problems += _check_period_overlaps(tables)
    return problems


def _labeller(schema: TableSchema, frame: pd.DataFrame) -> Callable[[int], str]:
    key = schema.primary_key[0] if len(schema.primary_key) == 1 else None

    def label(position: int) -> str:
        where = f"row {position + 1}"
        if key is not None:
            return f"{where} ({key}={frame[key].iat[position]})"
        return where

    return label


def _rows(
    schema: TableSchema, column: str, kind: str, mask: np.ndarray, label, message
) -> list[Problem]:
    positions = np.flatnonzero(mask)
    out = [
        Problem(schema.name, label(int(i)), column, kind, message(int(i)))
        for i in positions[:MAX_PROBLEMS_PER_CHECK]
    ]
    if len(positions) > MAX_PROBLEMS_PER_CHECK:
        out.append(
            Problem(
                schema.name,
                "...",
                column,
                kind,
                f"{len(positions) - MAX_PROBLEMS_PER_CHECK:,} more rows fail this check "
                f"({len(positions):,} in all)",
            )
        )
    return out


def _check_not_empty(schema: TableSchema, frame: pd.DataFrame, required: bool) -> list[Problem]:
    if len(frame) or schema.name in OPTIONAL_TABLES:
        return []
    if required:
        return [Problem(schema.name, "-", "-", "empty_table", "table has no rows")]
    return [
        Problem(
            schema.name,
            "-",
            "-",
            "empty_table",
            "table has no rows; features built from it will be empty",
            "warning",
        )
    ]


def _check_unique_key(schema: TableSchema, frame: pd.DataFrame, label) -> list[Problem]:
    if not schema.primary_key or not len(frame):
        return []
    key = list(schema.primary_key)
    duplicated = frame.duplicated(key, keep="first").to_numpy()
    if not duplicated.any():
        return []
    first_seen = frame.reset_index().groupby(key, dropna=False)["index"].transform("min")
    column = ", ".join(key)
    return _rows(
        schema,
        column,
        "duplicate_id",
        duplicated,
        label,
        lambda i: (
            f"{column} {_key_text(frame, key, i)} already used by row {first_seen.iat[i] + 1}"
        ),
    )


def _key_text(frame: pd.DataFrame, key: list[str], i: int) -> str:
    return "/".join(str(frame[k].iat[i]) for k in key)


def _check_foreign_keys(schema: TableSchema, frame: pd.DataFrame, tables: Tables, label):
    problems = []
    for fk in schema.foreign_keys:
        values = frame[fk.column]
        known = getattr(tables, fk.ref_table)[fk.ref_column]
        dangling = (values.notna() & ~values.isin(known)).to_numpy()
        problems += _rows(
            schema,
            fk.column,
            "dangling_reference",
            dangling,
            label,
            lambda i, fk=fk, values=values: (
                f"{values.iat[i]!r} is not a {fk.ref_column} in {fk.ref_table}"
            ),
        )
    return problems


def _check_date_order(schema: TableSchema, frame: pd.DataFrame, label) -> list[Problem]:
    problems = []
    for earlier, later in schema.date_order:
        a, b = frame[earlier], frame[later]
        wrong = (a.notna() & b.notna() & (b < a)).to_numpy()
        problems += _rows(
            schema,
            later,
            "date_order",
            wrong,
            label,
            lambda i, a=a, b=b, earlier=earlier, later=later: (
                f"{later} {b.iat[i]} is before {earlier} {a.iat[i]}"
            ),
        )
    return problems


def _check_period_overlaps(tables: Tables) -> list[Problem]:
    """A rep's quota (or pay) periods must not overlap: a deal closed in the overlap would
    count towards two quotas, and attainment would mean nothing."""
    problems = []
    for name in ("quotas", "compensation"):
        frame = getattr(tables, name).reset_index(drop=True)
        if frame.empty:
            continue
        order = frame.sort_values(["rep_id", "period_start"], kind="stable")
        same_rep = order["rep_id"].eq(order["rep_id"].shift()).to_numpy()
        previous = order.shift()
        overlaps = same_rep & (order["period_start"] <= previous["period_end"]).to_numpy()
        wrong = np.zeros(len(frame), dtype=bool)
        wrong[order.index.to_numpy()[overlaps]] = True
        earlier = previous.set_index(order.index)

        def message(i: int, frame=frame, earlier=earlier) -> str:
            row, before = frame.iloc[i], earlier.loc[i]
            return (
                f"rep {row['rep_id']}'s period {row['period_start'].date()} to "
                f"{row['period_end'].date()} overlaps its period from "
                f"{before['period_start'].date()} to {before['period_end'].date()}; a rep's "
                "periods must not overlap (a deal closed in both would count twice)"
            )

        schema = TABLES[name]
        problems += _rows(
            schema, "period_start", "overlapping_periods", wrong, _labeller(schema, frame), message
        )
    return problems


def _check_not_after(schema: TableSchema, frame: pd.DataFrame, as_of: pd.Timestamp, label):
    problems = []
    for column in EVENT_COLUMNS.get(schema.name, ()):
        values = frame[column]
        future = (values.notna() & (values > as_of)).to_numpy()
        problems += _rows(
            schema,
            column,
            "after_as_of",
            future,
            label,
            lambda i, values=values: (
                f"{values.iat[i]} is after the data's as-of {as_of} (extraction time); "
                "events cannot be in the future"
            ),
        )
    return problems


def _check_deal_states(deals: pd.DataFrame, label) -> list[Problem]:
    schema = TABLES["deals"]
    stage, outcome, closed_at = deals["stage"], deals["outcome"], deals["closed_at"]
    is_open = stage.isin(OPEN_STAGES)
    expected_outcome = stage.map({"closed_won": "won", "closed_lost": "lost"})
    wrong_outcome = (
        (is_open & outcome.notna())
        | (
            ~is_open
            & stage.notna()
            & (outcome.astype("object") != expected_outcome.astype("object"))
        )
    ).to_numpy()
    problems = _rows(
        schema,
        "outcome",
        "inconsistent_state",
        wrong_outcome,
        label,
        lambda i: f"outcome {_text(outcome.iat[i])} does not match stage {stage.iat[i]!r}",
    )
    wrong_close = (is_open & closed_at.notna()) | (~is_open & stage.notna() & closed_at.isna())
    problems += _rows(
        schema,
        "closed_at",
        "inconsistent_state",
        wrong_close.to_numpy(),
        label,
        lambda i: (
            f"closed_at {_text(closed_at.iat[i])} does not match stage {stage.iat[i]!r} "
            "(closed deals need closed_at, open deals must not have one)"
        ),
    )
    return problems


def _text(value: object) -> str:
    return "<empty>" if pd.isna(value) else repr(str(value))


def _check_history_fields(tables: Tables) -> list[Problem]:
    """deal_history rows: a known field, a value where the contract needs one, owners as reps.

    ``field`` is the contract's enum or the name of an extra column of deals (the current
    value of that custom field); a custom field's values must parse like that column.
    """
    schema = TABLES["deal_history"]
    history = tables.deal_history
    if not len(history):
        return []
    label = _labeller(schema, history)
    field = history["field"]
    contract_fields = schema.column("field").values
    deals = tables.deals
    extras = [c for c in deals.columns if c not in TABLES["deals"].column_names]
    is_contract = field.isin(contract_fields).to_numpy()
    unknown = field.notna().to_numpy() & ~is_contract & ~field.isin(extras).to_numpy()
    problems = _rows(
        schema,
        "field",
        "bad_enum",
        unknown,
        label,
        lambda i: (
            f"value {field.iat[i]!r} is neither one of {', '.join(contract_fields)} nor an "
            "extra column of deals; a custom field's history needs the field as a deals "
            "column holding its current value"
        ),
    )
    new_value = history["new_value"]
    problems += _rows(
        schema,
        "new_value",
        "missing_value",
        is_contract & new_value.isna().to_numpy(),
        label,
        lambda i: f"is empty; required for field {field.iat[i]!r}",
    )
    problems += _dangling_reps(
        schema,
        history,
        (field == OWNER_FIELD).to_numpy(),
        tables.reps["rep_id"],
        label,
        "a rep_id row is an owner change between two reps",
    )
    for name in extras:
        problems += _check_custom_values(schema, history, field == name, deals[name], label)
    return problems


def _check_custom_values(
    schema: TableSchema, history: pd.DataFrame, rows: pd.Series, current: pd.Series, label
) -> list[Problem]:
    """History values of a numeric, boolean or date custom field must parse as its deals
    column does (the features replay them typed like it)."""
    if not rows.any() or pd.api.types.is_string_dtype(current.dtype) or current.dtype == object:
        return []
    name = history["field"][rows].iat[0]
    problems = []
    for column in ("old_value", "new_value"):
        values = history[column].where(rows)
        bad = (values.notna() & values_like(values, current).isna()).to_numpy()
        problems += _rows(
            schema,
            column,
            "bad_value",
            bad,
            label,
            lambda i, values=values: (
                f"value {values.iat[i]!r} of custom field {name!r} does not parse as "
                f"deals.{name} ({current.dtype})"
            ),
        )
    return problems


def _dangling_reps(schema, history, rows, known_reps, label, why: str) -> list[Problem]:
    """Old and new values of the history ``rows`` that name a rep must be reps."""
    problems: list[Problem] = []
    for column in ("old_value", "new_value"):
        values = history[column]
        dangling = rows & (values.notna() & ~values.isin(known_reps)).to_numpy()
        problems += _rows(
            schema,
            column,
            "dangling_reference",
            dangling,
            label,
            lambda i, values=values: f"{values.iat[i]!r} is not a rep_id in reps ({why})",
        )
    return problems


def _check_rep_history(tables: Tables) -> list[Problem]:
    """rep_history rows: managers are reps, each change inside the rep's employment, and
    each rep's changes of a field chain up (old value = the previous row's new value, the
    last new value = the reps table's value at extraction).

    A change before the hire or after the exit cannot have happened (error); a broken chain
    is a gap in the export, reported as a warning because replaying it is still defined.
    """
    schema = TABLES["rep_history"]
    history = tables.rep_history
    if not len(history):
        return []
    label = _labeller(schema, history)
    reps = tables.reps
    field = history["field"]
    problems = _dangling_reps(
        schema,
        history,
        (field == MANAGER_FIELD).to_numpy(),
        reps["rep_id"],
        label,
        "a manager_id row names the rep's previous and new manager",
    )
    by_rep = reps.drop_duplicates("rep_id").set_index("rep_id")
    hired = history["rep_id"].map(by_rep["hire_date"])
    left = history["rep_id"].map(by_rep["exit_date"])
    when = history["changed_at"]
    before = (hired.notna() & when.notna() & (when < hired)).to_numpy()
    problems += _rows(
        schema,
        "changed_at",
        "date_order",
        before,
        label,
        lambda i: f"{when.iat[i]} is before the rep's hire_date {hired.iat[i]}",
    )
    after = (left.notna() & when.notna() & (when > left)).to_numpy()
    problems += _rows(
        schema,
        "changed_at",
        "date_order",
        after,
        label,
        lambda i: f"{when.iat[i]} is after the rep's exit_date {left.iat[i]}",
    )
    problems += _check_rep_history_chain(schema, history, by_rep, label)
    return problems


def _check_rep_history_chain(
    schema: TableSchema, history: pd.DataFrame, by_rep: pd.DataFrame, label
) -> list[Problem]:
    rep = history["rep_id"].astype("object").to_numpy()
    field = history["field"].astype("object").to_numpy()
    old = _texts(history["old_value"])
    new = _texts(history["new_value"])
    order = np.lexsort((history["changed_at"].to_numpy(), field.astype(str), rep.astype(str)))
    same_run = np.zeros(len(order), dtype=bool)
    same_run[1:] = (rep[order][1:] == rep[order][:-1]) & (field[order][1:] == field[order][:-1])
    # position i (in frame order) -> the new_value of the row before it in its run
    previous = np.full(len(history), None, dtype=object)
    previous[order[1:]] = np.where(same_run[1:], new[order][:-1], None)
    follows = np.zeros(len(history), dtype=bool)
    follows[order] = same_run
    broken = follows & (old != previous)
    problems = _rows(
        schema,
        "old_value",
        "inconsistent_history",
        broken,
        label,
        lambda i: (
            f"{_text(old[i])} differs from the new_value {_text(previous[i])} of the rep's "
            f"previous {field[i]} change"
        ),
    )
    is_last = np.zeros(len(history), dtype=bool)
    is_last[order] = np.r_[~same_run[1:], True]
    current = np.full(len(history), None, dtype=object)
    known = np.zeros(len(history), dtype=bool)
    for name in pd.unique(field):
        if isinstance(name, str) and name in by_rep.columns:
            rows = field == name
            values = pd.Series(rep[rows]).map(by_rep[name])
            found = pd.Series(rep[rows]).isin(by_rep.index).to_numpy()
            current[rows] = _texts(values)
            known[rows] = found
    mismatch = is_last & known & (new != current)
    problems += _rows(
        schema,
        "new_value",
        "inconsistent_history",
        mismatch,
        label,
        lambda i: (
            f"the rep's last {field[i]} change sets {_text(new[i])}, but reps holds "
            f"{_text(current[i])} (reps holds the value at extraction)"
        ),
    )
    # replaying a broken chain is still defined: a gap in the export, not unusable data
    return [Problem(p.table, p.row, p.column, p.kind, p.message, "warning") for p in problems]


def _texts(values: pd.Series) -> np.ndarray:
    """Values as Python strings, missing as ``None`` (so ``==`` compares them exactly)."""
    out = values.astype("object").to_numpy(copy=True)
    missing = pd.isna(out)
    out[missing] = None
    out[~missing] = [str(v) for v in out[~missing]]
    return out
