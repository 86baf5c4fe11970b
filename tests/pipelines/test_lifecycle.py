"""The model lifecycle from the shell: train with --metrics-json, champion/challenger, promote."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from spm_ml import registry
from spm_ml.cli import app
from spm_ml.data.io import write_tables
from spm_ml.training.promotion import challenger_beats_champion

runner = CliRunner()
METRIC_KEYS = {"roc_auc", "pr_auc", "brier", "log_loss", "ece", "n_train", "n_test"}


@pytest.fixture(scope="module")
def small_org_dir(tmp_path_factory):
    from spm_ml.data.simulate import SimulationConfig, simulate

    folder = tmp_path_factory.mktemp("org")
    write_tables(simulate(SimulationConfig(n_reps=12, months=10, seed=5)).tables, folder)
    return folder


def test_generate_then_validate(tmp_path):
    out = tmp_path / "gen"
    result = runner.invoke(
        app, ["generate", "--out", str(out), "--reps", "6", "--months", "4", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(
        f"{t}.csv"
        for t in (
            [
                "reps",
                "accounts",
                "deals",
                "deal_history",
                "activities",
                "emails",
                "quotas",
                "compensation",
                "rep_history",
            ]
        )
    )
    check = runner.invoke(app, ["validate", str(out)])
    assert check.exit_code == 0, check.output


def test_rule_needs_higher_auc_and_no_worse_brier():
    champion = {"roc_auc": 0.80, "brier": 0.15}
    assert challenger_beats_champion({"roc_auc": 0.81, "brier": 0.15}, champion)
    assert not challenger_beats_champion({"roc_auc": 0.80, "brier": 0.10}, champion)
    assert not challenger_beats_champion({"roc_auc": 0.90, "brier": 0.16}, champion)


@pytest.mark.slow
def test_train_writes_metrics_and_promotion_follows_the_rule(small_org_dir, tmp_path):
    work = tmp_path / "work"
    weak = {"n_estimators": 3, "num_leaves": 2, "calibration": "none"}
    from spm_ml.data.io import load_tables
    from spm_ml.training.deal_win import DealWinTrainConfig, train_deal_win

    tables = load_tables(small_org_dir)
    first = train_deal_win(
        tables, workdir=work, config=DealWinTrainConfig(model=weak, bootstrap_samples=20)
    )
    assert first.alias == "champion"

    metrics_path = tmp_path / "metrics.json"
    result = runner.invoke(
        app,
        [
            "train",
            "deal-win",
            "--data",
            str(small_org_dir),
            "--workdir",
            str(work),
            "--metrics-json",
            str(metrics_path),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(metrics_path.read_text())
    assert set(document) == {
        "model",
        "references",
        "split",
        "mlflow_run_id",
        "label",
        "censoring",
        "data_sufficiency",
        "reliability",
    }
    # held-out reliability per estimator (not the prior): the manager page's plot reads it
    assert set(document["reliability"]) == {"model", "logistic_regression"}
    bins = document["reliability"]["model"]
    assert bins and sum(b["n"] for b in bins) == document["model"]["n_test"]
    assert all(0 <= b["observed"] <= 1 and b["low"] <= b["predicted"] <= b["high"] for b in bins)
    assert document["data_sufficiency"]["thin"]  # 12 reps x 10 months: fewer than 200 won
    assert "thin data" in result.output
    assert document["split"] == "time"
    assert set(document["model"]) >= METRIC_KEYS
    assert set(document["references"]) == {"prior", "logistic_regression"}
    for block in document["references"].values():
        assert set(block) >= METRIC_KEYS
    assert document["model"]["roc_auc"] > document["references"]["prior"]["roc_auc"]
    assert "held-out metrics per slice" in result.output
    for kind in ("segment", "size band", "rep history", "stage"):
        assert kind.replace(" ", "_") in result.output

    registry.use_local_store(work)
    assert registry.alias_version("deal-win", "champion") == "1"
    assert registry.alias_version("deal-win", "challenger") == "2"
    run = mlflow.get_run(document["mlflow_run_id"])
    assert run.data.metrics["model_roc_auc"] == pytest.approx(document["model"]["roc_auc"])
    assert "split_test_start" in run.data.params and "dataset_digest" in run.data.tags
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "plots")}
    assert "plots/slices.png" in artifacts
    slices = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/slices.json")["slices"]
    assert {r["slice"] for r in slices} == {"segment", "size_band", "rep_history", "stage"}

    promoted = runner.invoke(
        app,
        [
            "promote",
            "deal-win",
            "--data",
            str(small_org_dir),
            "--workdir",
            str(work),
            "--by",
            "test-suite",
            "--note",
            "weak champion",
        ],
    )
    assert promoted.exit_code == 0, promoted.output
    assert "promoted" in promoted.output
    registry.use_local_store(work)
    assert registry.alias_version("deal-win", "champion") == "2"
    tags = MlflowClient().get_model_version("deal-win", "2").tags
    assert tags["promotion_decision"] == "promoted"
    assert tags["promotion_decided_by"] == "test-suite"
    assert "weak champion" in tags["promotion_reason"]

    # the same model again cannot beat itself: the champion stays
    again = train_deal_win(tables, workdir=work, config=DealWinTrainConfig(bootstrap_samples=20))
    assert again.alias == "challenger"
    kept = runner.invoke(
        app, ["promote", "deal-win", "--data", str(small_org_dir), "--workdir", str(work)]
    )
    assert kept.exit_code == 1 and "kept the champion" in kept.output
    registry.use_local_store(work)
    assert registry.alias_version("deal-win", "champion") == "2"


def test_promote_without_a_model_is_a_clear_error(small_org_dir, tmp_path):
    result = runner.invoke(
        app, ["promote", "deal-win", "--data", str(small_org_dir), "--workdir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "no champion" in result.output
