"""Wrap a trained :class:`~spm_ml.nlp.scoring.SentimentModel` as an MLflow pyfunc model.

``mlflow.pyfunc.load_model(DIR).predict(pd.DataFrame({"text": [...]}))`` then returns the
score columns, so the batch job, the service and users' notebooks all load models the same
way.  The saved folder holds the spaCy pipeline without its string store (no training text),
a signature, and a synthetic input example.  Import this module only to save or load
pyfunc models (it imports MLflow).
"""

from __future__ import annotations

import logging
import os
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
    "SENTIMENT_MODEL_NAME",
    "SentimentPyfunc",
    "load_sentiment_model",
    "register_sentiment_model",
    "save_pyfunc",
]

SENTIMENT_MODEL_NAME = "email-sentiment"
"""Registered name of the email sentiment model the service serves (alias ``champion``)."""
FINGERPRINT_TAG = "sentiment_fingerprint"

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


_REQUIREMENTS = ["spacy>=3.8,<3.9", "vaderSentiment>=3.3", "mlflow", "pandas"]


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
            pip_requirements=_REQUIREMENTS,
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


def register_sentiment_model(
    model_dir: str | Path,
    workdir: Path,
    name: str = SENTIMENT_MODEL_NAME,
    model: SentimentModel | None = None,
) -> tuple[str, bool]:
    """Put the pyfunc folder ``model_dir`` (written by :func:`save_pyfunc`) in the work
    folder's MLflow registry as ``name``; returns ``(version, reused)``.

    The version is tagged with the model's fingerprint: registering the same weights again
    reuses that version.  The first version becomes ``champion`` (later ones
    ``challenger``), as for every family.  What goes to MLflow is the pipeline without its
    string store, the signature and the synthetic input example: no training text, no email.
    ``model``: the same model already loaded (spares loading it again for its fingerprint).
    """
    from spm_ml import registry

    model_dir = Path(model_dir)
    model = model or SentimentModel.load(pipeline_dir(model_dir))
    fingerprint = model.fingerprint
    registry.use_local_store(workdir)
    known = registry.version_with_tag(name, FINGERPRINT_TAG, fingerprint)
    if known is not None:
        version = str(known.version)
        if registry.champion_version(name) is None:
            registry.assign_new_version_alias(name, version)
        return version, True
    registry.ensure_experiment(name, workdir)
    # MLflow draws a download bar while it checks the input example: noise in quickstart
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with mlflow.start_run(run_name=f"{name} {fingerprint[:8]}"):
        mlflow.log_param("fingerprint", fingerprint)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=SentimentPyfunc(),
            artifacts={PIPELINE_ARTIFACT: str(pipeline_dir(model_dir))},
            signature=_signature(),
            input_example=INPUT_EXAMPLE,
            pip_requirements=_REQUIREMENTS,
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    registry.tag_version(name, version, {FINGERPRINT_TAG: fingerprint})
    registry.assign_new_version_alias(name, version)
    return version, False


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
