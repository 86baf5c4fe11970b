"""Fixtures of the manager-page tests: the quickstart's batch run (tests/conftest.py's
trained work folder, where ``run_quickstart`` runs ``spm-ml batch``), a synthetic run of the
the manager of the fixture organisation the pages are checked for, and where screenshots go
(the ``browser`` fixture is tests/conftest.py's, shared with tests/serving)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spm_ml.report import BatchOutputs, read_batch_outputs

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "report"
"""Full-page screenshots of the tests (ignored by git; CI keeps them as artifacts)."""


@pytest.fixture(scope="session")
def batch_dir(trained_workdir) -> Path:
    folder = trained_workdir / "outputs" / "batch"
    assert (folder / "manifest.json").exists(), "quickstart should have run the batch"
    return folder


@pytest.fixture(scope="session")
def outputs(batch_dir) -> BatchOutputs:
    return read_batch_outputs(batch_dir)


@pytest.fixture(scope="session")
def manager(outputs) -> str:
    """The manager with the most reps scored for quota risk (ties: the first id)."""
    scored = outputs.reps[outputs.reps["quota_status"] == "scored"]
    counts = scored["manager_id"].value_counts()
    return sorted(counts[counts == counts.max()].index)[0]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
