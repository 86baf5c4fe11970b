"""Training on any flat export: column screening, bad inputs, the saved pyfunc, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_ml.errors import SchemaError, SourceError, SpmMlError, TrainingError
from spm_ml.features.tabular import (
    TabularPreprocessor,
    infer_kind,
    name_tokens,
    outcome_name_hint,
    screen_columns,
)
from spm_ml.training.tabular import (
    TabularTrainConfig,
    binary_outcome,
    fast_binary_metrics,
    load_tabular,
    read_table,
    train_tabular,
)

FAST = {"cv_folds": 3, "cv_repeats": 1, "bootstrap_samples": 20, "max_trials": 3}


def export(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A closed-deal export as a CRM writes it: text cells, an id, junk and two leaks."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2023-01-02") + pd.to_timedelta(rng.integers(0, 700, n), "D")
    segment = rng.choice(["smb", "mid", "ent"], n)
    amount = rng.lognormal(10, 1, n)
    discount = rng.uniform(0, 0.3, n)
    logit = (
        0.2
        + pd.Series(segment).map({"smb": 1.0, "mid": 0.0, "ent": -1.0}).to_numpy()
        - 0.6 * np.log(amount / 20000)
        + 6 * (discount - 0.15)
    )
    won = rng.random(n) < 1 / (1 + np.exp(-logit))
    closed = created + pd.to_timedelta(rng.integers(5, 120, n), "D")
    return pd.DataFrame(
        {
            "Deal ID": [f"D{i:05d}" for i in range(n)],
            "created": created.strftime("%Y-%m-%d"),
            "segment": segment,
            "amount": np.round(amount, 2).astype(str),
            "discount": np.round(discount, 3).astype(str),
            "region": "EU",
            "empty": pd.Series([None] * n, dtype=object),
            "notes": [f"note {k}" for k in rng.integers(0, 250, n)],
            "close_date": closed.strftime("%Y-%m-%d"),
            "close_value": np.where(won, np.round(amount, 2), 0.0).astype(str),
            "outcome": np.where(won, "Won", "Lost"),
        }
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return export()


@pytest.fixture
def csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "deals.csv"
    frame.to_csv(path, index=False, encoding="utf-8-sig")  # a BOM, as Excel writes it
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One MLflow store for this module's runs (creating a SQLite store takes seconds)."""
    return tmp_path_factory.mktemp("tabular-work")


def config(**overrides) -> TabularTrainConfig:
    return TabularTrainConfig(**{"target": "outcome", "positive": "Won", **FAST, **overrides})


# -- column typing and screening ------------------------------------------------------------------
def test_kinds_are_inferred_from_text_cells():
    n = 200
    assert infer_kind(pd.Series(["1", "2.5", " 3 "] * 60 + ["x"] * 2))[0] == "numeric"
    kind, _, fmt = infer_kind(pd.Series(["10/20/2016", "3/1/2017", "12/31/2016"] * 50))
    assert (kind, fmt) == ("datetime", "%m/%d/%Y")
    assert infer_kind(pd.Series(["a", "b", None] * 50))[0] == "category"
    assert infer_kind(pd.Series([f"t{i}" for i in range(n)] * 2))[0] == "text"
    assert infer_kind(pd.Series(["Y"] * n))[0] == "constant"
    assert infer_kind(pd.Series([None] * n, dtype=object))[0] == "empty"
    assert infer_kind(pd.Series(["Y", None] * 50))[0] == "category"  # missing is information
    assert name_tokens("CloseDate") == ["close", "date"] == name_tokens("close_date")
    assert outcome_name_hint("deal_stage") == "stage"
    assert outcome_name_hint("expected_close_date") is None


