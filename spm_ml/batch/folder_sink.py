"""The folder target: ``deal_scores.parquet``, ``rep_risk.parquet`` and ``manifest.json``.

While a job runs, its chunks live in ``TARGET/.spm-batch-partial/``: each chunk's rows as a
Parquet part, then its record (JSON), each written to a temporary name and renamed, so a
process killed at any instant leaves either a whole chunk or none (a record never points
at a half-written part: the part is renamed first).  :meth:`FolderSink.commit` joins the
parts into the output files (again renamed into place), writes the manifest last and
removes the partial folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from spm_ml.batch.sinks import TABLE_KEYS, ChunkRecord, JobState
from spm_ml.errors import SpmMlError

PARTIAL = ".spm-batch-partial"
STATE = "state.json"
MANIFEST = "manifest.json"


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary path)``, flush it to disk, then rename it to ``path``: a
    reader (or a resumed job) sees the old file or the whole new one, never a part."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda p: p.write_text(text))


class FolderSink:
    """Parquet files and a manifest in one folder (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.partial = self.folder / PARTIAL
        self.description = str(self.folder)

    def check(self) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise SpmMlError(f"--out {self.folder} is a file; give a folder or a SQL URL")
        existing = next(p for p in (self.folder, *self.folder.parents) if p.exists())
        if not os.access(existing, os.W_OK | os.X_OK):
            raise SpmMlError(f"--out {self.folder}: {existing} is not writable")

    def start(self, state: JobState, resume: bool) -> dict[tuple[str, int], ChunkRecord]:
        state_file = self.partial / STATE
        if resume and state_file.exists():
            state.check_resumable(JobState.from_json(state_file.read_text()), str(self.partial))
            records = [
                ChunkRecord.from_json(p.read_text())
                for p in sorted(self.partial.glob("*.json"))
                if p.name != STATE
            ]
            return {r.key: r for r in records}
        shutil.rmtree(self.partial, ignore_errors=True)  # an unfinished other job, forgotten
        self.partial.mkdir(parents=True)
        write_text_atomically(state_file, state.to_json())
        return {}

    def _part(self, table: str, chunk: int) -> Path:
        return self.partial / f"{table}-{chunk:05d}.parquet"

    def write_chunk(self, record: ChunkRecord, rows: pd.DataFrame) -> None:
        write_atomically(
            self._part(record.table, record.chunk), lambda p: rows.to_parquet(p, index=False)
        )
        # the record last: it is what says the chunk is done
        write_text_atomically(
            self._part(record.table, record.chunk).with_suffix(".json"), record.to_json()
        )

    def commit(self, records: list[ChunkRecord], manifest: dict) -> None:
        written = sorted({r.table for r in records})
        for table in written:
            chunks = sorted(r.chunk for r in records if r.table == table)
            frame = pd.concat(
                [pd.read_parquet(self._part(table, c)) for c in chunks], ignore_index=True
            )
            write_atomically(
                self.folder / f"{table}.parquet", lambda p, f=frame: f.to_parquet(p, index=False)
            )
        for table in set(TABLE_KEYS) - set(written):  # an earlier run's output, not this one's
            (self.folder / f"{table}.parquet").unlink(missing_ok=True)
        write_text_atomically(self.folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(self.partial, ignore_errors=True)
