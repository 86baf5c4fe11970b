"""Reading a sales organisation from where it lives, and writing one out.

A *source* is one of:

- a folder holding one file per table, named after it (``deals.parquet`` or ``deals.csv``);
- a SQLAlchemy URL (``sqlite:///crm.db``, ``postgresql://host/db``) with one table per name;
- ``ADAPTER:PATH`` for a real export with its own layout (``maven-crm:../data/maven_crm``).

Reading is deliberately dumb: CSV cells arrive as text, so that parsing happens once, in
:mod:`spm_ml.data.parse`, where every value that does not fit is reported with its line
instead of being coerced or dropped.  :func:`load_tables` is the front door.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from spm_ml.data.problems import Problem, errors_only
from spm_ml.data.schema import OPTIONAL_TABLES, TABLE_NAMES
from spm_ml.data.tables import Tables
from spm_ml.errors import SchemaError, SourceError

logger = logging.getLogger(__name__)

Origin = Literal["csv", "parquet", "sql", "frame"]
REQUIRED_TABLES = ("reps", "accounts", "deals")
"""Tables a source must have; the others may be absent (reported as a warning, except the
:data:`~spm_ml.data.schema.OPTIONAL_TABLES`, whose absence means "no changes recorded")."""
METADATA_FILE = "_metadata.json"
"""Written beside the tables; holds ``extracted_at`` so as-of checks know the data's date."""


@dataclass
class RawTable:
    """A table as read, before parsing; ``origin`` decides how rows are named in problems."""

    name: str
    frame: pd.DataFrame
    origin: Origin
    location: str

    def row_label(self, position: int) -> str:
        """Human row reference for the 0-based ``position``: CSV line or 1-based row."""
        if self.origin == "csv":
            return f"line {position + 2}"
        return f"row {position + 1}"


@dataclass
class RawSource:
    """Everything read from a source: raw tables, problems met while reading, metadata."""

    tables: dict[str, RawTable]
    problems: list[Problem]
    extracted_at: pd.Timestamp | None
    description: str


def is_sql_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def read_source(source: str | Path) -> RawSource | Tables:
    """Read ``source`` without interpreting values.

    Returns a :class:`RawSource` for folders and SQL, or ready :class:`Tables` for adapters
    (which parse their own formats).  Raises :class:`SourceError` when the source as a whole
    cannot be reached (no such folder, database down); per-table trouble becomes problems.
    """
    text = str(source)
    adapter = _adapter_for(text)
    if adapter is not None:
        name, path = text.split(":", 1)
        return adapter(path)
    if is_sql_url(text):
        return _read_sql(text)
    return _read_folder(Path(text))


def load_tables(source: str | Path, *, as_of: pd.Timestamp | None = None) -> Tables:
    """Read, parse and validate ``source``; return :class:`Tables` or raise :class:`SchemaError`.

    The raised error carries every problem found (``err.problems``), not just the first.
    """
    tables, problems = check_source(source, as_of=as_of)
    errors = errors_only(problems)
    if errors or tables is None:
        raise SchemaError(
            f"{source}: {len(errors)} problem(s) break the data contract; first: {errors[0]}",
            problems,
        )
    return tables


def check_source(
    source: str | Path, *, as_of: pd.Timestamp | None = None
) -> tuple[Tables | None, list[Problem]]:
    """Read, parse and validate; return the tables (if parseable) and every problem found."""
    from spm_ml.data.parse import parse_source
    from spm_ml.data.validate import NON_EMPTY_TABLES, validate_tables

    raw = read_source(source)
    non_empty = NON_EMPTY_TABLES
    if isinstance(raw, Tables):
        from spm_ml.data.adapters import NON_EMPTY_TABLES as BY_ADAPTER

        tables, problems = raw, []
        non_empty = BY_ADAPTER.get(str(source).split(":", 1)[0], non_empty)
    else:
        tables, problems = parse_source(raw)
    if tables is None:
        return None, problems
    if as_of is not None:
        tables = tables.replace(extracted_at=pd.Timestamp(as_of))
    return tables, problems + validate_tables(tables, non_empty=non_empty)


