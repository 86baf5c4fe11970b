"""Attrition on a flat export: protected attributes are never features, whatever the data says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from spm_ml.cli import app
from spm_ml.features.protected import protected_ground
from spm_ml.training.tabular import TabularTrainConfig, load_tabular

IBM_HR = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "ibm_hr_attrition"
    / "WA_Fn-UseC_-HR-Employee-Attrition.csv"
)
PROTECTED_IN_IBM_HR = {"Age", "Gender", "MaritalStatus", "Over18"}


@pytest.mark.parametrize(
    ("column", "ground"),
    [
        ("Age", "age"),
        ("age_band", "age"),
        ("DateOfBirth", "age"),
        ("Over18", "age"),
        ("Gender", "sex or gender"),
        ("MaritalStatus", "marital status"),
        ("ethnicity", "race or ethnic origin"),
        ("Religion", "religion or belief"),
        ("Percentage", None),
        ("PercentSalaryHike", None),
        ("Stage", None),
        ("AverageDealSize", None),
        ("YearsWithCurrManager", None),
        ("Overtime", None),
    ],
)
def test_protected_attributes_are_recognised_by_their_words(column, ground):
    assert protected_ground(column) == ground


def employees(n: int = 500, seed: int = 0) -> pd.DataFrame:
    """An HR export where age and gender predict leaving (as they do in many real files)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 60, n)
    gender = rng.choice(["Female", "Male"], n)
    overtime = rng.choice(["Yes", "No"], n)
    income = rng.lognormal(8.5, 0.4, n)
    logit = -1.5 + 1.2 * (overtime == "Yes") - 0.04 * (age - 40) - 0.5 * np.log(income / 5000)
    left = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "EmployeeNumber": np.arange(1, n + 1),
            "Age": age,
            "Gender": gender,
            "MaritalStatus": rng.choice(["Single", "Married", "Divorced"], n),
            "Over18": "Y",
            "OverTime": overtime,
            "MonthlyIncome": np.round(income),
            "Attrition": np.where(left, "Yes", "No"),
        }
    )


def test_train_attrition_leaves_out_protected_attributes(tmp_path):
    table = tmp_path / "hr.csv"
    employees().to_csv(table, index=False)
    metrics = tmp_path / "metrics.json"
    args = ["train", "attrition", "--table", str(table), "--target", "Attrition"]
    args += ["--positive", "Yes", "--model-out", str(tmp_path / "model"), "--learner", "logistic"]
    args += ["--workdir", str(tmp_path / "work"), "--metrics-json", str(metrics)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "protected attribute" in result.output
    document = json.loads(metrics.read_text())
    assert document["model"]["roc_auc"] > 0.6

    import mlflow

    store = f"sqlite:///{tmp_path / 'work' / 'mlflow.db'}"
    params = mlflow.MlflowClient(store).get_run(document["mlflow_run_id"]).data.params
    assert "dropped: protected attribute (age)" in params["column.Age"]
    assert "dropped: protected attribute (sex or gender)" in params["column.Gender"]
    assert "dropped: protected attribute (marital status)" in params["column.MaritalStatus"]

    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    inputs = set(model.metadata.get_input_schema().input_names())
    assert inputs.isdisjoint({"Age", "Gender", "MaritalStatus"})  # Over18 is constant anyway
    rows = employees(5, seed=1).drop(columns="Attrition")
    assert model.predict(rows)["probability"].between(0, 1).all()


def test_a_protected_attribute_cannot_be_kept(tmp_path):
    table = tmp_path / "hr.csv"
    employees(100).to_csv(table, index=False)
    args = ["train", "attrition", "--table", str(table), "--target", "Attrition"]
    args += ["--positive", "Yes", "--model-out", str(tmp_path / "m"), "--keep-col", "Gender"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "protected attribute (sex or gender) is never a feature" in result.output


def test_train_attrition_names_what_it_needs():
    result = CliRunner().invoke(app, ["train", "attrition", "--table", "x.csv", "--target", "A"])
    assert result.exit_code == 2
    assert "--table needs --positive, --model-out" in result.output
    # without --table it trains the organisation: the flat-export options do not apply
    result = CliRunner().invoke(app, ["train", "attrition", "--target", "Attrition"])
    assert result.exit_code == 2
    assert "--target only apply with --table FILE" in result.output


@pytest.mark.skipif(not IBM_HR.exists(), reason=f"the IBM HR file is not at {IBM_HR}")
def test_the_ibm_hr_training_frame_has_no_protected_attribute():
    config = TabularTrainConfig(
        target="Attrition", positive="Yes", family="attrition", exclude_protected=True
    )
    data = load_tabular(IBM_HR, config)
    used = {d.column for d in data.decisions if d.used}
    assert used and used.isdisjoint(PROTECTED_IN_IBM_HR)
    dropped = {d.column: d.reason for d in data.decisions if d.column in PROTECTED_IN_IBM_HR}
    assert set(dropped) == PROTECTED_IN_IBM_HR
    assert all(reason.startswith("protected attribute") for reason in dropped.values())