def test_ids_constants_text_and_leaks_are_screened(frame):
    y = (frame["outcome"] == "Won").to_numpy().astype(int)
    decisions = {d.column: d for d in screen_columns(frame, y, target="outcome")}
    used = {c for c, d in decisions.items() if d.used}
    assert used == {"created", "segment", "amount", "discount"}
    assert decisions["Deal ID"].kind == "id"
    assert decisions["region"].kind == "constant" and decisions["empty"].kind == "empty"
    assert decisions["notes"].kind == "text"
    assert (
        decisions["close_value"].reason.startswith("leak") and decisions["close_value"].auc > 0.95
    )
    assert decisions["close_date"].reason.startswith("leak")  # a date named like the outcome
    assert decisions["created"].kind == "datetime"
    kept = screen_columns(frame, y, target="outcome", keep_cols=("close_value",))
    kept = {d.column: d for d in kept}
    assert kept["close_value"].used and "kept" in kept["close_value"].warning
    with pytest.raises(SchemaError, match="not in the file"):
        screen_columns(frame, y, target="outcome", keep_cols=("nope",))


def test_integer_ids_with_a_few_repeats_are_ids_and_counts_are_not(frame):
    y = (frame["outcome"] == "Won").to_numpy().astype(int)
    n = len(frame)
    numbers = np.arange(100_000, 100_000 + n)
    numbers[::25] = numbers[1::25][: len(numbers[::25])]  # 4% of the numbers repeat
    extra = frame.assign(
        **{
            "Opportunity Number": numbers,
            # a count named like nothing in particular, with many repeats: a measure
            "meetings": np.arange(n) % 7,
            # named like an id but mostly repeated: a category code, not an identifier
            "product code": np.arange(n) % 12,
        }
    )
    decisions = {d.column: d for d in screen_columns(extra, y, target="outcome")}
    assert decisions["Opportunity Number"].kind == "id"
    assert "named like an identifier, 96% of values distinct" in (
        decisions["Opportunity Number"].reason
    )
    assert decisions["meetings"].kind == "numeric" and decisions["meetings"].used
    assert decisions["product code"].kind != "id"


def test_a_literal_none_is_a_value_only_where_nothing_else_is_missing(frame, tmp_path):
    n = len(frame)
    table = frame.assign(
        # "None" is one of the answers: no competitor, and no blank cell anywhere
        competitor=np.where(
            np.arange(n) % 3 == 0, "None", np.where(np.arange(n) % 2, "Acme", "Zeta")
        ),
        # here "None" sits beside blanks: both mean missing
        partner=np.where(np.arange(n) % 3 == 0, "None", np.where(np.arange(n) % 5, "P1", "")),
    )
    path = tmp_path / "export.csv"
    table.to_csv(path, index=False)
    read = read_table(path)
    assert (read["competitor"] == "None").sum() == (np.arange(n) % 3 == 0).sum()
    assert read["partner"].isna().sum() == ((np.arange(n) % 3 == 0) | (np.arange(n) % 5 == 0)).sum()
    data = load_tabular(path, TabularTrainConfig(target="outcome", positive="Won"))
    decisions = {d.column: d for d in data.decisions}
    assert decisions["competitor"].kind == "category"
    assert '"None" read as a value' in decisions["competitor"].reason
    assert '"None"' not in decisions["partner"].reason


def test_warnings_for_outcome_names_and_pure_categories(frame):
    y = (frame["outcome"] == "Won").to_numpy().astype(int)
    extra = frame.assign(
        status=np.where(np.arange(len(frame)) % 2, "a", "b"),
        tier=np.where(y == 1, "gold", np.where(np.arange(len(y)) % 3, "silver", "gold")),
    )
    decisions = screen_columns(extra, y, target="outcome", labels=("Lost", "Won"))
    decisions = {d.column: d for d in decisions}
    assert "name suggests the outcome" in decisions["status"].warning
    assert decisions["status"].used
    assert "100% Lost" in decisions["tier"].warning and decisions["tier"].used


