"""The batch job's outputs read back for the manager's page: one folder of ``spm-ml batch``
(``deal_scores``, ``rep_risk``, ``forecast`` and ``manifest.json``), never live models."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spm_ml.errors import SpmMlError

MANIFEST = "manifest.json"
TABLES = ("deal_scores", "rep_risk", "forecast")
PAGE_COLUMNS = {
    "deal_scores": ("probability_before", "close_date_pushes", "close_date_push_days"),
    "rep_risk": ("coaching", "coaching_json"),
}
"""Columns the batch writes for the page since issue 18: a run written before lacks them."""


class ReportError(SpmMlError, LookupError):
    """The page cannot be built: no batch output where named, or an unknown manager."""


@dataclass(frozen=True)
class BatchOutputs:
    """One batch run's rows and manifest."""

    folder: Path
    manifest: dict
    deals: pd.DataFrame
    reps: pd.DataFrame
    forecast: pd.DataFrame
    """Empty when no period was open at the batch's as-of."""

    @property
    def as_of(self) -> pd.Timestamp:
        return pd.Timestamp(self.manifest["as_of"])

    def managers(self) -> list[str]:
        """Every manager with at least one rep in the run, sorted."""
        return sorted(self.reps["manager_id"].dropna().astype(str).unique())


def read_batch_outputs(folder: str | Path) -> BatchOutputs:
    """The batch outputs in ``folder``; :class:`ReportError` naming what is missing."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise ReportError(
            f"{folder}: no {MANIFEST}, so no finished batch run there; run "
            f"`spm-ml batch --out {folder} --as-of DATE` first"
        )
    manifest = json.loads(manifest_path.read_text())
    frames = {}
    for table in TABLES:
        path = folder / f"{table}.parquet"
        if path.exists():
            frames[table] = pd.read_parquet(path)
        elif table == "forecast":  # not written when no period is open at as-of
            frames[table] = pd.DataFrame(columns=["level", "id", "team"])
        else:
            raise ReportError(f"{folder}: {path.name} is missing from the batch run")
        missing = [c for c in PAGE_COLUMNS.get(table, ()) if c not in frames[table]]
        if missing:
            raise ReportError(
                f"{folder}: {path.name} has no {', '.join(missing)}: the run was written by "
                f"an older spm-ml; run `spm-ml batch --out {folder}` again"
            )
    return BatchOutputs(
        folder, manifest, frames["deal_scores"], frames["rep_risk"], frames["forecast"]
    )


def fingerprint(folder: str | Path) -> tuple[str, float] | None:
    """What identifies the run in ``folder`` now (its manifest's fingerprint and time), so a
    reader can keep the rows until a new run is published; ``None`` without a run."""
    path = Path(folder) / MANIFEST
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path.resolve()), stat.st_mtime_ns
