"""Shaping adapter output into contract frames: required columns first, contract dtypes.

Adapters build plain frames and call :func:`conform` once per table, so every adapter
returns the same dtypes as :mod:`spm_ml.data.parse` (text ``str``, naive ``datetime64[ns]``,
``float64``, ``Int64``) and never has to remember the column order.
"""

from __future__ import annotations

import pandas as pd

from spm_ml.data.parse import dtype_of, empty_frame
from spm_ml.data.problems import Problem
from spm_ml.data.schema import TABLES
from spm_ml.errors import SchemaError


def empty_table(name: str) -> pd.DataFrame:
    """A zero-row frame of contract table ``name`` with its columns and dtypes."""
    return empty_frame(TABLES[name])


def conform(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the contract columns of ``name`` first, cast, and its extras after.

    Casting here is for values the adapter has already parsed; it is not a parser.
    A missing required column is a bug in the adapter, reported as :class:`SchemaError`.
    """
    schema = TABLES[name]
    missing = [c for c in schema.column_names if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"adapter output for table {name!r} lacks required column(s) {missing}",
            [
                Problem(name, "-", c, "missing_column", "adapter did not produce it")
                for c in missing
            ],
        )
    out = pd.DataFrame(
        {c.name: frame[c.name].astype(dtype_of(c)) for c in schema.columns}, index=frame.index
    )
    for extra in frame.columns:
        if extra not in out.columns:
            out[extra] = frame[extra]
    return out.reset_index(drop=True)


def row_problems(
    problems: list[Problem],
    file: str,
    frame: pd.DataFrame,
    mask: pd.Series,
    column: str,
    kind: str,
    what: str,
    *,
    key: str | None = None,
) -> None:
    """Append one :class:`Problem` per row of CSV ``file`` where ``mask`` holds.

    Rows are named by CSV line (the header is line 1; ``frame`` must still have the
    ``RangeIndex`` of :func:`pandas.read_csv`) and, when ``key`` is given, by that column.
    """
    for position in mask.to_numpy(dtype=bool).nonzero()[0]:
        row = f"line {position + 2}"
        if key is not None and key != column:
            row += f" ({key}={frame[key].iat[position]})"
        value = frame[column].iat[position] if column in frame.columns else None
        problems.append(Problem(file, row, column, kind, f"value {show(value)} {what}"))


def raise_problems(problems: list[Problem], where: str) -> None:
    """Raise :class:`SchemaError` carrying every problem, naming the first few, if any."""
    if not problems:
        return
    first = "; ".join(str(p) for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    raise SchemaError(
        f"{where}: {len(problems)} value(s) cannot be mapped to the data contract: {first}{more}. "
        "Fix those cells in the export (rows are never dropped).",
        problems,
    )


def show(value: object) -> str:
    """A cell for an error message: quoted, shortened, ``<empty>`` for blanks."""
    if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
        return "<empty>"
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")