def write_tables(tables: Tables, out: str | Path, *, format: str = "parquet") -> list[Path]:
    """Write one file per table into folder ``out`` (``parquet`` or ``csv``), plus metadata."""
    if format not in ("parquet", "csv"):
        raise SourceError(f"unknown format {format!r}: use 'parquet' or 'csv'")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.items():
        path = folder / f"{name}.{format}"
        for other in ("parquet", "csv"):
            stale = folder / f"{name}.{other}"
            if other != format and stale.exists():
                stale.unlink()  # two files for one table would make the folder ambiguous
        if format == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
        written.append(path)
    meta = {
        "extracted_at": None if tables.extracted_at is None else tables.extracted_at.isoformat()
    }
    (folder / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return written


def write_tables_sql(tables: Tables, url: str) -> None:
    """Write the tables into a SQL database (replacing tables of the same names)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for name, frame in tables.items():
                frame.to_sql(name, conn, if_exists="replace", index=False)
    finally:
        engine.dispose()


def _adapter_for(source: str):
    if ":" not in source or is_sql_url(source):
        return None
    prefix = source.split(":", 1)[0]
    if len(prefix) == 1:  # a Windows drive letter, not an adapter
        return None
    from spm_ml.data.adapters import ADAPTERS

    if prefix not in ADAPTERS:
        raise SourceError(
            f"unknown adapter {prefix!r} in source {source!r}; known: {', '.join(ADAPTERS)}"
        )
    return ADAPTERS[prefix]


def _read_folder(folder: Path) -> RawSource:
    if not folder.exists():
        raise SourceError(f"source folder {folder} does not exist")
    if not folder.is_dir():
        raise SourceError(
            f"source {folder} is a file; pass the folder holding one file per table "
            f"({', '.join(TABLE_NAMES)}), or a SQLAlchemy URL"
        )
    tables: dict[str, RawTable] = {}
    problems: list[Problem] = []
    for name in TABLE_NAMES:
        candidates = [folder / f"{name}.{ext}" for ext in ("parquet", "csv")]
        present = [p for p in candidates if p.exists()]
        if len(present) > 1:
            problems.append(
                Problem(name, "-", "-", "ambiguous_file", "both .parquet and .csv exist; keep one")
            )
            continue
        if not present:
            if name in OPTIONAL_TABLES:
                continue  # parsing gives it an empty frame: nothing recorded
            others = sorted(p.name for p in folder.glob(f"{name}.*"))
            hint = (
                f" (found {', '.join(others)}: only .csv and .parquet are read)" if others else ""
            )
            severity = "error" if name in REQUIRED_TABLES else "warning"
            problems.append(
                Problem(
                    name,
                    "-",
                    "-",
                    "missing_table",
                    f"no {name}.csv or {name}.parquet{hint}",
                    severity,
                )
            )
            continue
        path = present[0]
        try:
            tables[name] = _read_file(name, path)
        except SourceError as err:
            problems.append(Problem(name, "-", "-", "unreadable_file", str(err)))
    return RawSource(tables, problems, _read_metadata(folder), str(folder))


def _read_file(name: str, path: Path) -> RawTable:
    if path.stat().st_size == 0:
        raise SourceError(f"{path.name} is an empty file (0 bytes); expected a header row at least")
    if path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types for a non-Parquet file
            raise SourceError(
                f"{path.name} is not a readable Parquet file ({type(err).__name__}); "
                "was it saved as CSV with a .parquet name?"
            ) from err
        return RawTable(name, frame, "parquet", str(path))
    _check_utf8(path)
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig"
        )
    except pd.errors.ParserError as err:
        raise SourceError(f"{path.name} is not valid CSV: {err}") from err
    except pd.errors.EmptyDataError as err:
        raise SourceError(f"{path.name} has no header row") from err
    return RawTable(name, frame, "csv", str(path))


def _check_utf8(path: Path) -> None:
    """Fail with the line of the first non-UTF-8 byte rather than a codec traceback."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise SourceError(
            f"{path.name} is not UTF-8: byte 0x{data[err.start]:02x} at line {line}; "
            "re-export the file as UTF-8"
        ) from err
    if b"\x00" in data[:4096]:
        raise SourceError(f"{path.name} contains NUL bytes: a binary file, not CSV")


def _read_metadata(folder: Path) -> pd.Timestamp | None:
    path = folder / METADATA_FILE
    if not path.exists():
        return None
    value = json.loads(path.read_text()).get("extracted_at")
    return None if value is None else pd.Timestamp(value)


def _read_sql(url: str) -> RawSource:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except Exception as err:  # bad URL, missing driver
        raise SourceError(f"cannot use SQL source {_redact(url)}: {err}") from err
    tables: dict[str, RawTable] = {}
    problems: list[Problem] = []
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for name in TABLE_NAMES:
                if name not in present:
                    if name in OPTIONAL_TABLES:
                        continue
                    severity = "error" if name in REQUIRED_TABLES else "warning"
                    problems.append(
                        Problem(
                            name,
                            "-",
                            "-",
                            "missing_table",
                            "no such table in the database",
                            severity,
                        )
                    )
                    continue
                frame = pd.read_sql_table(name, conn)
                tables[name] = RawTable(name, frame, "sql", f"{_redact(url)}#{name}")
    except sa.exc.OperationalError as err:
        raise SourceError(
            f"SQL source {_redact(url)} is unreachable: {str(err.orig).strip()}"
        ) from err
    except sa.exc.SQLAlchemyError as err:
        raise SourceError(f"SQL source {_redact(url)} failed: {err}") from err
    finally:
        engine.dispose()
    return RawSource(tables, problems, None, _redact(url))


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
