"""Email bodies are customer data: a marker planted in one must surface nowhere we write.

We plant the marker in an email of a small organisation, then train (CLI, verbose logs),
batch-score (quickstart's file and `spm-ml batch`), write the managers' pages, validate a
broken copy, and scan everything produced: terminal output, log records, the MLflow
database and artifacts, the email-score cache, the batch outputs and the pages.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from spm_ml import registry
from spm_ml.batch.deal_scores import score_open_deals_to_file
from spm_ml.cli import app
from spm_ml.data.io import load_tables, write_tables
from spm_ml.models.pyfunc import unwrap
from spm_ml.nlp.signals import with_email_scores
from spm_ml.scoring import DealScorer

MARKER = "ZEBRA-PRIVATE-7731"
pytestmark = pytest.mark.slow


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    from spm_ml.data.simulate import SimulationConfig, simulate

    tables = simulate(SimulationConfig(n_reps=10, months=8, seed=9)).tables
    emails = tables.emails.copy()
    inbound = emails.index[emails["direction"] == "inbound"][:5]
    emails.loc[inbound, "body"] = (
        f"We cannot go ahead. {MARKER} is our internal code name. " + emails.loc[inbound, "body"]
    )
    folder = tmp_path_factory.mktemp("planted")
    write_tables(tables.replace(emails=emails), folder, format="csv")
    assert _files_containing(folder, MARKER.encode())  # the marker really is in the input
    return folder


def test_marker_never_leaves_the_input(planted, tmp_path, caplog):
    work = tmp_path / "work"
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(
        app, ["-v", "train", "deal-win", "--data", str(planted), "--workdir", str(work)]
    )
    assert result.exit_code == 0, result.output
    assert MARKER not in result.output
    assert all(MARKER not in r.getMessage() for r in caplog.records)
    assert _files_containing(work, MARKER.encode()) == []  # MLflow db, artifacts, score cache

    registry.use_local_store(work)
    model = unwrap(mlflow.pyfunc.load_model(registry.model_uri("deal-win")))
    context = with_email_scores(load_tables(planted), cache=work / "email_scores.parquet")
    assert "body" not in context.emails.columns and "subject" not in context.emails.columns
    out = tmp_path / "scores.csv"
    scored = score_open_deals_to_file(DealScorer(model, context), out)
    assert len(scored) > 0
    assert MARKER.encode() not in out.read_bytes()
    # the pre-call batch job: its terminal output, Parquet files and manifest
    batch = tmp_path / "batch"
    args = ["-v", "batch", "--data", str(planted), "--workdir", str(work), "--out", str(batch)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert MARKER not in result.output and (batch / "manifest.json").exists()
    assert _files_containing(batch, MARKER.encode()) == []
    # the managers' pages built from it
    pages = tmp_path / "pages"
    args = ["report", "--from", str(batch), "--all-managers", "--out", str(pages)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert list(pages.glob("manager-*.html"))
    assert _files_containing(pages, MARKER.encode()) == []


def test_marker_not_in_validation_errors(planted, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for file in planted.iterdir():
        (broken / file.name).write_bytes(file.read_bytes())
    emails = pd.read_csv(broken / "emails.csv", dtype=str, keep_default_na=False)
    marked = emails["body"].str.contains(MARKER)
    emails.loc[marked, "direction"] = "sideways"
    emails.loc[marked, "sent_at"] = "not a date"
    emails.to_csv(broken / "emails.csv", index=False)
    result = CliRunner().invoke(app, ["validate", str(broken), "--all"])
    assert result.exit_code == 2
    assert "sideways" in result.output and "bad_datetime" in result.output
    assert MARKER not in result.output
