"""The service's front door: checks every request needs before BentoML reads it.

:class:`RequestGuard` is a plain ASGI middleware registered on the service with
``add_asgi_middleware``.  Every request gets a request id (the client's ``X-Request-Id``
when it is short and plain, else 128 random bits in hex), returned as ``X-Request-Id`` and
written, with its endpoint, status, latency, caller and model versions, to the structured
request log (serving/logs.py).  It answers, without reaching the endpoint:

* 401 (with ``WWW-Authenticate: Bearer``) when ``Authorization: Bearer <token>`` is missing,
  or the token is unknown or revoked in the token store (``spm_ml/tokens.py``, re-read when
  it changes, so ``spm-ml token create|revoke`` count at the next request).  With no token
  at all the service is closed, and the 401 says to run ``spm-ml token create``.  The health
  probes stay open, so an orchestrator can check the service without a secret;
* 403 when the token's role may not call the path (:func:`roles_for`: ``/admin/*`` and any
  path not listed are admin only; ``/v1/*`` and the documentation and metrics routes are
  open to every role, and endpoints decide per item what a role sees with
  :meth:`serving.auth.Caller.sees_attrition_of`); otherwise the request reaches the endpoint
  with its :class:`~serving.auth.Caller` in ``scope["state"][CALLER_KEY]``;
* 415 for a body that is not JSON: BentoML would otherwise try its multipart and form
  parsers, which fail with HTTP 500 on a malformed body;
* 413 for a body larger than ``SPM_ML_MAX_BODY_BYTES`` (default 2 MB), whether or not the
  client announced its length; the body is read once here, then handed on;
* 400 for a ``Content-Length`` that is not a number.

And it closes a kept-alive connection after ``SPM_ML_KEEPALIVE_REQUESTS`` requests (default
100; nginx's ``keepalive_requests`` does the same) by answering with ``Connection: close``.
The service's workers share one listening socket, and a client opening its connections at
once may see all of them accepted by one worker, leaving the others idle for as long as
the connections live; reconnecting now and then lets the kernel spread them again.

It also gives every 4xx the same shape, ``{"error": ..., "detail": ...}``: BentoML 1.4
answers a 4xx raised by an endpoint with that object wrapped in a one-element list.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import posixpath
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from serving.auth import CALLER_KEY, ROLES, Caller, Role
from serving.logs import MODELS_KEY, RequestLog, install_log_redaction
from spm_ml import settings
from spm_ml.tokens import LiveTokens

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
"""Health probes answer without a token."""
EVERY_ROLE_PATHS = frozenset({"/", "/docs.json", "/schema.json", "/metrics"})
"""Documentation and metrics: no request data, any valid token (a Prometheus scraper can
hold a coach token)."""
EVERY_ROLE_PREFIXES = ("/v1/", "/static_content/")
ADMIN_ONLY: tuple[Role, ...] = ("admin",)
ENV_CALLER = Caller(name="SPM_ML_API_TOKEN", role="admin")
"""Who holds the deprecated ``$SPM_ML_API_TOKEN``."""
REQUEST_ID = re.compile(r"[A-Za-z0-9.:-]{1,64}")
"""A client's ``X-Request-Id`` kept as is: short, plain (a uuid, a hex or ULID id)."""

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = frozenset({"application/json"})


def roles_for(path: str) -> tuple[Role, ...]:
    """The roles that may call ``path`` (the health probes need no token at all).

    Deny by default: a route not listed here (``/admin/reload``, or one added later) is
    admin only until it is.  A path with dot segments or doubled slashes must be allowed
    both as sent and normalised, so that no spelling of a path escapes its rule.
    """
    roles = _roles_of(path)
    if "/." in path or "//" in path:
        normal = _roles_of(posixpath.normpath(path))
        roles = tuple(role for role in roles if role in normal)
    return roles


def _roles_of(path: str) -> tuple[Role, ...]:
    if path in EVERY_ROLE_PATHS or path.startswith(EVERY_ROLE_PREFIXES):
        return ROLES
    return ADMIN_ONLY


