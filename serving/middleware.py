"""The service's front door: checks every request needs before BentoML reads it.

:class:`RequestGuard` is a plain ASGI middleware registered on the service with
``add_asgi_middleware``.  It answers, without reaching the endpoint:

* 401 when ``SPM_ML_API_TOKEN`` is set and the request lacks ``Authorization: Bearer
  <token>`` (health probes stay open, so an orchestrator can still check the service);
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
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving.logs import install_log_redaction
from spm_ml import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
"""Health probes answer without the API token."""

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = frozenset({"application/json"})


class RequestGuard:
    """Token, content type and body size checks in front of the BentoML app.

    Parameters
    ----------
    app
        The ASGI app behind it.
    max_body_bytes, api_token
        Default to :func:`spm_ml.settings.max_body_bytes` and
        :func:`spm_ml.settings.api_token`, read when the worker builds its app.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int | None = None,
        api_token: str | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes or settings.max_body_bytes()
        self.api_token = api_token if api_token is not None else settings.api_token()
        self.keepalive_requests = settings.keepalive_requests()
        self._served: dict[tuple, int] = {}  # requests so far per client connection
        # BentoML builds the middleware stack once per worker, before serving: the moment
        # to make sure this worker's request-error log lines carry no request data.
        install_log_redaction()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if (
            self.api_token
            and scope["path"] not in OPEN_PATHS
            and not _token_matches(headers.get("authorization", ""), self.api_token)
        ):
            await _answer(
                send,
                401,
                "missing or wrong bearer token (Authorization: Bearer <SPM_ML_API_TOKEN>)",
                extra_headers=[(b"www-authenticate", b"Bearer")],
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


def _token_matches(authorization: str, token: str) -> bool:
    scheme, _, given = authorization.partition(" ")
    # compare_digest: the time taken must not tell how much of a guess was right
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


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
