"""The attrition family in organisation mode: from the shell, and what it never reads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from spm_ml.cli import app
from spm_ml.data.io import write_tables
from spm_ml.features.protected import protected_ground
from spm_ml.training.attrition import AttritionTrainConfig, attrition_rows


@pytest.fixture(scope="module")
def org():
    """30 reps over 18 months; seed 2 has 7 voluntary leavers in the training labels and 9
    in the test window (seeds 0-5 give 1-7 and 1-9)."""
    from spm_ml.data.simulate import SimulationConfig, simulate

    tables = simulate(SimulationConfig(n_reps=30, months=18, seed=2)).tables
    rng = np.random.default_rng(0)
    # a source that holds protected attributes: they must never become features
    reps = tables.reps.assign(
        gender=rng.choice(["f", "m"], len(tables.reps)),
        age=rng.integers(22, 64, len(tables.reps)),
        marital_status=rng.choice(["single", "married"], len(tables.reps)),
    )
    return tables.replace(reps=reps)


def test_the_training_frame_has_no_protected_attribute(org):
    rows = attrition_rows(org, AttritionTrainConfig())
    columns = [*rows.features.columns, *rows.X.columns]
    assert not [c for c in columns if protected_ground(c)]
    assert "exit_date" not in columns and "exit_reason" not in columns
    # the population: every employed AE, leavers and stayers alike
    assert rows.snapshots["left"].iloc[rows.split.test].isin([0, 1]).all()
    assert rows.snapshots["left"].iloc[rows.split.test].sum() > 0


@pytest.mark.slow
def test_train_attrition_on_an_organisation_writes_metrics(org, tmp_path):
    data = tmp_path / "org"
    write_tables(org, data)
    metrics = tmp_path / "metrics.json"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "attrition",
            "--data",
            str(data),
            "--workdir",
            str(tmp_path / "work"),
            "--metrics-json",
            str(metrics),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(metrics.read_text())
    assert {
        "model",
        "references",
        "split",
        "mlflow_run_id",
        "lead_time_days",
        "precision_at_10_top_performers",
    } <= set(document)
    assert set(document["references"]) == {"prior", "logistic_regression"}
    assert set(document["lead_time_days"]) >= {"median", "q1", "q3", "leavers", "warned"}
    assert document["lead_time_days"]["leavers"] == 9
    assert 0 <= document["precision_at_10_top_performers"] <= 1
    assert document["label"]["definition"] == "leaves voluntarily within 90 days of as_of"
    assert "registered attrition version 1" in result.output
    assert "lead time:" in result.output and "top performers" in result.output
