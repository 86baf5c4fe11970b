"""The batch job end to end on the shared trained work folder (tests/conftest.py): scores
equal to the API's scorer, reps equal to the warnings, a real kill and resume, SQL re-runs
that replace rows, PostgreSQL by a plain URL, failing deals reported by id."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_ml import registry, settings
from spm_ml.batch.folder_sink import MANIFEST, PARTIAL
from spm_ml.batch.job import BatchOptions, run_batch
from spm_ml.batch.sql_sink import read_table
from spm_ml.data.io import load_tables

pytestmark = pytest.mark.slow
CHUNK = 50
KEYS = {"deal_scores": "deal_id", "rep_risk": "rep_id", "forecast": "forecast_id"}


def batch(work, target, as_of=None, **options):
    return run_batch(
        BatchOptions(
            source=settings.data_source(work),
            target=str(target),
            workdir=work,
            as_of=as_of,
            chunk_size=options.pop("chunk_size", CHUNK),
            **options,
        )
    ).manifest


@pytest.fixture(scope="module")
def reference(work, as_of, tmp_path_factory):
    """An uninterrupted run into a folder, inside the last period."""
    out = tmp_path_factory.mktemp("batch") / "out"
    manifest = batch(work, out, as_of)
    frames = {t: pd.read_parquet(out / f"{t}.parquet") for t in KEYS}
    return out, manifest, frames


def plain(frame: pd.DataFrame, key: str) -> list[dict]:
    """Rows as comparable Python values, sorted by key (missing values as None)."""
    rows = []
    for row in frame.sort_values(key).to_dict("records"):
        out = {}
        for name, value in row.items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, pd.Timestamp | np.datetime64):
                value = pd.Timestamp(value).to_pydatetime()
            missing = value is None or value is pd.NA or value is pd.NaT
            out[name] = (
                None if missing or (isinstance(value, float) and math.isnan(value)) else value
            )
        rows.append(out)
    return rows


def assert_same_rows(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    for table, key in KEYS.items():
        assert not got[table].duplicated(["as_of", key]).any(), f"{table}: a row twice"
        assert plain(got[table], key) == plain(want[table], key), table


def test_manifest_says_what_was_scored_with_what(reference, as_of):
    out, manifest, frames = reference
    assert manifest["as_of"] == as_of.isoformat()
    assert manifest["rows"] == {t: len(f) for t, f in frames.items()}
    assert manifest["rows"]["deal_scores"] == manifest["open_deals"] > 2 * CHUNK
    assert manifest["chunks"]["written"]["deal_scores"] == math.ceil(manifest["open_deals"] / CHUNK)
    models = manifest["models"]
    assert models["deal-win"]["version"] and models["quota-risk"]["version"]
    assert "missing" in models["attrition"], "the shared small org trains no attrition model"
    assert set(manifest["inputs"]["tables"]) >= {"deals", "emails", "quotas"}
    assert manifest["failed"] == {"deal_scores": [], "rep_risk": [], "forecast": []}
    assert manifest["timings_s"]["total"] > 0 and manifest["forecast"].startswith("written: ")
    assert json.loads((out / MANIFEST).read_text())["fingerprint"] == manifest["fingerprint"]
    assert not (out / PARTIAL).exists()


def test_deal_probabilities_equal_the_api_scorer(work, reference, as_of):
    """DealScorer is what the API answers with (tests/serving/test_parity.py): same numbers."""
    from spm_ml.models.deal_win import feature_config_of
    from spm_ml.scoring import DealScorer
    from spm_ml.training.deal_win import prepare_tables

    registry.use_local_store(work)
    loaded = registry.load_model("deal-win")
    tables = load_tables(settings.data_source(work))
    tables = prepare_tables(tables, feature_config_of(loaded.record), work)[0]
    expected = DealScorer.for_model(loaded, tables).score_open_deals(as_of).set_index("deal_id")
    got = reference[2]["deal_scores"].set_index("deal_id")
    assert sorted(got.index) == sorted(expected.index)
    expected = expected.loc[got.index]
    np.testing.assert_allclose(got["probability"], expected["probability"], rtol=0, atol=1e-9)
    for deal_id, drivers in expected["drivers"].items():
        mine = json.loads(got.at[deal_id, "drivers_json"])
        assert [d["feature"] for d in mine] == [d["feature"] for d in drivers]
        np.testing.assert_allclose(
            [d["shap"] for d in mine], [d["shap"] for d in drivers], rtol=0, atol=1e-9
        )
    # the email tone the model read travels with the score
    assert got["latest_inbound_tone"].notna().mean() > 0.5
    # and the top coaching recommendation, the same the API's coaching gives
    coached = DealScorer.for_model(loaded, tables).coach(
        pd.DataFrame({"deal_id": got.index[:20], "as_of": as_of})
    )
    for coaching in coached:
        top = coaching.recommendations[0] if coaching.recommendations else None
        lever = got.at[coaching.deal_id, "recommendation_lever"]
        assert (None if pd.isna(lever) else lever) == (top and top.lever)
        if top is not None:
            assert got.at[coaching.deal_id, "recommendation_uplift_pp"] == pytest.approx(
                top.uplift_pp, abs=1e-9
            )
    assert got["recommendation"].notna().mean() > 0.3
    assert got["stage"].notna().all() and (got["as_of"] == as_of).all()


def test_reps_carry_the_warnings_scores(work, reference, as_of):
    from spm_ml.early_warnings import quota_warnings

    reps = reference[2]["rep_risk"].set_index("rep_id")
    warnings = quota_warnings(load_tables(settings.data_source(work)), work, as_of=as_of)
    scored = reps[reps["quota_status"] == "scored"]
    assert sorted(scored.index) == sorted(warnings["rep_id"])
    warnings = warnings.set_index("rep_id").loc[scored.index]
    np.testing.assert_allclose(scored["p_miss"], warnings["probability"], rtol=0, atol=1e-12)
    assert (scored["attainment_p10"] <= scored["expected_attainment"] + 1e-9).all()
    assert (scored["expected_attainment"] <= scored["attainment_p90"] + 1e-9).all()
    assert all(json.loads(d) for d in scored["quota_drivers"])
    assert (reps["attrition_status"] == "not scored: no attrition champion").all()


def test_forecast_rows_are_spm_ml_forecast(work, reference, as_of):
    """The batch's forecast table is what ``spm-ml forecast`` prints for the open period."""
    from spm_ml.forecast.periods import periods_of
    from spm_ml.forecast.run import run_forecast

    forecast = reference[2]["forecast"].set_index("forecast_id")
    tables = load_tables(settings.data_source(work))
    (period,) = [p for p in periods_of(tables) if p.start <= as_of < p.close]
    expected, _ = run_forecast(tables, work, period.label, as_of=as_of)
    summary = expected.summary()
    summary.index = summary["level"] + ":" + summary["id"].astype(str)
    assert sorted(forecast.index) == sorted(summary.index)
    for column in ("quota", "closed_won", "total_p10", "total_p50", "total_p90", "expected"):
        np.testing.assert_allclose(
            forecast[column].to_numpy(dtype=float),
            summary.loc[forecast.index, column].to_numpy(dtype=float),
            rtol=0,
            atol=1e-6,
        )
    company = forecast.loc["company:company"]
    assert company["total_p10"] <= company["total_p50"] <= company["total_p90"]
    assert (forecast["period"] == period.label).all()


