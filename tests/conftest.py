"""Shared fixtures: a tiny hand-built organisation and isolated MLflow stores."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from spm_ml.data.io import write_tables
from spm_ml.data.parse import empty_frame
from spm_ml.data.schema import TABLES
from spm_ml.data.tables import Tables

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _typed(name: str, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    template = empty_frame(TABLES[name])
    for column in template.columns:
        frame[column] = (
            frame[column].astype(template[column].dtype) if len(frame) else template[column]
        )
    return frame


def tiny_tables() -> Tables:
    """Five reps, three accounts, four deals: small enough to reason about by hand."""
    t = pd.Timestamp
    reps = _typed(
        "reps",
        [
            {
                "rep_id": "M1",
                "manager_id": None,
                "team": "east",
                "region": "EU",
                "role": "manager",
                "hire_date": t("2022-01-01"),
                "exit_date": None,
                "exit_reason": None,
            },
            {
                "rep_id": "R1",
                "manager_id": "M1",
                "team": "east",
                "region": "EU",
                "role": "AE",
                "hire_date": t("2023-01-01"),
                "exit_date": None,
                "exit_reason": None,
            },
            {
                "rep_id": "R2",
                "manager_id": "M1",
                "team": "east",
                "region": "EU",
                "role": "AE",
                "hire_date": t("2023-02-01"),
                "exit_date": t("2024-05-01"),
                "exit_reason": "voluntary",
            },
        ],
    )
    accounts = _typed(
        "accounts",
        [
            {
                "account_id": "A1",
                "industry": "retail",
                "employees": 120,
                "annual_revenue": 2e7,
                "region": "EU",
            },
            {
                "account_id": "A2",
                "industry": "tech",
                "employees": 5000,
                "annual_revenue": 9e8,
                "region": "EU",
            },
        ],
    )
    deals = _typed(
        "deals",
        [
            {
                "deal_id": "D1",
                "rep_id": "R1",
                "account_id": "A1",
                "product": "core",
                "amount": 12000.0,
                "created_at": t("2024-01-10"),
                "expected_close_at": t("2024-02-20"),
                "closed_at": t("2024-02-25"),
                "stage": "closed_won",
                "outcome": "won",
            },
            {
                "deal_id": "D2",
                "rep_id": "R2",
                "account_id": "A2",
                "product": "suite",
                "amount": 150000.0,
                "created_at": t("2024-01-15"),
                "expected_close_at": t("2024-06-01"),
                "closed_at": t("2024-04-01"),
                "stage": "closed_lost",
                "outcome": "lost",
            },
            {
                "deal_id": "D3",
                "rep_id": "R1",
                "account_id": "A2",
                "product": "core",
                "amount": 30000.0,
                "created_at": t("2024-05-01"),
                "expected_close_at": t("2024-07-15"),
                "closed_at": None,
                "stage": "proposal",
                "outcome": None,
            },
        ],
    )
    history = _typed(
        "deal_history",
        [
            {
                "deal_id": "D1",
                "changed_at": t("2024-01-10"),
                "field": "stage",
                "old_value": None,
                "new_value": "prospecting",
            },
            {
                "deal_id": "D1",
                "changed_at": t("2024-02-25"),
                "field": "stage",
                "old_value": "prospecting",
                "new_value": "closed_won",
            },
            {
                "deal_id": "D2",
                "changed_at": t("2024-01-15"),
                "field": "stage",
                "old_value": None,
                "new_value": "prospecting",
            },
            {
                "deal_id": "D2",
                "changed_at": t("2024-04-01"),
                "field": "stage",
                "old_value": "prospecting",
                "new_value": "closed_lost",
            },
            {
                "deal_id": "D3",
                "changed_at": t("2024-05-01"),
                "field": "stage",
                "old_value": None,
                "new_value": "proposal",
            },
        ],
    )
    activities = _typed(
        "activities",
        [
            {
                "activity_id": "X1",
                "rep_id": "R1",
                "deal_id": "D1",
                "account_id": "A1",
                "type": "call",
                "occurred_at": t("2024-01-12"),
                "duration_min": 30.0,
            },
            {
                "activity_id": "X2",
                "rep_id": "R1",
                "deal_id": None,
                "account_id": "A2",
                "type": "task",
                "occurred_at": t("2024-05-02"),
                "duration_min": None,
            },
        ],
    )
    emails = _typed(
        "emails",
        [
            {
                "email_id": "E1",
                "deal_id": "D1",
                "rep_id": "R1",
                "direction": "inbound",
                "sent_at": t("2024-01-20"),
                "subject": "Re: pricing",
                "body": "Sounds good, let's go.",
            },
        ],
    )
    quotas = _typed(
        "quotas",
        [
            {
                "rep_id": "R1",
                "period_start": t("2024-01-01"),
                "period_end": t("2024-03-31"),
                "quota_amount": 100000.0,
            },
        ],
    )
    compensation = _typed(
        "compensation",
        [
            {
                "rep_id": "R1",
                "period_start": t("2024-01-01"),
                "period_end": t("2024-03-31"),
                "base_pay": 20000.0,
                "target_incentive": 15000.0,
                "paid_incentive": 4000.0,
            },
        ],
    )
    return Tables(
        reps,
        accounts,
        deals,
        history,
        activities,
        emails,
        quotas,
        compensation,
        extracted_at=t("2024-06-01"),
    )


@pytest.fixture
def tiny() -> Tables:
    return tiny_tables()


@pytest.fixture
def tiny_csv_dir(tmp_path: Path) -> Path:
    out = tmp_path / "org"
    write_tables(tiny_tables(), out, format="csv")
    return out


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory) -> Path:
    """A work folder after a real (small) quickstart: data, MLflow store, champion, scores."""
    from spm_ml.quickstart import run_quickstart

    work = tmp_path_factory.mktemp("quickstart")
    run_quickstart(work, reps=20, months=12, seed=0)
    return work


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (``apt-get install chromium chromium-driver``; ``.ci/run`` installs it)."""


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Playwright through ``executable_path`` (no browser
    download), one per test module: Playwright's sync API runs an event loop in the main
    thread while it is open, so it must be closed before other modules' tests call
    ``asyncio.run`` (and only one may be open at a time)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium chromium-driver")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
"""The local PostgreSQL server (trust auth) of the data and batch tests."""


def _postgres_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0


@pytest.fixture(scope="session")
def postgres() -> str:
    """The URL of PostgreSQL on 127.0.0.1:5432, started here if it is down; skips with the
    reason when it is not installed or will not start."""
    if shutil.which("pg_isready") is None or shutil.which("pg_ctlcluster") is None:
        pytest.skip("PostgreSQL is not installed here (no pg_isready / pg_ctlcluster)")
    if not _postgres_ready():
        version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True)
        subprocess.run(
            [
                "pg_ctlcluster",
                "--skip-systemctl-redirect",
                version.stdout.split()[0],
                "main",
                "start",
            ],
            check=False,
        )
    if not _postgres_ready():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is installed but could not be started")
    return POSTGRES_URL