def test_preprocessor_freezes_decisions():
    train = pd.DataFrame(
        {"a": ["1", "2", "x"], "c": ["p", "q", None], "d": ["2024-03-30", "2024-01-01", None]}
    )
    prep = TabularPreprocessor(numeric=("a",), categorical=("c",), datetime=("d",)).fit(train)
    assert prep.date_formats_ == {"d": "%Y-%m-%d"}
    out = prep.transform(pd.DataFrame({"a": [5], "c": [" p "], "d": ["2024-06-29"], "z": [0]}))
    assert out.loc[0, "a"] == 5.0 and out.loc[0, "c"] == "p"
    assert out.loc[0, "d__month"] == 6 and out.loc[0, "d__days_to_quarter_end"] == 1
    assert np.isnan(prep.transform(train)["a"].iloc[2])
    with pytest.raises(SchemaError, match="lacks 1 column"):
        prep.transform(pd.DataFrame({"a": [1], "c": ["p"]}))


def test_fast_metrics_match_the_reference_definitions():
    from spm_ml.models.metrics import binary_metrics

    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(int)
    p = np.round(rng.random(300), 1)  # ties
    a, b = binary_metrics(y, p), fast_binary_metrics(y, p)
    assert all(abs(a[k] - b[k]) < 1e-9 for k in a)


# -- bad input, each with its message -------------------------------------------------------------
def test_missing_target_lists_the_columns(frame):
    with pytest.raises(SchemaError, match=r"no column 'Outcome'.*did you mean 'outcome'.*segment"):
        binary_outcome(frame, "Outcome", "Won")


def test_positive_not_among_values_shows_them(frame):
    with pytest.raises(SchemaError, match=r"'won' is not a value.*did you mean 'Won'.*'Lost'"):
        binary_outcome(frame, "outcome", "won")


def test_single_class_and_too_few_rows(frame):
    with pytest.raises(TrainingError, match="one outcome only"):
        binary_outcome(frame.assign(outcome="Won"), "outcome", "Won")
    with pytest.raises(TrainingError, match=r"10 rows .*need at least 50 rows and 10 of each"):
        binary_outcome(frame.head(10), "outcome", "Won")


def test_missing_target_rows_name_the_lines(frame):
    broken = frame.copy()
    broken.loc[[3, 7], "outcome"] = None
    with pytest.raises(SchemaError, match=r"2 of 400 rows have no value .*lines 5, 9"):
        binary_outcome(broken, "outcome", "Won")


def test_more_than_two_values_need_negative(frame):
    mixed = frame.copy()
    mixed.loc[:49, "outcome"] = "Engaging"
    with pytest.raises(SchemaError, match=r"has 3 values.*--negative"):
        binary_outcome(mixed, "outcome", "Won")
    rows, y, labels, left_out = binary_outcome(mixed, "outcome", "Won", ("Lost",))
    assert len(rows) == 350 and left_out == {"Engaging": 50} and labels == ("Lost", "Won")


def test_nothing_to_learn_from(frame):
    constant = frame[["outcome"]].assign(k="1", id=[f"x{i}" for i in range(len(frame))])
    with pytest.raises(TrainingError, match="nothing to learn from.*k: one value"):
        load_tabular(constant, config())


def test_unreadable_files_and_wrong_separator(tmp_path, frame):
    with pytest.raises(SourceError, match="no such file"):
        read_table(tmp_path / "absent.csv")
    binary = tmp_path / "blob.csv"
    binary.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(SourceError, match="not a text file"):
        read_table(binary)
    semicolons = tmp_path / "semi.csv"
    frame.to_csv(semicolons, sep=";", index=False)
    with pytest.raises(SchemaError, match="single column.*try --sep ';'"):
        read_table(semicolons)
    assert read_table(semicolons, sep=";").shape == frame.shape


def test_bom_is_not_part_of_the_first_column(csv):
    assert read_table(csv).columns[0] == "Deal ID"


