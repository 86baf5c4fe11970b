"""Training, the pyfunc model, the CLI commands and privacy of the email text."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from spm_ml.cli.sentiment import register
from spm_ml.errors import SchemaError, TrainingError
from spm_ml.nlp.corpus import training_sentences
from spm_ml.nlp.labels import map_labels

MARKER = "QZXWVMARKER8841"
"""A string planted in one training email; it must never leave the user's own files."""


def _app() -> typer.Typer:
    app = typer.Typer()
    train_app, sentiment_app = typer.Typer(), typer.Typer()
    app.add_typer(train_app, name="train")
    app.add_typer(sentiment_app, name="sentiment")
    register(train_app, sentiment_app)
    return app


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, labels = training_sentences()
    short = {"negative": "neg", "neutral": "Neutral", "positive": "POS"}
    frame = pd.DataFrame(
        {"body": texts[::3], "sentiment": [short[y] for y in labels[::3]], "id": 0}
    )
    frame.loc[0, "body"] = f"{MARKER} we are cancelling everything, {MARKER}."
    path = tmp_path_factory.mktemp("train") / "emails.csv"
    frame.to_csv(path, index=False)
    return path


def test_map_labels_accepts_synonyms_and_rejects_unknown():
    assert map_labels(["neg", "Neutral", "POS", -1, 0, 1]) == [
        "negative",
        "neutral",
        "positive",
        "negative",
        "neutral",
        "positive",
    ]
    with pytest.raises(SchemaError, match="'meh'"):
        map_labels(["positive", "meh", "negative"], column="sentiment")


def test_one_class_only_is_a_clear_error():
    with pytest.raises(TrainingError, match="only the class"):
        map_labels(["positive"] * 10, column="sentiment")


def test_train_cli_end_to_end_and_privacy(labelled_csv, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    work, model_dir, metrics_path = tmp_path / "work", tmp_path / "model", tmp_path / "m.json"
    args = [
        "train", "sentiment", "--table", str(labelled_csv), "--text-col", "body",
        "--label-col", "sentiment", "--model-out", str(model_dir),
        "--metrics-json", str(metrics_path), "--workdir", str(work),
    ]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output
    metrics = json.loads(metrics_path.read_text())
    assert {"accuracy", "macro_f1", "per_class", "n_train", "n_test", "mlflow_run_id"} <= set(
        metrics
    )
    assert set(metrics["per_class"]) == {"negative", "neutral", "positive"}
    assert metrics["n_test"] > 0 and metrics["macro_f1"] > 0.5

    run = mlflow.get_run(metrics["mlflow_run_id"])
    assert run.data.metrics["macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert "components.textcat.model.ngram_size" in run.data.params

    model = mlflow.pyfunc.load_model(str(model_dir))
    assert model.metadata.signature is not None
    out = model.predict(pd.DataFrame({"text": ["We are not interested.", "Love it, thanks!"]}))
    assert list(out.columns[:4]) == ["label", "p_negative", "p_neutral", "p_positive"]
    assert out["label"].tolist() == ["negative", "positive"]

    # Privacy: the planted marker is in no log record, CLI output, MLflow file or model file.
    assert MARKER not in caplog.text and MARKER not in result.output
    for root in (work, model_dir):
        for path in root.rglob("*"):
            if path.is_file():
                assert MARKER.encode() not in path.read_bytes(), path


def test_train_cli_errors_exit_2(tmp_path):
    frame = pd.DataFrame({"body": ["a", "b", "c", "d"], "sentiment": ["positive"] * 4})
    path = tmp_path / "one.csv"
    frame.to_csv(path, index=False)
    base = ["train", "sentiment", "--table", str(path), "--model-out", str(tmp_path / "m")]
    base += ["--workdir", str(tmp_path / "w")]
    result = CliRunner().invoke(_app(), [*base, "--text-col", "body", "--label-col", "sentiment"])
    assert result.exit_code == 2 and "only the class" in result.output
    result = CliRunner().invoke(_app(), [*base, "--text-col", "nope", "--label-col", "sentiment"])
    assert result.exit_code == 2 and "'nope'" in result.output


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_cli_with_default_model(default_model, tmp_path, caplog, suffix):
    caplog.set_level(logging.DEBUG)
    frame = pd.DataFrame(
        {
            "email_id": [1, 2, 3, 4],
            "body": [
                f"{MARKER} We have decided to go with another vendor.",
                "Thanks, the proposal looks great!",
                "",
                "Can you send the W-9?",
            ],
        }
    )
    table = tmp_path / f"in{suffix}"
    if suffix == ".csv":
        frame.to_csv(table, index=False)
    else:
        frame.to_parquet(table, index=False)
    out = tmp_path / f"out{suffix}"
    args = ["sentiment", "score", "--table", str(table), "--text-col", "body", "--out", str(out)]
    result = CliRunner().invoke(_app(), [*args, "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert {"label", "p_negative", "p_neutral", "p_positive", "is_english"} <= set(scored.columns)
    assert scored["email_id"].tolist() == [1, 2, 3, 4]
    assert scored["label"][0] == "negative" and scored["label"][1] == "positive"
    assert pd.isna(scored["label"][2])
    assert MARKER not in caplog.text and MARKER not in result.output


def test_score_cli_with_trained_model_and_non_utf8_csv(default_model, tmp_path):
    from spm_ml.nlp.pyfunc import save_pyfunc

    model_dir = save_pyfunc(default_model, tmp_path / "model")
    table = tmp_path / "latin1.csv"
    table.write_bytes("body\nCaf\xe9 meeting was great\nWe are not happy\n".encode("latin-1"))
    out = tmp_path / "out.csv"
    args = ["sentiment", "score", "--table", str(table), "--text-col", "body", "--out", str(out)]
    result = CliRunner().invoke(_app(), [*args, "--model", str(model_dir), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["label"].tolist() == ["positive", "negative"]
    result = CliRunner().invoke(_app(), [*args, "--model", str(tmp_path / "missing")])
    assert result.exit_code == 2
