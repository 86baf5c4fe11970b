"""Fixtures of the manager-page tests: the quickstart's batch run (tests/conftest.py's
trained work folder, where ``run_quickstart`` runs ``spm-ml batch``), a synthetic run of the
same schema sized for the speed test, and headless Chromium (Debian's ``/usr/bin/chromium``
driven by Playwright; ``.ci/run`` installs it where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spm_ml.report import BatchOutputs, read_batch_outputs

CHROMIUM = Path("/usr/bin/chromium")
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


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium, one per session."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium chromium-driver")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()
