"""``Problem``: one violation of the data contract, located to table, row and column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, precise enough to fix without a debugger.

    ``row`` says where: ``"line 17"`` for a CSV (header is line 1), ``"row 17"`` for Parquet
    or SQL (1-based), followed by the row's id when it has one; ``"-"`` for table-level
    problems.  ``kind`` is a stable machine-readable code (``missing_column``,
    ``duplicate_id``, ``dangling_reference``...).  Errors make a source unusable; warnings
    are reported and the data is still used.
    """

    table: str
    row: str
    column: str
    kind: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.table} | {self.row} | {self.column} | {self.kind}: {self.message}"


def problems_frame(problems: list[Problem]) -> pd.DataFrame:
    """Problems as a frame (for ``--problems-out`` and tests)."""
    columns = ["severity", "table", "row", "column", "kind", "message"]
    return pd.DataFrame([{c: getattr(p, c) for c in columns} for p in problems], columns=columns)


def errors_only(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