def test_at_extraction_no_period_is_open_and_the_deals_match_quickstart(work, tmp_path):
    manifest = batch(work, tmp_path / "out", chunk_size=5000)
    reps = pd.read_parquet(tmp_path / "out" / "rep_risk.parquet")
    assert len(reps) and (reps["quota_status"] == "no quota period open at as_of").all()
    assert reps["p_miss"].isna().all()
    assert manifest["reps"]["reps_with_quota_risk"] == 0
    assert "no rep has a quota period open" in manifest["reps"]["quota_risk"]
    assert manifest["forecast"].startswith("not written: no period is open")
    assert not (tmp_path / "out" / "forecast.parquet").exists()
    # quickstart's scores are the ones the API parity test checks the service against
    quickstart = pd.read_parquet(work / "outputs" / "deal_scores.parquet").set_index("deal_id")
    got = pd.read_parquet(tmp_path / "out" / "deal_scores.parquet").set_index("deal_id")
    assert sorted(got.index) == sorted(quickstart.index)
    np.testing.assert_allclose(
        got["probability"], quickstart.loc[got.index, "probability"], rtol=0, atol=1e-9
    )


def _chunks_written(target: str) -> int:
    if target.startswith("sqlite:///"):
        try:
            with sqlite3.connect(target.removeprefix("sqlite:///"), timeout=1) as db:
                return db.execute("select count(*) from spm_batch_chunks").fetchone()[0]
        except sqlite3.Error:  # not created yet, or locked by the writer for an instant
            return 0
    return len(list((Path(target) / PARTIAL).glob("*-*.json")))