# -- training, the saved model --------------------------------------------------------------------
def test_400_rows_train_by_cv_and_the_pyfunc_scores_rows_without_target(csv, tmp_path, workdir):
    import mlflow

    data = load_tabular(csv, config())
    run = train_tabular(data, config(), model_out=tmp_path / "model", workdir=workdir)
    document = run.metrics
    assert document["split"] == "cv"
    assert set(document) == {"model", "references", "split", "mlflow_run_id", "cv"}
    assert document["cv"] == {"folds": 3, "repeats": 1, "rows": 400}
    assert set(document["references"]) == {"prior", "logistic_regression"}
    for key in ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "n_train", "n_test"):
        assert key in document["model"]
    assert document["model"]["n_test"] == 400 and document["model"]["roc_auc"] > 0.7
    assert run.model.chosen_ in run.model.selection_

    loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    new_rows = export(30, seed=5).drop(columns="outcome")
    new_rows["amount"] = pd.to_numeric(new_rows["amount"])  # types as pandas reads them
    scored = loaded.predict(new_rows)
    assert list(scored.columns) == ["probability"] and len(scored) == 30
    assert scored["probability"].between(0, 1).all()
    with pytest.raises(Exception, match="missing inputs.*segment"):
        loaded.predict(new_rows.drop(columns="segment"))
    # rows that still hold the outcome: scored the same, and the caller is told
    with_outcome = new_rows.assign(outcome=export(30, seed=5)["outcome"])
    with pytest.warns(UserWarning, match="'outcome' is the outcome .* ignored"):
        rescored = loaded.predict(with_outcome)
    pd.testing.assert_frame_equal(rescored, scored)
    # the run holds decisions and metrics, not data rows
    client = mlflow.MlflowClient()
    params = client.get_run(run.run_id).data.params
    assert params["column.close_value"].startswith("numeric, dropped: leak")
    artifacts = {a.path for a in client.list_artifacts(run.run_id)}
    assert {"columns.json", "metrics.json", "model", "plots"} <= artifacts


def test_time_column_gives_a_time_split(frame, tmp_path, workdir):
    cfg = config(time_col="created", learner="logistic")
    data = load_tabular(frame, cfg)
    run = train_tabular(data, cfg, model_out=tmp_path / "m", workdir=workdir)
    assert run.metrics["split"] == "time"
    assert run.metrics["model"]["n_train"] + run.metrics["model"]["n_test"] == 400
    # the chosen model is the tuned logistic regression: identical to the reference
    model, reference = run.metrics["model"], run.metrics["references"]["logistic_regression"]
    assert model["roc_auc"] == reference["roc_auc"]


