"""``spm-ml train sentiment``: table -> labels -> split -> fit -> held-out metrics -> MLflow.

MLflow receives the config, the data sizes and the metrics, never a text: texts are the
customers' emails.  The model is written as a pyfunc folder to ``model_out``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spm_ml.errors import TrainingError
from spm_ml.nlp.components import LABELS
from spm_ml.nlp.evaluation import classification_metrics
from spm_ml.nlp.labels import map_labels
from spm_ml.nlp.pipeline import TrainingSettings, load_config
from spm_ml.nlp.tables import read_table, require_column

logger = logging.getLogger(__name__)

__all__ = ["TrainResult", "stratified_split", "train_sentiment"]


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced: the model folder, held-out metrics, the MLflow run."""

    model_dir: Path
    metrics: dict[str, Any]
    mlflow_run_id: str | None


def stratified_split(
    labels: list[str], test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified random split (texts carry no time order, unlike deal tables)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    try:
        train, test = train_test_split(
            index, test_size=test_size, random_state=seed, stratify=labels
        )
    except ValueError as exc:
        raise TrainingError(
            f"Cannot hold out {test_size:.0%} of {len(labels)} rows stratified by class "
            f"({exc}); add labelled rows or lower test_size."
        ) from None
    return np.sort(train), np.sort(test)


def _flat_params(config: Any, prefix: str = "") -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{str(key).lstrip('@')}"
        if isinstance(value, dict):
            params.update(_flat_params(value, name + "."))
        else:
            params[name[:250]] = str(value)[:500]
    return params


def train_sentiment(
    table: str | Path,
    text_col: str,
    label_col: str,
    model_out: str | Path,
    config_path: str | Path | None = None,
    metrics_json: str | Path | None = None,
    workdir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a sentiment model on a labelled CSV/Parquet table and evaluate it held out.

    Parameters
    ----------
    table
        CSV or Parquet file with a text column and a label column.
    text_col, label_col
        Column names; labels may be spelled as in :data:`~spm_ml.nlp.labels.LABEL_SYNONYMS`.
    model_out
        Folder for the MLflow pyfunc model (replaced if it exists).
    config_path
        spaCy config (default: the packaged ``sentiment.cfg``).
    metrics_json
        If given, write ``accuracy, macro_f1, per_class, n_train, n_test, mlflow_run_id``
        (plus ``confusion_matrix``) there.
    workdir
        Work folder holding the MLflow store (``settings.workdir()`` by default); pass
        ``None`` and have called ``registry.use_local_store`` yourself to use another store.
    """
    import mlflow

    from spm_ml import registry, settings
    from spm_ml.nlp.pyfunc import save_pyfunc
    from spm_ml.nlp.scoring import SentimentModel
    from spm_ml.nlp.training import fit_pipeline

    work = settings.workdir(workdir)
    registry.use_local_store(work)
    registry.ensure_experiment("sentiment", work)

    config = load_config(config_path, overrides)
    train_settings = TrainingSettings.from_config(config)
    frame = read_table(table)
    require_column(frame, text_col, table)
    require_column(frame, label_col, table)
    frame = frame[frame[label_col].notna()]
    labels = map_labels(frame[label_col].tolist(), column=label_col)
    texts = frame[text_col].tolist()
    train_idx, test_idx = stratified_split(labels, train_settings.test_size, train_settings.seed)
    train_texts = [texts[i] for i in train_idx]
    train_labels = [labels[i] for i in train_idx]

    with mlflow.start_run(run_name="train-sentiment") as run:
        mlflow.log_params(_flat_params(config))
        mlflow.log_params(
            {
                "table": Path(table).name,
                "text_col": text_col,
                "label_col": label_col,
                "n_train": len(train_idx),
                "n_test": len(test_idx),
                "split": f"stratified random, test_size={train_settings.test_size}",
            }
        )
        model: SentimentModel = fit_pipeline(train_texts, train_labels, config)
        scores = model.score([texts[i] for i in test_idx])
        metrics = classification_metrics([labels[i] for i in test_idx], scores["label"].tolist())
        mlflow.log_metrics({"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]})
        for label in LABELS:
            for key in ("precision", "recall", "f1"):
                mlflow.log_metric(f"{label}_{key}", metrics["per_class"][label][key])
        with tempfile.TemporaryDirectory() as tmp:
            config.to_disk(Path(tmp) / "sentiment.cfg")
            (Path(tmp) / "confusion_matrix.json").write_text(
                json.dumps(metrics["confusion_matrix"]), encoding="utf-8"
            )
            mlflow.log_artifacts(tmp, artifact_path="config")
        model_dir = save_pyfunc(model, model_out)
        mlflow.set_tag("model_out", str(model_dir))
        run_id = run.info.run_id

    metrics = {**metrics, "n_train": len(train_idx), "n_test": len(test_idx)}
    metrics["mlflow_run_id"] = run_id
    if metrics_json is not None:
        path = Path(metrics_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    logger.info(
        "Sentiment model trained: macro-F1 %.3f, accuracy %.3f on %d held-out rows (run %s).",
        metrics["macro_f1"],
        metrics["accuracy"],
        len(test_idx),
        run_id,
    )
    return TrainResult(model_dir=model_dir, metrics=metrics, mlflow_run_id=run_id)
