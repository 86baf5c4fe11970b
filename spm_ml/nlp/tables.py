"""Read and write the CSV or Parquet tables the sentiment commands take and produce."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from spm_ml.errors import SchemaError, SourceError

logger = logging.getLogger(__name__)

__all__ = ["read_table", "require_column", "write_table"]

_CSV = {".csv", ".txt", ".tsv"}
_PARQUET = {".parquet", ".pq"}


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _CSV:
        return "csv"
    if suffix in _PARQUET:
        return "parquet"
    raise SchemaError(f"{path}: unknown table format {suffix!r}; use .csv or .parquet.")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read ``path`` by extension; undecodable bytes in a CSV become U+FFFD, not an error."""
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise SourceError(f"Table {path} does not exist.")
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        return pd.read_csv(path, sep=sep, encoding="utf-8", encoding_errors="replace")
    except (ValueError, OSError) as exc:
        # The exception text of a parser can quote a line of the file: keep only its type.
        raise SourceError(f"Cannot read {path} as {kind}: {type(exc).__name__}.") from None


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` by extension (creating the folder)."""
    path = Path(path)
    kind = _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    return path


def require_column(frame: pd.DataFrame, column: str, table: str | Path) -> None:
    """Raise :class:`SchemaError` naming the missing column and the ones available."""
    if column not in frame.columns:
        raise SchemaError(
            f"{table}: no column {column!r}; available columns are {list(frame.columns)[:30]}."
        )
