"""`spm-ml train quota-risk` end to end: real MLflow run, registry, metrics JSON, promotion."""

from __future__ import annotations

import json

import mlflow
import pytest
from typer.testing import CliRunner

from spm_ml import registry
from spm_ml.cli import app
from spm_ml.data.io import write_tables

runner = CliRunner()
METRIC_KEYS = {"roc_auc", "pr_auc", "brier", "log_loss", "ece", "n_train", "n_test"}


@pytest.fixture(scope="module")
def org_dir(tmp_path_factory):
    from spm_ml.data.simulate import SimulationConfig, simulate

    folder = tmp_path_factory.mktemp("quota-org")
    write_tables(simulate(SimulationConfig(n_reps=14, months=15, seed=5)).tables, folder)
    return folder


@pytest.mark.slow
def test_train_quota_risk_then_promote(org_dir, tmp_path):
    work, metrics_path = tmp_path / "work", tmp_path / "metrics.json"
    args = ["train", "quota-risk", "--data", str(org_dir), "--workdir", str(work)]
    result = runner.invoke(app, [*args, "--metrics-json", str(metrics_path)])
    assert result.exit_code == 0, result.output
    document = json.loads(metrics_path.read_text())
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
    interval = document["monte_carlo_interval"]
    assert 0 < interval["coverage"] <= 1 and interval["nominal"] == 0.8
    # the Monte Carlo knows something: better than the prior on held-out periods
    assert document["monte_carlo"]["roc_auc"] > 0.6
    assert "monte_carlo" in result.output and "fraction_elapsed" in result.output

    registry.use_local_store(work)
    assert registry.alias_version("quota-risk", "champion") == "1"
    run = mlflow.get_run(document["mlflow_run_id"])
    assert run.data.metrics["monte_carlo_roc_auc"] == pytest.approx(
        document["monte_carlo"]["roc_auc"]
    )
    assert run.data.tags["model_family"] == "quota-risk"
    loaded = registry.load_model("quota-risk", alias="champion")
    assert loaded.record.extra["serving_estimator"] in {"model", "monte_carlo", "blend"}

    from spm_ml.data.io import load_tables
    from spm_ml.training.quota_risk import QuotaRiskTrainConfig, train_quota_risk

    light = QuotaRiskTrainConfig(seed=1, deal_folds=2, bootstrap_samples=20, draws=500)
    again = train_quota_risk(load_tables(org_dir), workdir=work, config=light)
    assert again.alias == "challenger"
    promoted = runner.invoke(
        app, ["promote", "quota-risk", "--data", str(org_dir), "--workdir", str(work)]
    )
    assert promoted.exit_code in (0, 1), promoted.output
    assert "champion" in promoted.output


def test_bad_threshold_is_refused(org_dir, tmp_path):
    result = runner.invoke(app, ["train", "quota-risk", "--data", str(org_dir), "--threshold", "0"])
    assert result.exit_code != 0
    assert "threshold" in result.output.lower()
