"""Files that several processes share: an exclusive lock and whole-file atomic writes.

The default-model folder and the email-score cache are read and written by every pipeline
(quickstart, training, batch, each service worker).  A lock serialises writers, so one
writer's entries are not lost under another's; writing to a temporary file beside the target
and renaming it into place means a reader, or the next run after a crash, never sees half a
file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

__all__ = ["file_lock", "write_parquet_atomic"]


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: the atomic rename alone still prevents torn reads
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (without its index) to ``path`` all at once or not at all.

    The bytes go to a temporary file in the same folder (same file system, so the rename is
    atomic), are flushed to disk, and replace ``path`` in one ``os.replace``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp makes the file private (0600); keep the mode a plain write would give,
            # so a service account that could read the old file can read the new one.
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
            frame.to_parquet(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
