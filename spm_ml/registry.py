"""MLflow beside every training and loading step: store location, experiments, aliases.

One place decides where runs and registered models live, so the CLI, the pipelines, the
batch job and the service all see the same registry.  Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from spm_ml import settings
from spm_ml.models.record import TrainingRecord

logger = logging.getLogger(__name__)


def use_local_store(work: Path, uri: str | None = None) -> str:
    """Point MLflow at the store for ``work`` (SQLite + local artifacts) and return its URI.

    Idempotent; creates ``work`` if the store is there.  Honours ``$SPM_ML_TRACKING_URI``
    (:func:`spm_ml.settings.tracking_uri`); ``uri`` (a tracking server the user named)
    overrides both.
    """
    import mlflow

    uri = uri or settings.tracking_uri(work)
    if settings.is_local_store(uri, work):
        work.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str, work: Path) -> str:
    """Create (once) and select experiment ``name`` with artifacts under ``work``; return its id."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None and not settings.is_local_store(mlflow.get_tracking_uri(), work):
        # the user's tracking server keeps artifacts where it is configured to
        experiment_id = mlflow.create_experiment(name)
    elif experiment is None:
        location = settings.artifact_root(work) / name
        location.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(name, artifact_location=location.as_uri())
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


CHAMPION = "champion"
CHALLENGER = "challenger"


def register_logged_model(run_id: str, artifact_path: str, name: str) -> tuple[str, str]:
    """Register the MLflow model saved under ``artifact_path`` of run ``run_id`` as a new
    version of ``name`` and give it the new-version alias; returns (version, alias)."""
    import mlflow

    version = str(mlflow.register_model(f"runs:/{run_id}/{artifact_path}", name).version)
    return version, assign_new_version_alias(name, version)


def git_commit() -> str | None:
    """The commit of the code that trains, when run from a git checkout."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def assign_new_version_alias(name: str, version: str) -> str:
    """A new version becomes ``challenger``; the very first one becomes ``champion`` too.

    Returns the alias that now designates the version to serve for it (``champion`` when
    there was none before, else ``challenger``).
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_registered_model_alias(name, CHALLENGER, version)
    if champion_version(name) is None:
        client.set_registered_model_alias(name, CHAMPION, version)
        return CHAMPION
    return CHALLENGER


def champion_version(name: str) -> str | None:
    """The version number behind ``name@champion``, or ``None`` if there is none."""
    return alias_version(name, CHAMPION)


def alias_version(name: str, alias: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Set tags on a registered model version."""
    from mlflow import MlflowClient

    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def version_with_tag(name: str, key: str, value: str):
    """The newest version of ``name`` whose tag ``key`` equals ``value``, or ``None``."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        versions = MlflowClient().search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    matching = [v for v in versions if v.tags.get(key) == value]
    return max(matching, key=lambda v: int(v.version), default=None)


def aliases_of(name: str, version: str) -> str | None:
    """The aliases pointing at ``name`` version ``version``, comma-separated, or ``None``."""
    from mlflow import MlflowClient

    aliases = MlflowClient().get_model_version(name, version).aliases
    return ", ".join(sorted(aliases)) or None


@dataclass(frozen=True)
class LoadedModel:
    """A registered model loaded for use: the estimator, how it was trained, which version."""

    model: object
    record: TrainingRecord | None
    name: str
    version: str
    run_id: str | None = None
    """The MLflow run that logged it: its other artifacts (``run_document``)."""

    def run_document(self, path: str) -> dict:
        """A JSON artifact logged with this model's run (e.g. quota risk's rates)."""
        import mlflow

        from spm_ml.errors import ModelNotFoundError

        if self.run_id is None:
            raise ModelNotFoundError(f"{self.name} v{self.version} has no run to read {path} from")
        # MLflow draws a download bar per artifact: noise in a command's output
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        return mlflow.artifacts.load_dict(f"runs:/{self.run_id}/{path}")


def load_model(name: str, *, alias: str | None = None, version: str | None = None) -> LoadedModel:
    """Load ``name@alias`` (default champion) or ``name`` version ``version`` with its record.

    The :class:`~spm_ml.models.record.TrainingRecord` stored with the model tells the
    caller which features, label and sentiment model to use; ``None`` for models logged
    before records existed.
    """
    import mlflow

    from spm_ml.models.pyfunc import unwrap

    if version is None:
        alias = alias or CHAMPION
        model_uri(name, alias)  # a clear error when the alias is unset
        version = alias_version(name, alias)
    pyfunc_model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    metadata = pyfunc_model.metadata.metadata
    return LoadedModel(
        model=unwrap(pyfunc_model),
        record=TrainingRecord.from_metadata(metadata),
        name=name,
        version=str(version),
        run_id=pyfunc_model.metadata.run_id,
    )


def model_uri(name: str, alias: str = CHAMPION) -> str:
    """``models:/NAME@ALIAS``; raises :class:`ModelNotFoundError` if the alias is unset."""
    from spm_ml.errors import ModelNotFoundError

    if alias_version(name, alias) is None:
        raise ModelNotFoundError(
            f"no registered model {name!r} with alias {alias!r} in {_current_uri()}; "
            f"train one first (spm-ml quickstart or spm-ml train {name})"
        )
    return f"models:/{name}@{alias}"


def _current_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()
