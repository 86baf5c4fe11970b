"""The service's front door without a model: middleware, log redaction, OpenAPI document.

The middleware is tested in front of a tiny ASGI app that echoes what it received, so each
rule is seen in isolation; the real service is exercised over HTTP in ``test_http.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import httpx
import pytest
from pydantic import ValidationError

import spm_ml
from serving.logs import RequestDataRedactor, describe_validation_error, install_log_redaction
from serving.middleware import RequestGuard
from serving.schemas import DealScoreRequest
from serving.service import EXAMPLE_REQUEST, SpmMlService
from spm_ml.tokens import TokenStore

MARKER = "ZQX-CUSTOMER-TEXT-7781"
JSON = {"content-type": "application/json"}


async def echo(scope, receive, send) -> None:
    """Answers 200 with the body it read, or a BentoML-style 4xx when asked for one."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/bentoml-400":
        payload, status = json.dumps([{"error": "deal_id: not known"}]).encode(), 400
    else:
        payload, status = body, 200
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def with_token(app, token: str):
    """``app`` called as a client holding ``token`` would (the guard's other rules in view)."""
    header = (b"authorization", f"Bearer {token}".encode())

    async def authorised(scope, receive, send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "headers": [*scope["headers"], header]}
        await app(scope, receive, send)

    return authorised


@pytest.fixture
def admin_guard(monkeypatch, tmp_path):
    """A guard over ``echo`` whose token store holds one admin token, and that token."""
    monkeypatch.delenv("SPM_ML_API_TOKEN", raising=False)
    path = tmp_path / "tokens.json"
    token = TokenStore(path).create("ops", "admin")
    return lambda: RequestGuard(echo, tokens_path=path), token


@pytest.fixture
def guard(monkeypatch, admin_guard):
    monkeypatch.setenv("SPM_ML_MAX_BODY_BYTES", "1000")
    make, token = admin_guard
    return with_token(make(), token)


def test_a_json_body_within_the_limit_is_handed_on_intact(guard):
    body = json.dumps({"x": "y" * 900}).encode()
    response = call(guard, "POST", "/v1/deals/score", content=body, headers=JSON)
    assert response.status_code == 200 and response.content == body


