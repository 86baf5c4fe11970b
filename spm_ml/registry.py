"""MLflow beside every training and loading step: store location, experiments, aliases.

One place decides where runs and registered models live, so the CLI, the pipelines, the
batch job and the service all see the same registry.  Nothing here runs at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from spm_ml import settings

logger = logging.getLogger(__name__)


def use_local_store(work: Path) -> str:
    """Point MLflow at the store for ``work`` (SQLite + local artifacts) and return its URI.

    Idempotent; creates ``work`` if needed.  Honours ``$SPM_ML_TRACKING_URI``.
    """
    import mlflow

    work.mkdir(parents=True, exist_ok=True)
    uri = settings.tracking_uri(work)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str, work: Path) -> str:
    """Create (once) and select experiment ``name`` with artifacts under ``work``; return its id."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        location = settings.artifact_root(work) / name
        location.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(name, artifact_location=location.as_uri())
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
