"""Parsing raw tables into the contract's types, reporting every value that does not fit.

Nothing is coerced silently: a cell that is not a date, a number or a known enum value is a
:class:`~spm_ml.data.problems.Problem` naming its line and column, and the row is kept.
The output dtypes are the contract's: text as pandas ``str``, times as naive UTC
``datetime64``, ``float64`` amounts and nullable ``Int64`` counts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spm_ml.data.io import RawSource, RawTable
from spm_ml.data.problems import Problem
from spm_ml.data.schema import TABLES, Column, TableSchema
from spm_ml.data.tables import Tables

MAX_PROBLEMS_PER_CHECK = 1000
"""Beyond this many rows failing one check, one summary problem gives the total count."""

RowLabel = Callable[[int], str]


def parse_source(raw: RawSource) -> tuple[Tables | None, list[Problem]]:
    """Parse every table of ``raw``; ``None`` tables when any table cannot be used at all."""
    problems = list(raw.problems)
    frames: dict[str, pd.DataFrame] = {}
    usable = not any(p.severity == "error" for p in raw.problems)
    for name, schema in TABLES.items():
        table = raw.tables.get(name)
        if table is None:
            frames[name] = empty_frame(schema)
            continue
        frame, table_problems = parse_table(schema, table)
        problems += table_problems
        if frame is None:
            usable = False
        else:
            frames[name] = frame
    if not usable:
        return None, problems
    return Tables(**frames, extracted_at=raw.extracted_at), problems


def empty_frame(schema: TableSchema) -> pd.DataFrame:
    """A zero-row frame with the contract's columns and dtypes."""
    return pd.DataFrame({c.name: pd.Series([], dtype=dtype_of(c)) for c in schema.columns})


def dtype_of(column: Column) -> str:
    return {
        "id": "str",
        "string": "str",
        "enum": "str",
        "datetime": "datetime64[ns]",
        "float": "float64",
        "int": "Int64",
    }[column.kind]