def test_a_body_over_the_limit_gets_413_announced_or_not(guard):
    big = b"[" + b"1," * 600 + b"1]"
    announced = call(guard, "POST", "/v1/deals/score", content=big, headers=JSON)
    assert announced.status_code == 413 and "SPM_ML_MAX_BODY_BYTES" in announced.json()["error"]

    async def chunks():  # no Content-Length: streamed, counted as it comes
        for _ in range(3):
            yield b"x" * 400

    streamed = call(guard, "POST", "/v1/deals/score", content=chunks(), headers=JSON)
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded", "text/json"],
)
def test_a_body_that_is_not_json_gets_415(guard, content_type):
    response = call(
        guard, "POST", "/v1/deals/score", content=b"a=1", headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert response.json() == {"error": "send the request body as application/json"}


def test_json_with_parameters_or_without_a_content_type_is_accepted(guard):
    for headers in ({"content-type": "application/json; charset=utf-8"}, {}):
        assert call(guard, "POST", "/x", content=b"{}", headers=headers).status_code == 200


def test_bentoml_list_shaped_4xx_bodies_are_unwrapped(guard):
    response = call(guard, "POST", "/bentoml-400", content=b"{}", headers=JSON)
    assert response.status_code == 400
    assert response.json() == {"error": "deal_id: not known"}
    assert int(response.headers["content-length"]) == len(response.content)


def test_the_deprecated_env_token_guards_everything_but_health_probes(monkeypatch, tmp_path):
    monkeypatch.setenv("SPM_ML_API_TOKEN", "s3cret")
    app = RequestGuard(echo, tokens_path=tmp_path / "none.json")
    for path in ("/v1/deals/score", "/metrics", "/", "/docs.json"):
        response = call(app, "GET", path)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    wrong = call(app, "GET", "/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert (
        call(app, "GET", "/metrics", headers={"authorization": "Bearer s3cret"}).status_code == 200
    )
    assert call(app, "GET", "/readyz").status_code == 200


def test_a_bad_body_limit_setting_is_refused(monkeypatch):
    from spm_ml import settings
    from spm_ml.errors import SpmMlError

    monkeypatch.setenv("SPM_ML_MAX_BODY_BYTES", "2MB")
    with pytest.raises(SpmMlError, match="SPM_ML_MAX_BODY_BYTES"):
        settings.max_body_bytes()
    monkeypatch.delenv("SPM_ML_MAX_BODY_BYTES")
    assert settings.max_body_bytes() == settings.DEFAULT_MAX_BODY_BYTES


@pytest.mark.parametrize(
    ("name", "read", "default"),
    [
        ("SPM_ML_WORKERS", "serving_workers", 1),
        ("SPM_ML_KEEPALIVE_REQUESTS", "keepalive_requests", 100),
    ],
)
def test_bad_worker_and_keepalive_settings_are_refused(monkeypatch, name, read, default):
    from spm_ml import settings
    from spm_ml.errors import SpmMlError

    for bad in ("0", "-1", "two"):
        monkeypatch.setenv(name, bad)
        with pytest.raises(SpmMlError, match=name):
            getattr(settings, read)()
    monkeypatch.delenv(name)
    assert getattr(settings, read)() == default


def rejected_with_marker() -> ValidationError:
    body = json.loads(json.dumps(EXAMPLE_REQUEST))
    body["emails"] = [{"direction": "inbound", "sent_at": MARKER, "body": "x" * 100_001}]
    body["emails"][0][MARKER] = MARKER
    body["deal"]["note"] = {"text": MARKER}
    with pytest.raises(ValidationError) as caught:
        DealScoreRequest.model_validate_json(json.dumps(body))
    assert MARKER in str(caught.value)  # what BentoML would have logged
    return caught.value


def record_of(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        "bentoml._internal.server.http_app",
        logging.ERROR,
        __file__,
        1,
        "Exception on %s [%s]",
        ("/v1/deals/score", "POST"),
        exc_info,
    )


def test_a_rejected_body_is_logged_as_paths_and_kinds_only():
    error = rejected_with_marker()
    record = record_of(error)
    assert RequestDataRedactor().filter(record)
    line = logging.Formatter().format(record)
    assert MARKER not in line
    assert record.levelname == "WARNING"
    assert "body.emails.0.sent_at: datetime_from_date_parsing" in line
    assert "body.emails.0.body: string_too_long" in line
    assert "body.emails.0.<extra>: extra_forbidden" in line  # the key itself is withheld
    assert describe_validation_error(error) in line


def test_a_server_error_keeps_its_frames_but_not_its_message():
    try:
        try:
            float(MARKER)
        except ValueError as inner:
            raise RuntimeError(f"could not score {MARKER}") from inner
    except RuntimeError as error:
        record = record_of(error)
    RequestDataRedactor().filter(record)
    line = logging.Formatter().format(record)
    assert MARKER not in line
    assert record.levelname == "ERROR"
    assert "builtins.ValueError: <message withheld" in line
    assert "builtins.RuntimeError: <message withheld" in line
    assert "test_hardening.py" in line  # the frames are still there to debug with


def test_intended_4xx_are_one_warning_line():
    from bentoml.exceptions import NotFound

    record = record_of(NotFound(f"deal_id {MARKER} unknown"))
    RequestDataRedactor().filter(record)
    line = logging.Formatter().format(record)
    assert MARKER not in line and "Traceback" not in line
    assert record.levelname == "WARNING" and "HTTP 404 NotFound" in line


def test_redaction_is_installed_once_on_bentomls_loggers():
    install_log_redaction()
    install_log_redaction()
    logger = logging.getLogger("bentoml._internal.server.http_app")
    assert sum(isinstance(f, RequestDataRedactor) for f in logger.filters) == 1


def test_the_openapi_document_is_spm_mls():
    doc = SpmMlService.openapi_spec.asdict()
    assert doc["info"]["title"] == "spm-ml"
    assert doc["info"]["version"] == spm_ml.__version__
    assert "BentoML" not in doc["info"]["description"]
    operation = doc["paths"]["/v1/deals/score"]["post"]
    assert operation["requestBody"]["required"] is True
    assert set(operation["responses"]) == {
        *("200", "400", "401", "403", "404", "413", "415", "422", "503")
    }
    assert "Prometheus" in doc["paths"]["/metrics"]["get"]["description"]
    schemas = doc["components"]["schemas"]
    assert {"ErrorBody", "ErrorDetail"} <= set(schemas)
    email = schemas["EmailIn"]["properties"]
    assert email["body"]["nullable"] is True and email["body"]["maxLength"] == 100_000
    assert email["body"]["description"] and email["sent_at"]["description"]
    assert '"type": "null"' not in json.dumps(doc)  # not an OpenAPI 3.0 type
    assert all(p.get("description") for p in schemas["DealIn"]["properties"].values())


def test_a_kept_alive_connection_is_closed_after_its_quota(monkeypatch, admin_guard):
    """So that the kernel can spread connections over the service's workers again."""
    monkeypatch.setenv("SPM_ML_KEEPALIVE_REQUESTS", "3")
    make, token = admin_guard
    app = with_token(make(), token)
    seen = []

    async def go() -> None:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(7):
                response = await client.post("/v1/deals/score", content=b"{}", headers=JSON)
                assert response.status_code == 200
                seen.append(response.headers.get("connection"))

    asyncio.run(go())
    assert seen == [None, None, "close", None, None, "close", None]
