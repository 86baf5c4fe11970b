"""CLI commands ``spm-ml train sentiment`` and ``spm-ml sentiment score``.

Thin wrappers over :mod:`spm_ml.nlp`: parse options, set up the MLflow store, show
progress; :func:`~spm_ml.cli._common.exits_on_error` turns a
:class:`~spm_ml.errors.SpmMlError` into exit status 2 with its message.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from spm_ml.cli._common import console, exits_on_error, progress_bar

logger = logging.getLogger(__name__)

__all__ = ["register", "score_command", "train_command"]


@exits_on_error
def train_command(
    table: Annotated[Path, typer.Option(help="Labelled CSV or Parquet file.")],
    text_col: Annotated[str, typer.Option(help="Column with the email or sentence text.")],
    label_col: Annotated[
        str, typer.Option(help="Column with negative/neutral/positive (or neg/neu/pos, -1/0/1).")
    ],
    model_out: Annotated[Path, typer.Option(help="Folder for the MLflow pyfunc model.")],
    config: Annotated[
        Path | None, typer.Option(help="spaCy config (default: the packaged sentiment.cfg).")
    ] = None,
    metrics_json: Annotated[
        Path | None, typer.Option(help="Write held-out metrics to this JSON file.")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Work folder with the MLflow store (default: settings).")
    ] = None,
) -> None:
    """Train a sentiment model on a labelled table; report held-out accuracy and macro-F1."""
    from spm_ml.nlp.experiment import train_sentiment

    result = train_sentiment(
        table,
        text_col,
        label_col,
        model_out,
        config_path=config,
        metrics_json=metrics_json,
        workdir=workdir,
    )
    metrics = result.metrics
    console.print(
        f"accuracy {metrics['accuracy']:.3f}  macro-F1 {metrics['macro_f1']:.3f}  "
        f"(train {metrics['n_train']}, held out {metrics['n_test']})"
    )
    for label, row in metrics["per_class"].items():
        console.print(
            f"  {label:<9} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
            f"f1 {row['f1']:.3f}  n={row['support']}"
        )
    matrix = metrics["confusion_matrix"]
    columns = "/".join(matrix["labels"])
    console.print(f"confusion matrix (rows true, columns predicted {columns})")
    for label, row in zip(matrix["labels"], matrix["matrix"], strict=True):
        console.print(f"  {label:<9} " + " ".join(f"{n:>6}" for n in row))
    console.print(f"model: {result.model_dir}")
    console.print(f"mlflow run: {result.mlflow_run_id}")


@exits_on_error
def score_command(
    table: Annotated[Path, typer.Option(help="CSV or Parquet file to score.")],
    text_col: Annotated[str, typer.Option(help="Column with the email text.")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")],
    model: Annotated[
        str | None, typer.Option(help="Model folder or MLflow URI (default: built-in model).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per batch.")] = 512,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    n_process: Annotated[
        int, typer.Option(min=0, help="Worker processes; 0 = one per core (at most 4).")
    ] = 0,
    workdir: Annotated[
        Path | None, typer.Option(help="Work folder with the MLflow store (default: settings).")
    ] = None,
) -> None:
    """Add label, p_negative, p_neutral, p_positive (and is_english) columns to a table."""
    from spm_ml import registry, settings
    from spm_ml.nlp.batch import score_table

    if model is not None and not Path(model).exists():
        registry.use_local_store(settings.workdir(workdir))  # for runs:/ and models:/ URIs
    with progress_bar() as update:
        state = {"done": 0, "total": 0}

        def on_start(total: int) -> None:
            state["total"] = total
            if progress:
                update("scoring emails", 0, total)

        def on_batch(n: int) -> None:
            state["done"] += n
            if progress:
                update("scoring emails", state["done"], state["total"])

        path = score_table(
            table,
            text_col,
            out,
            model=model,
            batch_size=batch_size,
            on_start=on_start,
            on_batch=on_batch,
            n_process=n_process or min(os.cpu_count() or 1, 4),
        )
    console.print(json.dumps({"out": str(path), "rows": state["total"]}), highlight=False)


def register(train_app: typer.Typer, sentiment_app: typer.Typer) -> None:
    """Add ``sentiment`` to ``spm-ml train`` and ``score`` to ``spm-ml sentiment``."""
    train_app.command("sentiment")(train_command)
    sentiment_app.command("score")(score_command)
