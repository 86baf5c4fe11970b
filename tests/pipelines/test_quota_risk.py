"""Quota risk end to end: `spm-ml train quota-risk` (real MLflow run, registry, metrics
JSON), promotion through the generic path, and `spm-ml warnings` from the champions."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from spm_ml import registry
from spm_ml.cli import app
from spm_ml.data.io import load_tables, write_tables

runner = CliRunner()
METRIC_KEYS = {"roc_auc", "pr_auc", "brier", "log_loss", "ece", "n_train", "n_test"}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def org_dir(tmp_path_factory):
    from spm_ml.data.simulate import SimulationConfig, simulate

    folder = tmp_path_factory.mktemp("quota-org")
    # the attrition test's organisation: enough voluntary leavers to train on
    write_tables(simulate(SimulationConfig(n_reps=30, months=18, seed=2)).tables, folder)
    return folder


@pytest.fixture(scope="module")
def trained(org_dir, tmp_path_factory):
    """A work folder with (weak) deal-win and attrition champions and a quota-risk champion
    trained by the command, its metrics document and its printed output."""
    from spm_ml.training.deal_win import DealWinTrainConfig, train_deal_win

    work = tmp_path_factory.mktemp("quota-work")
    weak = {"n_estimators": 30, "num_leaves": 4}
    train_deal_win(
        load_tables(org_dir),
        workdir=work,
        config=DealWinTrainConfig(model=weak, bootstrap_samples=0),
    )
    from spm_ml.training.attrition import AttritionTrainConfig, train_attrition

    train_attrition(
        load_tables(org_dir), workdir=work, config=AttritionTrainConfig(bootstrap_samples=0)
    )
    metrics_path = work / "metrics.json"
    args = ["train", "quota-risk", "--data", str(org_dir), "--workdir", str(work)]
    result = runner.invoke(app, [*args, "--metrics-json", str(metrics_path)])
    assert result.exit_code == 0, result.output
    return work, json.loads(metrics_path.read_text()), result.output


def test_train_writes_every_estimator_and_the_lead_time(trained):
    work, document, output = trained
    assert {"model", "monte_carlo", "blend", "references", "split", "mlflow_run_id"} <= set(
        document
    )
    assert set(document["references"]) == {
        "prior",
        "logistic_regression",
        "stage_weighted_pipeline",
    }
    for block in (document["model"], document["monte_carlo"], *document["references"].values()):
        assert set(block) >= METRIC_KEYS
    lead = document["lead_time_days"]
    assert {"median", "q1", "q3", "estimator"} <= set(lead)
    assert lead["estimator"] == document["serving_estimator"]["choice"]
    assert document["label"]["threshold"] == 1.0
    by_elapsed = document["served_by_elapsed"]
    assert by_elapsed["estimator"] == lead["estimator"]
    mid = by_elapsed["0.5"]
    assert mid["rows"] > 0 and 0 < mid["ece_floor"] < 0.5 and 0 <= mid["ece"] <= 1
    interval = document["monte_carlo_interval"]
    assert 0 < interval["coverage"] <= 1 and interval["nominal"] == 0.8
    # the Monte Carlo knows something: better than the prior on held-out periods
    assert document["monte_carlo"]["roc_auc"] > 0.6
    assert "monte_carlo" in output and "fraction_elapsed" in output and "MC AUC" in output

    registry.use_local_store(work)
    assert registry.alias_version("quota-risk", "champion") == "1"
    run = mlflow.get_run(document["mlflow_run_id"])
    assert run.data.metrics["monte_carlo_roc_auc"] == pytest.approx(
        document["monte_carlo"]["roc_auc"]
    )
    assert run.data.tags["model_family"] == "quota-risk"
    loaded = registry.load_model("quota-risk", alias="champion")
    assert loaded.record.extra["serving_estimator"] in {"model", "monte_carlo", "blend"}
    assert set(loaded.run_document("period_rates.json")) >= {"slip", "new_deal_shares"}


def _mid_period(org_dir) -> pd.Timestamp:
    quotas = load_tables(org_dir).quotas
    return quotas["period_start"].max() + pd.Timedelta(days=45)


def test_warnings_per_manager_as_json_and_table(trained, org_dir):
    work = trained[0]
    as_of = _mid_period(org_dir)
    base = ["warnings", "--data", str(org_dir), "--workdir", str(work), "--as-of", str(as_of)]
    result = runner.invoke(app, [*base, "--format", "json", "--all"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["kind"] for r in rows} == {"quota_risk", "attrition"}
    attrition = [r for r in rows if r["kind"] == "attrition"]
    assert all(r["expected_attainment"] is None and r["drivers"] for r in attrition)
    rows = [r for r in rows if r["kind"] == "quota_risk"]
    assert rows, "every rep with an open period is scored"
    for row in rows:
        assert 0 <= row["probability"] <= 1
        assert row["attainment_p10"] <= row["expected_attainment"] <= row["attainment_p90"] + 1e-9
        assert row["drivers"] and all("risk)" in d for d in row["drivers"])
        assert row["days_left"] == 46 - 1 or row["days_left"] > 0
        if row["warned"]:
            assert pd.Timestamp(row["warning_since"]) <= as_of
        else:
            assert row["warning_since"] is None
    manager = rows[0]["manager_id"]
    mine = runner.invoke(app, [*base, "--format", "json", "--all", "--manager", manager])
    assert {r["manager_id"] for r in json.loads(mine.stdout)} == {manager}
    table = runner.invoke(app, [*base, "--all"])
    assert table.exit_code == 0, table.output
    assert f"manager {manager}" in table.output and "misses quota" in table.output
    assert "attrition risk as of" in table.output


def test_warnings_bad_input_is_named(trained, org_dir):
    work = trained[0]
    base = ["warnings", "--data", str(org_dir), "--workdir", str(work)]
    assert "not a date" in runner.invoke(app, [*base, "--as-of", "someday"]).output
    unknown = runner.invoke(app, [*base, "--as-of", str(_mid_period(org_dir)), "--manager", "X9"])
    assert unknown.exit_code == 2 and "X9" in unknown.output
    ended = runner.invoke(app, base)  # the simulated data ends exactly at a period's close
    assert ended.exit_code == 0 and "no rep has a quota period open" in ended.output


def test_promote_quota_risk_through_the_generic_path(trained, org_dir):
    from spm_ml.training.quota_risk import QuotaRiskTrainConfig, train_quota_risk

    work = trained[0]
    light = QuotaRiskTrainConfig(seed=1, deal_folds=2, bootstrap_samples=20, draws=500)
    again = train_quota_risk(load_tables(org_dir), workdir=work, config=light)
    assert again.alias == "challenger"
    promoted = runner.invoke(
        app, ["promote", "quota-risk", "--data", str(org_dir), "--workdir", str(work)]
    )
    assert promoted.exit_code in (0, 1), promoted.output
    assert "challenger v2" in promoted.output


def test_bad_threshold_is_refused(org_dir):
    result = runner.invoke(app, ["train", "quota-risk", "--data", str(org_dir), "--threshold", "0"])
    assert result.exit_code != 0
    assert "threshold" in result.output.lower()
