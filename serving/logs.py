"""What the server logs about requests: one structured line each, and no request data.

:class:`RequestLog` writes one JSON line per request to standard output, or to the
``spm_ml.requests`` logger when it has been given handlers:

``{"ts": "2026-12-06T23:50:01.123Z", "request_id": "9f1c...", "method": "POST",
"endpoint": "/v1/deals/score", "status": 200, "latency_ms": 4.21, "caller": "ann",
"role": "manager", "models": {"deal-win": "3"}}``

``models`` is whatever the endpoints noted with :func:`note_models`; ``caller`` is the
token's *name* (``null`` when the request had no valid token).  Health probes are not
logged (an orchestrator calls them every few seconds).  The line never holds the
body, a header (the ``Authorization`` header least of all) or the query string, so neither
email text nor a token can reach it.  ``SPM_ML_REQUEST_LOG=0`` turns it off.

BentoML logs every failed request at ERROR with the exception's traceback
(``bentoml._internal.server.http_app.log_exception``).  For a rejected body that
exception is pydantic's ``ValidationError``, whose text repeats each bad ``input_value``:
an email body, a custom field, a whole request.  Email text is customer data and must never
reach a log, so :class:`RequestDataRedactor` rewrites those records:

* a rejected body becomes one WARNING line with the field paths and error kinds only, e.g.
  ``body.emails.0.body: string_too_long``; a path segment that is not a field of the API
  (an unknown key a client sent) is shown as ``<extra>``;
* any other 4xx raised on purpose (``InvalidArgument``, ``NotFound``) becomes one WARNING
  line with the status and the exception's class;
* anything else (a bug: HTTP 500) keeps its traceback, frames only: each exception's message
  is withheld, since pandas and friends quote the values they fail on.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from serving import rep_schemas, schemas

REDACTED_LOGGERS = (
    "bentoml._internal.server.http_app",  # log_exception: every failed API request
    "bentoml._internal.marshal.dispatcher",  # failed adaptive batches
)


def _field_names(*models: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for model in models for name in model.model_fields)


KNOWN_FIELDS = _field_names(
    schemas.DealScoreList,
    schemas.DealCoachingList,
    schemas.WhatIfList,
    schemas.WhatIfRequest,
    rep_schemas.RepQuery,
    rep_schemas.RepIn,
    rep_schemas.QuotaIn,
    rep_schemas.PayIn,
    rep_schemas.RepChangeIn,
    rep_schemas.OwnedDealIn,
    rep_schemas.DealChangeIn,
    rep_schemas.RepActivityIn,
    rep_schemas.RepEmailIn,
    schemas.EmailList,
    schemas.EmailText,
    schemas.DealScoreRequest,
    schemas.DealIn,
    schemas.HistoryIn,
    schemas.ActivityIn,
    schemas.EmailIn,
)
"""Field names of every request model: a rejected body's log line names these and writes
``<extra>`` for anything else (an unknown key may itself be customer data)."""


def describe_validation_error(error: ValidationError) -> str:
    """``path: kind`` for each problem, without any submitted value."""
    return "; ".join(
        f"{_path(problem['loc'])}: {problem['type']}"
        for problem in error.errors(include_input=False, include_context=False, include_url=False)
    )


def _path(loc: tuple[Any, ...]) -> str:
    parts = ["body"]
    for part in loc:
        if isinstance(part, int) or part in KNOWN_FIELDS:
            parts.append(str(part))
        else:
            parts.append("<extra>")
    return ".".join(parts)


def redacted_traceback(error: BaseException) -> str:
    """The traceback of ``error`` and its causes, with every exception message withheld."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    blocks = []
    for exc in reversed(chain):
        frames = "".join(traceback.format_tb(exc.__traceback__))
        name = f"{type(exc).__module__}.{type(exc).__qualname__}"
        blocks.append(
            f"Traceback (most recent call last):\n{frames}"
            f"{name}: <message withheld: it may quote request data>"
        )
    return "\n\nThe above exception led to the following one:\n\n".join(blocks)


class RequestDataRedactor(logging.Filter):
    """Rewrites failed-request records so that no submitted value reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        status = _client_error_status(error)
        if isinstance(error, ValidationError):
            record.msg = "rejected request body (HTTP 400): %s"
            record.args = (describe_validation_error(error),)
            _as_warning(record)
        elif status is not None:
            record.msg = "rejected request (HTTP %d %s)"
            record.args = (status, type(error).__name__)
            _as_warning(record)
        else:
            record.exc_text = redacted_traceback(error)
        record.exc_info = None
        return True


def _client_error_status(error: BaseException) -> int | None:
    from bentoml.exceptions import BentoMLException

    if isinstance(error, BentoMLException) and 400 <= error.error_code < 500:
        return int(error.error_code)
    return None


def _as_warning(record: logging.LogRecord) -> None:
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    record.exc_text = None


_REDACTOR = RequestDataRedactor()


def install_log_redaction() -> None:
    """Attach the redactor to BentoML's request-error loggers (idempotent, per process)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


REQUEST_LOGGER = "spm_ml.requests"
MODELS_KEY = "spm_ml_models"
"""Key, in the ASGI scope's ``state``, of the ``{family: version}`` a request was served by."""
_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str)  # built once, not per line
MAX_LOGGED_PATH = 200
"""Characters of a request's path the log keeps (a client chooses the path)."""


def note_models(context: Any, versions: Mapping[str, str]) -> None:
    """Record, for the request log, the model versions that answered a request.

    Call it from an endpoint with its ``bentoml.Context``, e.g.
    ``note_models(ctx, {"deal-win": "3"})``; several calls add up.
    """
    state = context.request.scope.setdefault("state", {})
    state.setdefault(MODELS_KEY, {}).update({k: str(v) for k, v in versions.items()})


class RequestLog:
    """Writes the one JSON line of each request (see the module docstring for its fields).

    Parameters
    ----------
    logger
        Where the lines go.  By default the ``spm_ml.requests`` logger when something
        configured it (it has handlers); otherwise each line is written straight to standard
        output, skipping the logging machinery, whose record, lock and formatter cost
        several times the line itself at every request (benchmarks/request_guard_speed.py).
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        if logger is None:
            configured = logging.getLogger(REQUEST_LOGGER)
            logger = configured if configured.handlers else None
        self.logger = logger

    def write(
        self,
        *,
        request_id: str,
        method: str,
        path: str,
        status: int,
        latency_ms: float,
        caller: Any,
        models: Mapping[str, str] | None,
    ) -> None:
        """Log one request; ``caller`` is a :class:`serving.auth.Caller` or ``None``."""
        logger = self.logger
        if logger is not None and not logger.isEnabledFor(logging.INFO):
            return
        now = time.time()
        text = _ENCODER.encode(
            {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
                + f".{int(now % 1 * 1000):03d}Z",
                "request_id": request_id,
                "method": method,
                "endpoint": path[:MAX_LOGGED_PATH],
                "status": status,
                "latency_ms": round(latency_ms, 2),
                "caller": caller.name if caller is not None else None,
                "role": caller.role if caller is not None else None,
                "models": dict(models or {}),
            }
        )
        if logger is None:
            out = sys.stdout  # looked up each time: test runners swap it
            out.write(text + "\n")
            out.flush()
            return
        # makeRecord + handle: what logger.info does, minus finding the calling frame
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, text, None, None)
        record.created = now
        logger.handle(record)
