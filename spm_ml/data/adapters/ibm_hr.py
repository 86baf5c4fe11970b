"""Adapter for IBM's "HR Analytics Employee Attrition & Performance" sample file.

One row per employee, a cross-sectional snapshot: no dates, only tenures in whole years
and the ``Attrition`` Yes/No target.  The adapter turns it into a reps table (everything
else empty) by placing the snapshot at ``as_of``; the rules are in ``docs/adapters.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.data.adapters._frames import conform, empty_table, raise_problems, row_problems
from spm_ml.data.problems import Problem
from spm_ml.data.schema import REPS, TABLE_NAMES
from spm_ml.data.tables import Tables
from spm_ml.errors import SchemaError, SourceError

logger = logging.getLogger(__name__)

FILE_NAME = "WA_Fn-UseC_-HR-Employee-Attrition.csv"
"""The file's published name; a folder given as path is searched for it."""

REQUIRED_COLUMNS = ("EmployeeNumber", "Department", "JobRole", "YearsAtCompany", "Attrition")
MAPPED_COLUMNS = {"EmployeeNumber": "rep_id", "Department": "team", "JobRole": "role"}
"""Columns that become contract columns and are therefore not repeated as extras."""

UNKNOWN_REGION = "unknown"
DEFAULT_AS_OF = pd.Timestamp("2024-01-01")

NON_FEATURE_COLUMNS: dict[str, tuple[str, ...]] = {
    "reps": ("Attrition", "exit_date_imputed", "hire_date_imputed"),
}
"""Extras that must never become model features: the target and the flag derived from it."""


def read_ibm_hr_frame(path: str | Path) -> pd.DataFrame:
    """Read the IBM HR attrition CSV as it is, for generic use.

    The file starts with a UTF-8 byte-order mark; read naively, the first column is named
    ``'\\ufeffAge'`` instead of ``'Age'``.  Numbers keep their ``int64`` dtype, text is ``str``.

    Parameters
    ----------
    path
        The CSV file, or a folder holding ``WA_Fn-UseC_-HR-Employee-Attrition.csv``.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / FILE_NAME
    if not path.is_file():
        raise SourceError(f"{path}: not found; expected the IBM HR attrition CSV ({FILE_NAME})")
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"{path}: cannot be read as UTF-8 CSV ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def load_ibm_hr(
    path: str | Path,
    *,
    department: str | None = "Sales",
    as_of: pd.Timestamp | str = DEFAULT_AS_OF,
    exit_reason: str | None = None,
) -> Tables:
    """Map the IBM HR attrition file to the contract's reps table.

    Parameters
    ----------
    path
        The CSV file, or a folder holding it.
    department
        Keep only employees of this ``Department`` (``None`` keeps all 1,470).  The default,
        ``'Sales'``, keeps the 446 sales employees.
    as_of
        The date the snapshot describes: leavers exit on it and hire dates count back from it
        by ``YearsAtCompany`` whole years.  Becomes ``extracted_at``.
    exit_reason
        ``exit_reason`` given to leavers; ``None`` (the default) because the file does not
        say whether leaving was voluntary.  Pass ``'voluntary'`` to assume it.

    Returns
    -------
    Tables
        reps with rep_id = ``EmployeeNumber``, team = ``Department``, role = ``JobRole``,
        every other column as an extra (``Attrition`` unchanged), and flags
        ``hire_date_imputed``/``exit_date_imputed``; the other seven tables empty.

    Raises
    ------
    SourceError
        The file is missing or unreadable.
    SchemaError
        A required column is missing, a value does not fit (duplicate or non-integer
        ``EmployeeNumber``, negative ``YearsAtCompany``, ``Attrition`` not Yes/No), or
        ``department`` matches no row.
    """
    if exit_reason is not None and exit_reason not in REPS.column("exit_reason").values:
        raise ValueError(
            f"exit_reason must be None, 'voluntary' or 'involuntary', not {exit_reason!r}"
        )
    as_of = pd.Timestamp(as_of)
    if as_of.tz is not None:
        as_of = as_of.tz_convert("UTC").tz_localize(None)
    raw = read_ibm_hr_frame(path)
    file = FILE_NAME if Path(path).is_dir() else Path(path).name
    frame = _checked(raw, file)
    if department is not None:
        keep = frame["Department"] == department
        if not keep.any():
            found = ", ".join(sorted(frame["Department"].dropna().unique()))
            raise SchemaError(
                f"{file}: no employee in Department {department!r}; found: {found}",
                [Problem(file, "-", "Department", "no_rows", f"no row equals {department!r}")],
            )
        frame = frame[keep].reset_index(drop=True)

    years = frame["YearsAtCompany"].astype(int)
    left = frame["Attrition"] == "Yes"
    reps = pd.DataFrame(
        {
            "rep_id": frame["EmployeeNumber"].astype("int64").astype("str"),
            "manager_id": np.nan,
            "team": frame["Department"],
            "region": UNKNOWN_REGION,
            "role": frame["JobRole"],
            "hire_date": [as_of - pd.DateOffset(years=int(n)) for n in years],
            "exit_date": pd.Series(as_of, index=frame.index).where(left),
            "exit_reason": pd.Series(exit_reason, index=frame.index, dtype="object").where(left),
        }
    )
    extras = frame.drop(columns=list(MAPPED_COLUMNS))
    reps = pd.concat([reps, extras], axis=1)
    reps["hire_date_imputed"] = True
    reps["exit_date_imputed"] = left
    logger.info(
        "ibm-hr: %d employees (department %s), %d leavers, as_of %s",
        len(reps),
        department if department is not None else "all",
        int(left.sum()),
        as_of.date(),
    )
    frames = {name: empty_table(name) for name in TABLE_NAMES}
    frames["reps"] = conform("reps", reps)
    return Tables(**frames, extracted_at=as_of, non_feature_columns=NON_FEATURE_COLUMNS)


def _checked(raw: pd.DataFrame, file: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"{file}: missing column(s) {', '.join(missing)}; is this the IBM HR attrition file?",
            [
                Problem(file, "-", c, "missing_column", "required column is missing")
                for c in missing
            ],
        )
    problems: list[Problem] = []
    key = "EmployeeNumber"
    frame = raw.copy()
    for column in ("EmployeeNumber", "YearsAtCompany"):
        numbers = pd.to_numeric(raw[column], errors="coerce")
        bad = numbers.isna() | (numbers < 0) | (numbers != np.floor(numbers))
        row_problems(
            problems, file, raw, bad, column, "not_integer", "is not a whole number >= 0", key=key
        )
        frame[column] = numbers
    duplicated = frame[key].duplicated() & frame[key].notna()
    row_problems(problems, file, raw, duplicated, key, "duplicate_id", "appears twice")
    for column in ("Department", "JobRole"):
        blank = raw[column].isna() | (raw[column].astype("str").str.strip() == "")
        row_problems(problems, file, raw, blank, column, "missing_value", "is required", key=key)
    bad_target = ~raw["Attrition"].isin(["Yes", "No"])
    row_problems(problems, file, raw, bad_target, "Attrition", "bad_enum", "is not Yes/No", key=key)
    raise_problems(problems, file)
    return frame
