"""Environment variables and default locations, declared once.

Every ``SPM_ML_*`` variable the project reads is listed here, typed, with its default.
Nothing is read at import time: call :func:`workdir` and friends when needed.
"""

from __future__ import annotations

import os
from pathlib import Path

from spm_ml.errors import SpmMlError

DEFAULT_WORKDIR = Path("spm-ml-quickstart")
"""Where quickstart, training and serving put data, the MLflow store and outputs."""


def workdir(explicit: str | Path | None = None) -> Path:
    """The working folder: ``explicit``, else ``$SPM_ML_WORKDIR``, else ``./spm-ml-quickstart``."""
    if explicit is not None:
        return Path(explicit).resolve()
    return Path(os.environ.get("SPM_ML_WORKDIR", DEFAULT_WORKDIR)).resolve()


def tracking_uri(work: Path) -> str:
    """The MLflow tracking URI: ``$SPM_ML_TRACKING_URI``, the launcher's store inside
    ``mlflow run``, else a SQLite file inside ``work``.

    MLflow 3.17's plain file store (``./mlruns``) raises, so the local default is SQLite.
    """
    env = os.environ.get("SPM_ML_TRACKING_URI")
    if not env and os.environ.get("MLFLOW_RUN_ID"):
        # inside `mlflow run`: log where the launcher keeps its run.  (Not otherwise:
        # mlflow.set_tracking_uri also writes MLFLOW_TRACKING_URI, so it would pin every
        # later work folder of this process to the first one's store.)
        env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(work / 'mlflow.db').resolve()}"


