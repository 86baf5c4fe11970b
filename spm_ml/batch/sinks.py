"""Where the batch job's rows go, chunk by chunk, so a killed job resumes without loss or
duplicates: the contract both sinks keep, and :func:`open_sink` choosing one for a target.

A job writes each chunk of rows as one atomic step (a file renamed into place, or one
transaction) together with its :class:`ChunkRecord`; the record is the proof the chunk is
done.  A resumed job (same :class:`JobState` fingerprint) skips the recorded chunks; the
final :meth:`Sink.commit` publishes every chunk at once (files renamed, or one transaction
that replaces the as-of's rows), so readers never see half a run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Protocol

import pandas as pd

from spm_ml.data.io import is_sql_url
from spm_ml.errors import SpmMlError

TABLE_KEYS: dict[str, str] = {"deal_scores": "deal_id", "rep_risk": "rep_id"}
"""Each output table and the id that, with ``as_of``, keys its rows.  The period forecast
joins here when :mod:`spm_ml.forecast` provides it (see :mod:`spm_ml.batch.job`)."""


@dataclass(frozen=True)
class JobState:
    """What identifies a run: a resumed run must have the same ``fingerprint``.

    ``parts`` are the fingerprint's ingredients (input digest, model versions, chunk size,
    code), kept so a refused resume can say which one changed.
    """

    as_of: pd.Timestamp
    fingerprint: str
    parts: dict

    def to_json(self) -> str:
        return json.dumps(
            {"as_of": self.as_of.isoformat(), "fingerprint": self.fingerprint, "parts": self.parts},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> JobState:
        body = json.loads(text)
        return cls(pd.Timestamp(body["as_of"]), body["fingerprint"], body["parts"])

    def check_resumable(self, pending: JobState, where: str) -> None:
        """Refuse to resume ``pending`` (found at ``where``) unless it is this very job."""
        if pending.fingerprint == self.fingerprint:
            return
        changed = sorted(
            k for k in {*self.parts, *pending.parts} if self.parts.get(k) != pending.parts.get(k)
        )
        raise SpmMlError(
            f"--resume: the unfinished job in {where} is not this one (as of "
            f"{pending.as_of.isoformat()}; changed: {', '.join(changed) or 'as_of'}); "
            "run without --resume to start over"
        )


@dataclass(frozen=True)
class ChunkRecord:
    """One written chunk: its table and number, rows, the ids that could not be scored
    (with why), the seconds it took, and counts the manifest reports (``facts``)."""

    table: str
    chunk: int
    rows: int
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    facts: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return (self.table, self.chunk)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ChunkRecord:
        return cls(**json.loads(text))


class Sink(Protocol):
    """A batch target: a folder of Parquet files or a SQL database."""

    description: str
    """The target for messages and the manifest (a URL without its password)."""

    def check(self) -> None:
        """Fail early (before any scoring) if the target cannot be written; writes nothing."""

    def start(self, state: JobState, resume: bool) -> dict[tuple[str, int], ChunkRecord]:
        """Begin ``state``'s job: with ``resume``, the chunks an interrupted run of the same
        job wrote (refused if the unfinished job differs); else forget any unfinished job."""

    def write_chunk(self, record: ChunkRecord, rows: pd.DataFrame) -> None:
        """Store one chunk's rows and its record in one atomic step."""

    def commit(self, records: list[ChunkRecord], manifest: dict) -> None:
        """Publish every chunk of the job and its manifest at once; forget the job's state."""


def open_sink(target: str) -> Sink:
    """The sink for ``target``: a SQLAlchemy URL, or else a folder path."""
    if is_sql_url(target):
        from spm_ml.batch.sql_sink import SqlSink

        return SqlSink(target)
    from pathlib import Path

    from spm_ml.batch.folder_sink import FolderSink

    return FolderSink(Path(target))


def check_columns(table: str, have: list[str], want: list[str], where: str) -> None:
    """An existing output table must have the columns this job writes, in any order."""
    if sorted(have) != sorted(want):
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        raise SpmMlError(
            f"table {table} in {where} has other columns than this job writes "
            f"(missing: {', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'}): "
            "write to another target, or drop the table if its rows are no longer needed"
        )