def _read(target: str, as_of) -> dict[str, pd.DataFrame]:
    if target.startswith("sqlite:///"):
        return {t: read_table(target, t, as_of) for t in KEYS}
    return {t: pd.read_parquet(f"{target}/{t}.parquet") for t in KEYS}


@pytest.mark.parametrize("kind", ["folder", "sqlite"])
def test_killed_job_resumes_to_exactly_the_uninterrupted_rows(
    kind, work, as_of, reference, tmp_path
):
    target = str(tmp_path / "out") if kind == "folder" else f"sqlite:///{tmp_path / 'out.db'}"
    command = [
        sys.executable, "-m", "spm_ml.cli", "batch", "--workdir", str(work),
        "--out", target, "--as-of", as_of.isoformat(), "--chunk-size", "10",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log = tmp_path / "first.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while _chunks_written(target) < 1:
        assert process.poll() is None, f"the job ended before a chunk:\n{log.read_text()}"
        assert time.monotonic() < deadline, "no chunk written within 300 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    written = _chunks_written(target)
    total = math.ceil(reference[1]["open_deals"] / 10) + 1  # deal chunks + the reps
    assert 1 <= written < total, "killed mid-run"
    if kind == "folder":
        assert not (tmp_path / "out" / MANIFEST).exists()
    else:
        assert read_table(target, "batch_runs").empty, "nothing published"

    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"({written} chunk(s) resumed)" in resumed.stdout
    assert_same_rows(_read(target, as_of), reference[2])


def test_sql_rerun_replaces_the_as_of_rows_and_keeps_other_dates(work, as_of, reference, tmp_path):
    url = f"sqlite:///{tmp_path / 'out.db'}"
    batch(work, url, as_of)
    manifest = batch(work, url, as_of)  # the same as-of again
    assert_same_rows({t: read_table(url, t, as_of) for t in KEYS}, reference[2])
    earlier = as_of - pd.Timedelta(days=7)
    batch(work, url, earlier)
    every = read_table(url, "deal_scores")
    assert set(every["as_of"]) == {as_of, earlier}
    assert len(every[every["as_of"] == as_of]) == manifest["rows"]["deal_scores"]
    runs = read_table(url, "batch_runs")
    assert sorted(runs["as_of"]) == [earlier, as_of]
    assert json.loads(runs.set_index("as_of").at[as_of, "manifest"])["rows"] == manifest["rows"]


@pytest.mark.postgres
def test_postgres_by_a_plain_url(work, as_of, reference, postgres):
    import sqlalchemy as sa

    name = f"spm_batch_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = postgres.rsplit("/", 1)[0] + f"/{name}"  # postgresql://postgres@127.0.0.1:5432/NAME
    try:
        batch(work, url, as_of)
        batch(work, url, as_of)  # a re-run replaces, never duplicates
        assert_same_rows({t: read_table(url, t) for t in KEYS}, reference[2])
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_a_deal_whose_features_fail_is_reported_by_id(
    work, as_of, reference, tmp_path, monkeypatch
):
    from spm_ml import scoring

    deals = reference[2]["deal_scores"]
    bad = deals["deal_id"].iloc[len(deals) // 2]
    build = scoring.deal_features

    def planted(tables, snapshots, *args, **kwargs):
        if bad in set(snapshots["deal_id"]):
            raise ValueError("planted: this deal's rows cannot be featurised")
        return build(tables, snapshots, *args, **kwargs)

    monkeypatch.setattr(scoring, "deal_features", planted)
    manifest = batch(work, tmp_path / "out", as_of)
    assert manifest["failed"]["deal_scores"] == [
        {"deal_id": bad, "error": "ValueError: planted: this deal's rows cannot be featurised"}
    ]
    got = pd.read_parquet(tmp_path / "out" / "deal_scores.parquet")
    assert manifest["rows"]["deal_scores"] == len(got) == len(deals) - 1
    want = deals[deals["deal_id"] != bad]
    assert plain(got, "deal_id") == plain(want, "deal_id"), "the chunk's other deals are kept"


@pytest.fixture(scope="module")
def with_attrition(work, tmp_path_factory):
    """A copy of the shared store (its deal-win and quota-risk champions) plus an attrition
    champion trained on an organisation with leavers (the attrition tests' 30 reps, 18
    months, seed 2), which the batch then scores: only attrition is trained here."""
    from spm_ml.data.io import write_tables
    from spm_ml.data.simulate import SimulationConfig, simulate
    from spm_ml.training.attrition import AttritionTrainConfig, train_attrition

    folder = tmp_path_factory.mktemp("with-attrition")
    shutil.copy(work / "mlflow.db", folder / "mlflow.db")
    data = folder / "data"
    write_tables(simulate(SimulationConfig(n_reps=30, months=18, seed=2)).tables, data)
    config = AttritionTrainConfig(bootstrap_samples=0)
    train_attrition(load_tables(data), workdir=folder, config=config)
    return folder, data


def test_top_performers_carry_the_attrition_warnings(with_attrition, tmp_path):
    from spm_ml.early_warnings import attrition_warnings

    folder, data = with_attrition
    tables = load_tables(data)
    as_of = tables.quotas["period_start"].max() + pd.Timedelta(days=45)
    options = BatchOptions(str(data), str(tmp_path / "out"), folder, as_of=as_of)
    manifest = run_batch(options).manifest
    assert manifest["models"]["attrition"]["version"] == "1"
    reps = pd.read_parquet(tmp_path / "out" / "rep_risk.parquet").set_index("rep_id")
    warned = attrition_warnings(tables, folder, as_of=as_of).set_index("rep_id")
    top = reps[reps["top_performer"].astype(bool)]
    assert len(top) and sorted(top.index) == sorted(warned.index)
    np.testing.assert_allclose(
        top["attrition_probability"], warned.loc[top.index, "probability"], rtol=0, atol=1e-12
    )
    assert (top["attrition_status"] == "scored").all()
    others = reps[~reps["top_performer"].astype(bool)]
    assert others["attrition_probability"].isna().all()
    assert others["attrition_status"].str.startswith("not a top performer").all()
    assert manifest["reps"]["top_performers_with_attrition_risk"] == len(top)
    assert (reps["quota_status"] == "scored").sum() == manifest["reps"]["reps_with_quota_risk"] > 0


def test_mlflow_tracking_uri_overrides_the_work_folder(work, as_of, reference, tmp_path):
    from typer.testing import CliRunner

    from spm_ml.cli import app

    elsewhere = tmp_path / "work"  # no MLflow store here: the models come from the URI
    elsewhere.mkdir()
    shutil.copy(settings.email_scores_path(work), settings.email_scores_path(elsewhere))
    result = CliRunner().invoke(
        app,
        [
            "batch",
            "--data",
            settings.data_source(work),
            "--workdir",
            str(elsewhere),
            "--out",
            str(tmp_path / "out"),
            "--as-of",
            as_of.isoformat(),
        ],  # fmt: skip
        env={"MLFLOW_TRACKING_URI": settings.tracking_uri(work)},
    )
    assert result.exit_code == 0, result.output
    assert not (elsewhere / "mlflow.db").exists()
    got = {t: pd.read_parquet(tmp_path / "out" / f"{t}.parquet") for t in KEYS}
    assert_same_rows(got, reference[2])
