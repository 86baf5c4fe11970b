"""Wrap a trained :class:`~spm_ml.nlp.scoring.SentimentModel` as an MLflow pyfunc model.

``mlflow.pyfunc.load_model(DIR).predict(pd.DataFrame({"text": [...]}))`` then returns the
score columns, so the batch job, the service and users' notebooks all load models the same
way.  The saved folder holds the spaCy pipeline without its string store (no training text),
a signature, and a synthetic input example.  Import this module only to save or load
pyfunc models (it imports MLflow).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from spm_ml.errors import ModelNotFoundError, SchemaError
from spm_ml.nlp.scoring import PIPELINE_ARTIFACT, SentimentModel, pipeline_dir

logger = logging.getLogger(__name__)

__all__ = [
    "INPUT_EXAMPLE",
    "PIPELINE_ARTIFACT",
    "SentimentPyfunc",
    "load_sentiment_model",
    "save_pyfunc",
]

INPUT_EXAMPLE = pd.DataFrame(
    {"text": ["Thanks, the proposal looks good and we plan to sign on Friday."]}
)
"""A synthetic request (never a real email) stored with every model."""


class SentimentPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc flavour: ``predict(DataFrame[text]) -> DataFrame[label, p_*, ...]``."""

    def load_context(self, context: Any) -> None:
        self.model = SentimentModel.load(context.artifacts[PIPELINE_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        if isinstance(model_input, pd.Series):
            model_input = model_input.to_frame("text")
        if "text" not in model_input.columns:
            raise SchemaError(
                f"Sentiment model input needs a 'text' column; got {list(model_input.columns)}."
            )
        return self.model.score(model_input["text"].tolist())


def _signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema(
            [
                ColSpec("string", "label", required=False),
                ColSpec("double", "p_negative", required=False),
                ColSpec("double", "p_neutral", required=False),
                ColSpec("double", "p_positive", required=False),
                ColSpec("boolean", "is_english"),
                ColSpec("long", "n_sentences"),
            ]
        ),
    )


def save_pyfunc(model: SentimentModel, path: str | Path) -> Path:
    """Write ``model`` as an MLflow pyfunc model folder at ``path`` (replacing it).

    The folder is assembled next to ``path`` and renamed into place, so a reader never sees
    half a model.
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sentiment-", dir=path.parent))
    try:
        spacy_dir = model.save(staging / PIPELINE_ARTIFACT)
        target = staging / "model"
        mlflow.pyfunc.save_model(
            path=str(target),
            python_model=SentimentPyfunc(),
            artifacts={PIPELINE_ARTIFACT: str(spacy_dir)},
            signature=_signature(),
            input_example=INPUT_EXAMPLE,
            pip_requirements=["spacy>=3.8,<3.9", "vaderSentiment>=3.3", "mlflow", "pandas"],
        )
        if not (target / "MLmodel").is_file():  # STYLE 13: every model carries its signature
            raise RuntimeError("MLflow did not write an MLmodel file")
        if path.exists():
            shutil.rmtree(path)
        target.rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Saved sentiment pyfunc model to %s", path)
    return path


def load_sentiment_model(uri: str | Path) -> SentimentModel:
    """Load a sentiment model from a local pyfunc folder or any MLflow model URI.

    A local folder written by :func:`save_pyfunc` is read directly (fast: no MLflow
    environment checks); other URIs (``runs:/``, ``models:/name@alias``) go through MLflow.
    """
    local = Path(str(uri).removeprefix("file://"))
    if local.is_dir():
        if pipeline_dir(local).is_dir():
            return SentimentModel.load(pipeline_dir(local))
        if (local / "meta.json").is_file():  # a bare spaCy pipeline folder
            return SentimentModel.load(local)
        raise ModelNotFoundError(
            f"{local} is not a sentiment model folder (no MLmodel with a 'pipeline' artifact)."
        )
    try:
        loaded = mlflow.pyfunc.load_model(str(uri))
    except Exception as exc:  # MLflow raises several types for a bad URI
        raise ModelNotFoundError(f"Cannot load sentiment model {uri!s}: {exc}") from None
    python_model = loaded.unwrap_python_model()
    if not isinstance(python_model, SentimentPyfunc):
        raise ModelNotFoundError(f"{uri!s} is not a spm-ml sentiment model.")
    return python_model.model