def users_tracking_uri() -> str | None:
    """``$MLFLOW_TRACKING_URI`` when the user set it (a tracking server): read by commands
    that honour it at their start, before spm-ml points MLflow anywhere (which rewrites it)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or None


def is_local_store(uri: str, work: Path) -> bool:
    """Whether ``uri`` is the SQLite store inside ``work`` (its artifacts go there too)."""
    return uri == f"sqlite:///{(work / 'mlflow.db').resolve()}"


def table_workdir(explicit: str | Path | None = None) -> Path:
    """The work folder of a flat-export run (``train --table``): ``explicit``, else
    ``$SPM_ML_WORKDIR``, else a per-user folder (:func:`user_data_dir`).

    Unlike an organisation's run, a flat export is trained from any directory: nothing is
    written to the current one unless asked (``--workdir``, ``--model-out``)."""
    if explicit is not None or os.environ.get("SPM_ML_WORKDIR"):
        return workdir(explicit)
    return user_data_dir() / "flat-exports"


def user_data_dir() -> Path:
    """``$SPM_ML_DATA_HOME``, else ``$XDG_DATA_HOME/spm-ml``, else ``~/.local/share/spm-ml``."""
    env = os.environ.get("SPM_ML_DATA_HOME")
    if env:
        return Path(env).resolve()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return (Path(base) / "spm-ml").resolve()


def artifact_root(work: Path) -> Path:
    """Folder for MLflow artifacts of locally created experiments."""
    return (work / "mlartifacts").resolve()


def cache_dir() -> Path:
    """Per-user cache (the default sentiment model is built here on first use)."""
    env = os.environ.get("SPM_ML_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spm-ml"


def tokens_path(work: Path) -> Path:
    """The service's token store (``spm_ml/tokens.py``): ``$SPM_ML_TOKENS_FILE``, else
    ``WORKDIR/tokens.json``.

    ``spm-ml token create|revoke|list`` write and read it, the service re-reads it when it
    changes.  The variable lets a deployment keep the file apart from the work folder (a
    mounted secret, say); the CLI and the service must then see the same value.
    """
    env = os.environ.get("SPM_ML_TOKENS_FILE")
    return Path(env).resolve() if env else work / "tokens.json"


def api_token() -> str | None:
    """A single admin token from ``$SPM_ML_API_TOKEN``: deprecated, kept for deployments
    made before the token store.

    The service accepts it as the bearer token of an admin named ``SPM_ML_API_TOKEN``,
    beside the store's tokens, and warns at start-up; ``spm-ml token create --role admin``
    is the replacement (a named, revocable token whose secret is stored hashed).
    """
    return os.environ.get("SPM_ML_API_TOKEN") or None


def request_log() -> bool:
    """Whether the service writes its structured request log, one JSON line per request
    (``$SPM_ML_REQUEST_LOG``, on by default; ``0`` turns it off)."""
    value = os.environ.get("SPM_ML_REQUEST_LOG", "1").strip().lower()
    return value not in ("0", "false", "no", "off")


DEFAULT_MAX_BODY_BYTES = 2_000_000
"""A deal with 10,000 events is about 1 MB of JSON."""


def max_body_bytes() -> int:
    """Largest request body the service reads (``$SPM_ML_MAX_BODY_BYTES``); larger get 413."""
    return _positive_int("SPM_ML_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)


def serving_workers() -> int:
    """Worker processes of the HTTP service (``$SPM_ML_WORKERS``, default 1).

    Each worker is one Python process with its own copy of the model and the organisation's
    context (memory grows by that much per worker) and uses about one core; on a 2-core
    machine 2 workers roughly double the throughput.
    """
    return _positive_int("SPM_ML_WORKERS", 1)


def access_log() -> bool:
    """Whether the service logs one line per request (``$SPM_ML_ACCESS_LOG=1``; off by
    default: the line costs CPU at every request, and ``/metrics`` counts requests,
    statuses and latencies without it)."""
    return _flag("SPM_ML_ACCESS_LOG")


def keepalive_requests() -> int:
    """Requests the service answers on one kept-alive connection before closing it
    (``$SPM_ML_KEEPALIVE_REQUESTS``, default 100), so connections spread over workers."""
    return _positive_int("SPM_ML_KEEPALIVE_REQUESTS", 100)


def tracing() -> bool:
    """Whether BentoML's OpenTelemetry middleware traces the API routes
    (``$SPM_ML_TRACING=1``; off by default: without an exporter configured in BentoML's
    ``tracing`` settings the spans go nowhere, and each request paid for them)."""
    return _flag("SPM_ML_TRACING")


def _flag(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SpmMlError(f"{name} must be a positive whole number, not {raw!r}")
    return value


def data_source(work: Path) -> str:
    """Where the organisation's tables live: ``$SPM_ML_DATA`` or ``WORKDIR/data``.

    The service reads it at start-up for the context features need (reps, accounts, track
    records); the batch job scores the open deals in it.
    """
    return os.environ.get("SPM_ML_DATA") or str(work / "data")


def email_scores_path(work: Path) -> Path:
    """Cache of email sentiment scores (ids and scores only, never text) for ``work``."""
    return work / "email_scores.parquet"


DEFAULT_RELOAD_SECONDS = 60


def reload_seconds() -> int:
    """How often the service asks the registry whether a champion moved
    (``$SPM_ML_RELOAD_SECONDS``, default 60; ``0`` turns polling off: then only
    ``POST /admin/reload`` loads new champions)."""
    raw = os.environ.get("SPM_ML_RELOAD_SECONDS")
    if raw is None or not raw.strip():
        return DEFAULT_RELOAD_SECONDS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise SpmMlError(f"SPM_ML_RELOAD_SECONDS must be a whole number >= 0, not {raw!r}")
    return value


def report_source(work: Path) -> Path:
    """The batch run the service's manager pages are built from
    (``GET /v1/managers/{id}/report``): ``$SPM_ML_REPORT_FROM`` (``spm-ml serve
    --report-from``), else ``WORKDIR/outputs/batch`` (where ``spm-ml quickstart`` runs the
    batch)."""
    env = os.environ.get("SPM_ML_REPORT_FROM")
    return Path(env).resolve() if env else work / "outputs" / "batch"