# -- the command line -----------------------------------------------------------------------------
def test_cli_trains_on_a_table_and_writes_the_metrics(csv, tmp_path, workdir):
    from typer.testing import CliRunner

    from spm_ml.cli import app

    out = tmp_path / "metrics.json"
    args = ["train", "deal-win", "--table", str(csv), "--target", "outcome"]
    args += ["--positive", "Won", "--time-col", "created", "--learner", "logistic"]
    args += ["--model-out", str(tmp_path / "model"), "--metrics-json", str(out)]
    args += ["--workdir", str(workdir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "column decisions" in result.output and "close_value" in result.output
    document = json.loads(out.read_text())
    assert document["split"] == "time" and document["mlflow_run_id"]


def test_cross_validation_sizes_read_as_folds_over_rows(csv, tmp_path, workdir):
    from spm_ml.cli import models as cli_models

    data = load_tabular(csv, config())
    run = train_tabular(data, config(), model_out=tmp_path / "model", workdir=workdir)
    with cli_models.console.capture() as captured:
        cli_models.print_training_summary(run.metrics)
    text = " ".join(captured.get().split())
    assert "3-fold CV over 400 rows, 1 repeat(s)" in text
    # every candidate of the model choice carries its own standard error, the best too
    from spm_ml.cli.tabular import choice_text

    choice = choice_text(run.model)
    for name, se in run.model.selection_own_se_.items():
        assert f"{name} {run.model.selection_[name]:.4f} +- {se:.4f}" in choice
        assert se > 0
    assert "ECE's shifted back by its bootstrap bias" in text  # which interval, said
    assert "train rows" not in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "nope", "--positive", "Won"], "no column 'nope'"),
        (["--target", "outcome", "--positive", "Yes"], "values seen"),
        (["--target", "outcome", "--positive", "Won", "--data", "x"], "alternatives"),
        (["--target", "outcome"], "--table needs --positive"),
    ],
)
def test_cli_bad_input_exits_2(csv, tmp_path, extra, message):
    from typer.testing import CliRunner

    from spm_ml.cli import app

    args = ["train", "deal-win", "--table", str(csv), "--model-out", str(tmp_path / "m"), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_table_options_without_table_are_refused():
    from typer.testing import CliRunner

    from spm_ml.cli import app

    result = CliRunner().invoke(app, ["train", "deal-win", "--target", "won"])
    assert result.exit_code == 2 and "only apply with --table" in result.output


def test_existing_foreign_folder_is_not_overwritten(csv, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    cfg = config(learner="logistic", time_col="created")
    data = load_tabular(csv, cfg)
    with pytest.raises(SpmMlError, match="not an MLflow model"):
        train_tabular(data, cfg, model_out=foreign, workdir=tmp_path / "w")
    assert (foreign / "keep.txt").read_text() == "precious"


def test_one_standard_error_rule_prefers_the_simplest_candidate():
    from spm_ml.models.tabular import TabularClassifier, one_standard_error_choice

    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.3).astype(int)
    prior = np.full(2000, 0.3)
    lucky = prior.copy()  # right on 90 rows, wrong on 50: better on average, not reliably
    right, wrong = np.arange(0, 90), np.arange(90, 140)
    lucky[right] = np.where(y[right] == 1, 0.5, 0.1)
    lucky[wrong] = np.where(y[wrong] == 1, 0.1, 0.5)
    means, _, chosen = one_standard_error_choice(y, {"prior": prior, "gbm": lucky})
    assert means["gbm"] < means["prior"] and chosen == "prior"
    signal = np.where(y == 1, 0.6, 0.2)
    assert one_standard_error_choice(y, {"prior": prior, "gbm": signal})[2] == "gbm"
    # a model that is the class rate predicts it for everyone
    noise = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(["x", "y"], 300)})
    y = (rng.random(300) < 0.4).astype(int)
    prep = TabularPreprocessor(numeric=("a",), categorical=("b",))
    model = TabularClassifier(preprocessor=prep, max_trials=3).fit(noise, y)
    assert set(model.selection_) == {
        "prior",
        "logistic_regression",
        "gbm",
        "gbm_additive",
        "blend",
    }
    if model.chosen_ == "prior":
        np.testing.assert_allclose(model.predict_proba(noise.head(3))[:, 1], y.mean())


def test_register_puts_the_flat_export_model_in_the_registry(csv, tmp_path, workdir):
    import mlflow

    cfg = config(learner="logistic")
    data = load_tabular(csv, cfg)
    run = train_tabular(data, cfg, model_out=tmp_path / "m", workdir=workdir, register="churn")
    assert (run.model_version, run.alias) == ("1", "champion")
    loaded = mlflow.pyfunc.load_model("models:/churn@champion")
    rows = export(5, seed=9).drop(columns="outcome")
    rows["amount"] = pd.to_numeric(rows["amount"])
    assert loaded.predict(rows)["probability"].between(0, 1).all()
    again = train_tabular(data, cfg, model_out=tmp_path / "m2", workdir=workdir, register="churn")
    assert (again.model_version, again.alias) == ("2", "challenger")


def test_table_mode_writes_nothing_to_the_current_folder(csv, tmp_path, monkeypatch):
    """No --workdir: the MLflow store goes to the per-user folder, never ./spm-ml-quickstart;
    with $MLFLOW_TRACKING_URI it goes there."""
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from spm_ml.cli import app

    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.delenv("SPM_ML_WORKDIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # earlier tests pointed MLflow
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    args = ["train", "deal-win", "--table", str(csv), "--target", "outcome", "--positive", "Won"]
    args += ["--learner", "logistic", "--model-out", str(tmp_path / "model")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert list(here.iterdir()) == []
    assert (tmp_path / "user-data" / "spm-ml" / "flat-exports" / "mlflow.db").exists()

    server = f"sqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    args += ["--register", "won-deals"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "registered as 'won-deals' version 1 (champion)" in result.output
    versions = MlflowClient(tracking_uri=server).search_model_versions("name='won-deals'")
    assert [str(v.version) for v in versions] == ["1"]