def parse_table(schema: TableSchema, table: RawTable) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Parse one raw table; ``None`` when required columns are missing (it cannot be used)."""
    frame = table.frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in schema.column_names if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns[:12]))
        return None, [
            Problem(
                schema.name,
                "-",
                column,
                "missing_column",
                f"required column is missing (columns found: {found})",
            )
            for column in missing
        ]
    label = row_labeller(schema, table, frame)
    problems: list[Problem] = []
    parsed = {}
    for column in schema.columns:
        series, column_problems = parse_column(schema.name, column, frame[column.name], label)
        parsed[column.name] = series
        problems += column_problems
    extras = [c for c in frame.columns if c not in parsed]
    out = pd.DataFrame(parsed)
    for extra in extras:
        out[extra] = frame[extra]
    return out, problems


def row_labeller(schema: TableSchema, table: RawTable, frame: pd.DataFrame) -> RowLabel:
    """Label rows by position and, where the table has a single-column key, by id."""
    key = schema.primary_key[0] if len(schema.primary_key) == 1 else None
    ids = frame[key].astype("str") if key else None

    def label(position: int) -> str:
        where = table.row_label(position)
        if ids is not None and not pd.isna(ids.iat[position]):
            return f"{where} ({key}={ids.iat[position]})"
        return where

    return label


def parse_column(
    table: str, column: Column, raw: pd.Series, label: RowLabel
) -> tuple[pd.Series, list[Problem]]:
    """Parse one column by its kind; return the typed series and the rows that failed."""
    missing = _is_blank(raw)
    problems: list[Problem] = []
    if column.kind in ("id", "string", "enum"):
        series = _as_text(raw).where(~missing)
    elif column.kind == "datetime":
        series = _as_datetime(raw)
        bad = series.isna() & ~missing
        problems += _row_problems(
            table,
            column.name,
            "bad_datetime",
            bad,
            raw,
            label,
            "is not a date/time (expected ISO 8601, e.g. 2025-03-31 or 2025-03-31T14:05:00)",
        )
    else:
        series = pd.to_numeric(raw.where(~missing), errors="coerce").astype("float64")
        bad = series.isna() & ~missing
        problems += _row_problems(
            table, column.name, "not_numeric", bad, raw, label, "is not a number"
        )
        if column.kind == "int":
            fractional = series.notna() & (series != np.floor(series.fillna(0)))
            problems += _row_problems(
                table, column.name, "not_integer", fractional, raw, label, "is not a whole number"
            )
            series = series.where(~fractional).astype("Int64")
        if column.non_negative:
            negative = series.notna() & (series < 0)
            problems += _row_problems(
                table,
                column.name,
                "negative_value",
                negative,
                raw,
                label,
                "is negative; amounts and counts must be >= 0",
            )
    if column.kind == "enum" and column.extra_columns_of is None:
        # an enum open to another table's extra columns is checked by validation
        unknown = series.notna() & ~series.isin(column.values)
        problems += _row_problems(
            table,
            column.name,
            "bad_enum",
            unknown,
            raw,
            label,
            f"is not one of {', '.join(column.values)}",
        )
    if not column.nullable:
        problems += _row_problems(
            table,
            column.name,
            "missing_value",
            missing,
            raw,
            label,
            "is empty; this column is required in every row",
        )
    return series, problems


TRUE_TEXT = frozenset(["true", "1", "yes"])
FALSE_TEXT = frozenset(["false", "0", "no"])


def values_like(text: pd.Series, template: pd.Series) -> pd.Series:
    """History values (text) of a custom field, typed like its deals column ``template``.

    Numbers and dates parse as the column's kind (ISO 8601 dates), booleans from
    true/false/1/0/yes/no as floats 1.0/0.0; text stays text.  What does not parse becomes
    missing: validation reports such values, so features can trust the result.
    """
    dtype = template.dtype
    if pd.api.types.is_bool_dtype(dtype):
        lowered = (
            text.astype("object")
            .where(text.notna())
            .map(lambda v: v if v is None or pd.isna(v) else str(v).strip().lower())
        )
        return lowered.map(
            lambda v: 1.0 if v in TRUE_TEXT else 0.0 if v in FALSE_TEXT else np.nan
        ).astype("float64")
    if pd.api.types.is_numeric_dtype(dtype):
        return pd.to_numeric(text, errors="coerce").astype("float64")
    if pd.api.types.is_datetime64_any_dtype(dtype):
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
        return parsed.dt.tz_localize(None).astype("datetime64[ns]")
    return text.astype("str")


def _is_blank(raw: pd.Series) -> pd.Series:
    """Missing, empty or only whitespace (Arrow's definition, as pandas' ``str.strip``)."""
    blank = raw.isna()
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        text = pa.array(raw.astype("str").array)
        # whether the first character is not a space decides most rows: no text is copied
        # (stripping every email body first cost seconds on a few million emails)
        spaces = pc.or_kleene(pc.equal(pc.utf8_length(text), 0), pc.utf8_is_space(text))
        blank |= np.asarray(spaces.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return blank


def _as_text(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(raw):
        # ids stored as floats by a database or a spreadsheet: 17.0 means "17"
        whole = raw.dropna()
        if (whole == np.floor(whole)).all():
            return raw.map(lambda v: v if pd.isna(v) else str(int(v))).astype("str")
    return raw.astype("str").str.strip()


def _as_datetime(raw: pd.Series) -> pd.Series:
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw.astype("datetime64[ns]")
    text = raw.astype("str").str.strip()
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _row_problems(
    table: str,
    column: str,
    kind: str,
    mask: pd.Series,
    raw: pd.Series,
    label: RowLabel,
    what: str,
) -> list[Problem]:
    positions = np.flatnonzero(mask.to_numpy(dtype=bool))
    problems = [
        Problem(table, label(int(i)), column, kind, f"value {_show(raw.iat[i])} {what}")
        for i in positions[:MAX_PROBLEMS_PER_CHECK]
    ]
    if len(positions) > MAX_PROBLEMS_PER_CHECK:
        problems.append(
            Problem(
                table,
                "...",
                column,
                kind,
                f"{len(positions) - MAX_PROBLEMS_PER_CHECK:,} more rows fail this check "
                f"({len(positions):,} in all)",
            )
        )
    return problems


def _show(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "<empty>"
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")