class RequestGuard:
    """Request id and log, tokens and roles, content type and body size in front of the
    BentoML app.

    Parameters
    ----------
    app
        The ASGI app behind it.
    max_body_bytes, api_token, tokens_path, request_log
        Default to :func:`spm_ml.settings.max_body_bytes`, :func:`~spm_ml.settings.api_token`
        (deprecated), :func:`~spm_ml.settings.tokens_path` of the service's work folder and
        :func:`~spm_ml.settings.request_log`, read when the worker builds its app.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int | None = None,
        api_token: str | None = None,
        tokens_path: str | Path | None = None,
        request_log: RequestLog | bool | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes or settings.max_body_bytes()
        self.api_token = api_token if api_token is not None else settings.api_token()
        self.tokens = LiveTokens(tokens_path or settings.tokens_path(settings.workdir()))
        if request_log is None:
            request_log = settings.request_log()
        self.request_log = RequestLog() if request_log is True else request_log or None
        self.keepalive_requests = settings.keepalive_requests()
        self._served: dict[tuple, int] = {}  # requests so far per client connection
        self._callers: dict[str, Caller] = {}  # by token hash
        # BentoML builds the middleware stack once per worker, before serving: the moment
        # to make sure this worker's request-error log lines carry no request data.
        install_log_redaction()
        self._warn_about_tokens()

    def _warn_about_tokens(self) -> None:
        if self.api_token:
            logger.warning(
                "SPM_ML_API_TOKEN is deprecated: it is accepted as one admin token, but cannot "
                "be revoked or told apart in the request log; create named tokens with "
                "`spm-ml token create` and unset it"
            )
        elif not self.tokens.any_active():
            logger.warning(
                "no API token in %s: every request but the health probes will be refused "
                "(401) until one is created with `spm-ml token create --name NAME --role "
                "admin --workdir DIR`",
                self.tokens.store.path,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _headers(scope)
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        request_id = _request_id(headers.get("x-request-id"))
        status = 500  # if the app fails before answering
        id_header = (b"x-request-id", request_id.encode())

        async def identified(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), id_header]}
            await send(message)

        try:
            await self._guarded(scope, receive, identified, headers, state)
        finally:
            # health probes (every few seconds from an orchestrator) are not logged, as in
            # BentoML's own access log
            if self.request_log is not None and scope["path"] not in OPEN_PATHS:
                self.request_log.write(
                    request_id=request_id,
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    latency_ms=(time.perf_counter() - started) * 1000.0,
                    caller=state.get(CALLER_KEY),
                    models=state.get(MODELS_KEY),
                )

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], state: dict
    ) -> None:
        path = scope["path"]
        if path not in OPEN_PATHS:
            caller = self._caller(headers.get("authorization", ""))
            if caller is None:
                await _answer(send, 401, self._unauthorised(), [(b"www-authenticate", b"Bearer")])
                return
            state[CALLER_KEY] = caller
            allowed = roles_for(path)
            if caller.role not in allowed:
                await _answer(
                    send,
                    403,
                    f"a {caller.role} token may not call {path[:200]} "
                    f"(roles allowed: {', '.join(allowed)})",
                )
                return
        send = self._closing_when_due(scope, send)
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, _uniform_errors(send))
            return
        media_type = headers.get("content-type", "application/json").split(";")[0].strip()
        if media_type.lower() not in JSON_TYPES:
            await _answer(send, 415, "send the request body as application/json")
            return
        declared = headers.get("content-length")
        if declared is not None and not declared.strip().isdigit():
            await _answer(send, 400, "Content-Length must be a number of bytes")
            return
        if declared is not None and int(declared) > self.max_body_bytes:
            await _answer(send, 413, self._too_large())
            return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await _answer(send, 413, self._too_large())
            return
        await self.app(scope, _replay(body, receive), _uniform_errors(send))

    def _caller(self, authorization: str) -> Caller | None:
        """The caller a request's ``Authorization`` header names, else ``None``."""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        # compare_digest: the time taken must not tell how much of a guess was right
        if self.api_token and hmac.compare_digest(token.encode(), self.api_token.encode()):
            return ENV_CALLER
        record = self.tokens.lookup(token)
        if record is None:
            return None
        caller = self._callers.get(record.sha256)
        if caller is None:
            caller = self._callers[record.sha256] = Caller.of(record)
        return caller

    def _unauthorised(self) -> str:
        if not self.api_token and not self.tokens.any_active():
            return (
                "no valid API token exists: create one with `spm-ml token create --name NAME "
                "--role admin --workdir DIR` and send it as `Authorization: Bearer <token>`"
            )
        return "missing, wrong or revoked token: send `Authorization: Bearer <token>`"

    def _closing_when_due(self, scope: Scope, send: Send) -> Send:
        """``send`` that adds ``Connection: close`` to the connection's last allowed answer."""
        client = scope.get("client")
        if client is None:
            return send
        key = tuple(client)
        served = self._served.get(key, 0) + 1
        if served < self.keepalive_requests:
            if len(self._served) > 10_000:  # connections closed by their clients
                self._served.clear()
            self._served[key] = served
            return send
        self._served.pop(key, None)

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        return closing

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes:,} bytes (SPM_ML_MAX_BODY_BYTES)"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _request_id(given: str | None) -> str:
    """The client's request id when it is short and plain, else 128 random bits in hex
    (a uuid4's worth, without building a ``uuid.UUID``: a quarter of the cost)."""
    if given is not None and REQUEST_ID.fullmatch(given):
        return given
    return os.urandom(16).hex()


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # later calls wait for the client to disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(
    send: Send,
    status: int,
    error: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps({"error": error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _uniform_errors(send: Send) -> Send:
    """``send`` that unwraps BentoML's ``[{"error": ...}]`` 4xx bodies to ``{"error": ...}``."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if 400 <= message["status"] < 500 and content_type.startswith(b"application/json"):
                start = message  # hold it: the length may change
                return
        elif message["type"] == "http.response.body" and start is not None:
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _unwrapped(b"".join(chunks))
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send(message)

    return wrapped


def _unwrapped(body: bytes) -> bytes:
    try:
        value = json.loads(body)
    except ValueError:
        return body
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return json.dumps(value[0]).encode()
    return body
