"""Tokens, roles, request ids and the request log: the guard alone, then the real service.

The first tests put :class:`RequestGuard` in front of a tiny ASGI app that reports the
caller it was given; the ``http`` tests call the package's running ``spm-ml serve``
(tests/serving/conftest.py), whose token store they add tokens to and revoke them from.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest
from test_http import example_for  # the shared example pointed at this organisation

from serving.auth import CALLER_KEY, Caller
from serving.logs import MODELS_KEY, REQUEST_LOGGER, RequestLog
from serving.middleware import RequestGuard, roles_for
from spm_ml.tokens import TokenStore

FIELDS = {"ts", "request_id", "method", "endpoint", "status", "latency_ms", "caller", "role"}


async def who(scope, receive, send) -> None:
    """Answers 200 with the caller the guard put in the scope, noting a model version."""
    while (await receive()).get("more_body"):
        pass
    caller = scope["state"].get(CALLER_KEY)
    scope["state"].setdefault(MODELS_KEY, {})["deal-win"] = "3"
    payload = json.dumps(caller and {"name": caller.name, "role": caller.role}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def call(app, method: str, path: str, token: str | None = None, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["authorization"] = f"Bearer {token}"

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, headers=headers, **kwargs)

    return asyncio.run(go())


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def store(tmp_path, monkeypatch) -> TokenStore:
    monkeypatch.delenv("SPM_ML_API_TOKEN", raising=False)
    return TokenStore(tmp_path / "tokens.json")


@pytest.fixture
def guard(store, lines) -> RequestGuard:
    logger = logging.getLogger("test-request-log")
    logger.handlers, logger.propagate = [lines], False
    logger.setLevel(logging.INFO)
    return RequestGuard(who, tokens_path=store.path, request_log=RequestLog(logger))


def test_without_any_token_the_service_is_closed_and_says_what_to_run(guard, store):
    response = call(guard, "GET", "/v1/anything")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert "spm-ml token create" in response.json()["error"]
    assert call(guard, "GET", "/readyz").status_code == 200
    store.create("ann", "admin")
    store.revoke("ann")  # no valid token left: closed again
    assert "spm-ml token create" in call(guard, "GET", "/v1/anything").json()["error"]


def test_a_token_created_or_revoked_counts_at_the_next_request(guard, store):
    token = store.create("ann", "manager", manager_id="R7")
    store.create("bob", "coach")
    answer = call(guard, "POST", "/v1/x", token, json={})
    assert answer.status_code == 200 and answer.json() == {"name": "ann", "role": "manager"}
    store.revoke("ann")
    refused = call(guard, "POST", "/v1/x", token, json={})
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]


@pytest.mark.parametrize(
    "authorization", ["", "Bearer", "Bearer ", "Basic abc", "bearer spm_nope", "spm_x"]
)
def test_missing_or_malformed_authorization_is_401(guard, store, authorization):
    store.create("ann", "admin")
    response = call(guard, "GET", "/metrics", headers={"authorization": authorization})
    assert response.status_code == 401


def test_roles_by_path(guard, store):
    tokens = {
        role: store.create(role, role, manager_id="R7" if role == "manager" else None)
        for role in ("coach", "manager", "admin")
    }
    for role, token in tokens.items():
        for path in ("/v1/deals/score", "/v1/reps/R7/risk", "/docs.json", "/metrics", "/"):
            assert call(guard, "GET", path, token).status_code == 200, (role, path)
        admin_status = call(guard, "POST", "/admin/reload", token, json={}).status_code
        assert admin_status == (200 if role == "admin" else 403), role
    denied = call(guard, "POST", "/admin/reload", tokens["coach"], json={})
    assert "coach" in denied.json()["error"] and "admin" in denied.json()["error"]


@pytest.mark.parametrize(
    "path", ["/admin/reload", "/v1/../admin/reload", "//admin/reload", "/v1/./../admin", "/x"]
)
def test_no_spelling_of_an_admin_path_is_open_to_other_roles(path):
    assert roles_for(path) == ("admin",)


def test_the_deprecated_env_token_is_an_admin_beside_the_store(store, monkeypatch):
    monkeypatch.setenv("SPM_ML_API_TOKEN", "legacy-secret")
    app = RequestGuard(who, tokens_path=store.path)
    answer = call(app, "POST", "/admin/reload", "legacy-secret", json={})
    assert answer.json() == {"name": "SPM_ML_API_TOKEN", "role": "admin"}


def test_each_request_gets_an_id_and_one_log_line_without_secrets(guard, store, lines):
    token = store.create("ann", "coach")
    marker = "QUOKKA-BODY-8812"
    mine = call(guard, "POST", "/v1/x", token, json={"body": marker})
    given = call(guard, "POST", "/v1/x", token, json={}, headers={"x-request-id": "abc-123"})
    odd = call(guard, "GET", "/v1/x", token, headers={"x-request-id": "a b\tc" + "x" * 70})
    refused = call(guard, "GET", "/v1/x?email=secret", "spm_wrong")
    assert uuid.UUID(hex=mine.headers["x-request-id"])
    assert given.headers["x-request-id"] == "abc-123"
    assert uuid.UUID(hex=odd.headers["x-request-id"])
    logged = [json.loads(line) for line in lines.lines]
    assert [line["request_id"] for line in logged] == [
        r.headers["x-request-id"] for r in (mine, given, odd, refused)
    ]
    first = logged[0]
    assert FIELDS | {"models"} == set(first)
    assert (first["method"], first["endpoint"], first["status"]) == ("POST", "/v1/x", 200)
    assert (first["caller"], first["role"], first["models"]) == ("ann", "coach", {"deal-win": "3"})
    assert first["latency_ms"] >= 0
    assert logged[3]["status"] == 401 and logged[3]["caller"] is None
    text = "\n".join(lines.lines)
    for secret in (token, token[4:], "spm_wrong", marker, "email=secret"):
        assert secret not in text


def test_the_request_log_goes_to_its_own_logger_as_bare_json(capsys, monkeypatch, store):
    logger = logging.getLogger(REQUEST_LOGGER)
    monkeypatch.setattr(logger, "handlers", [])
    token = store.create("ann", "admin")
    app = RequestGuard(who, tokens_path=store.path, request_log=True)
    call(app, "GET", "/v1/x", token)
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1])["caller"] == "ann"


def test_a_caller_sees_attrition_by_role_and_manager():
    assert Caller("a", "admin").sees_attrition_of("R1")
    assert Caller("m", "manager", "R1").sees_attrition_of("R1")
    assert not Caller("m", "manager", "R1").sees_attrition_of("R2")
    assert not Caller("m", "manager", "R1").sees_attrition_of(None)
    assert not Caller("c", "coach").sees_attrition_of("R1")


# --- the real service over HTTP -------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_http_missing_wrong_and_revoked_tokens_are_401(server, tokens_file):
    url = f"{server}/v1/deals/score"
    store = TokenStore(tokens_file)
    token = store.create(f"short-lived-{uuid.uuid4().hex[:8]}", "coach")
    for headers in ({}, bearer("spm_" + "x" * 43), {"authorization": token}):
        response = httpx.post(url, json={"deals": [{"deal_id": "x"}]}, headers=headers, timeout=30)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert (
        httpx.post(
            url, json={"deals": [{"deal_id": "x"}]}, headers=bearer(token), timeout=30
        ).status_code
        == 404
    )
    store.revoke(store.list()[-1]["name"])  # takes effect without a restart
    revoked = httpx.post(url, json={"deals": [{"deal_id": "x"}]}, headers=bearer(token), timeout=30)
    assert revoked.status_code == 401
    for probe in ("/livez", "/readyz", "/healthz"):
        assert httpx.get(f"{server}{probe}", timeout=30).status_code == 200


@pytest.mark.slow
def test_http_a_coach_is_403_on_admin_routes_before_routing(server, tokens_file, api):
    coach = TokenStore(tokens_file).create(f"coach-{uuid.uuid4().hex[:8]}", "coach")
    denied = httpx.post(f"{server}/admin/reload", json={}, headers=bearer(coach), timeout=30)
    assert denied.status_code == 403 and "admin" in denied.json()["error"]
    assert api.get("/docs.json").status_code == 200
    routed = api.post("/admin/reload", json={})  # the admin reaches routing: 404 until it exists
    assert routed.status_code not in (401, 403)
    assert httpx.get(f"{server}/docs.json", headers=bearer(coach), timeout=30).status_code == 200


@pytest.mark.slow
def test_http_request_log_lines_carry_ids_and_never_tokens_or_email_text(
    server, api, admin_token, tokens_file, server_log, trained_workdir
):
    marker = f"WOMBAT-EMAIL-{uuid.uuid4().hex[:8]}"
    coach = TokenStore(tokens_file).create(f"coach-{uuid.uuid4().hex[:8]}", "coach")
    request = example_for(trained_workdir)
    inbound = request["emails"][1]
    for key in ("p_negative", "p_neutral", "p_positive"):
        inbound.pop(key)
    inbound["subject"], inbound["body"] = f"Re: {marker}", f"Budget approved. {marker}"
    scored = api.post(
        "/v1/deals/score", json={"deals": [request]}, headers={"x-request-id": "t-scored-1"}
    )
    assert scored.status_code == 200, scored.text
    assert scored.headers["x-request-id"] == "t-scored-1"
    rejected = api.post("/v1/deals/score", json={"deals": [{**request, "top_k": 99}]})
    denied = httpx.post(f"{server}/admin/reload", json={}, headers=bearer(coach), timeout=30)
    wrong = httpx.post(
        f"{server}/v1/deals/score", json={"deals": [request]}, headers=bearer(marker), timeout=30
    )
    ids = [r.headers["x-request-id"] for r in (scored, rejected, denied, wrong)]
    assert [r.status_code for r in (rejected, denied, wrong)] == [400, 403, 401]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the worker writes its lines after answering
        log = server_log.read_text()
        if all(request_id in log for request_id in ids):
            break
        time.sleep(0.2)
    lines = {}
    for raw in log.splitlines():
        if raw.startswith("{") and '"request_id"' in raw:
            line = json.loads(raw)
            lines[line["request_id"]] = line
    got = [lines[request_id] for request_id in ids]
    assert all(FIELDS | {"models"} <= set(line) for line in got)
    assert [(line["endpoint"], line["status"]) for line in got] == [
        ("/v1/deals/score", 200),
        ("/v1/deals/score", 400),
        ("/admin/reload", 403),
        ("/v1/deals/score", 401),
    ]
    assert got[0]["caller"] == "tests-admin" and got[0]["role"] == "admin"
    assert got[2]["role"] == "coach" and got[3]["caller"] is None
    assert isinstance(got[0]["models"], dict) and got[0]["latency_ms"] > 0
    for secret in (admin_token, coach, admin_token[4:], coach[4:], marker):
        assert secret not in log


PROBE_SERVICE = """
import bentoml
from serving.auth import caller_of
from serving.logs import note_models
from serving.middleware import RequestGuard


@bentoml.service(name="probe")
class Probe:
    @bentoml.api(route="/v1/whoami")
    def whoami(self, ctx: bentoml.Context) -> dict:
        caller = caller_of(ctx)
        note_models(ctx, {"deal-win": "7"})
        return {"name": caller.name, "role": caller.role, "manager_id": caller.manager_id}


Probe.add_asgi_middleware(RequestGuard)
"""


@pytest.mark.slow
def test_http_an_endpoint_reads_its_caller_and_its_model_versions_reach_the_log(
    tmp_path, start_server
):
    """What the service's endpoints rely on, through a real ``bentoml serve`` of a probe:
    the guard's Caller in ``bentoml.Context``, and ``note_models`` in the request's line."""
    (tmp_path / "probe.py").write_text(PROBE_SERVICE)
    tokens = tmp_path / "tokens.json"
    token = TokenStore(tokens).create("mia", "manager", manager_id="R00042")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root, "SPM_ML_TOKENS_FILE": str(tokens)}
    env.pop("SPM_ML_API_TOKEN", None)
    log = tmp_path / "server.log"
    command = ["bentoml", "serve", "probe:Probe"]
    with start_server(command, env=env, log=log, cwd=tmp_path) as base:
        answer = httpx.post(
            f"{base}/v1/whoami",
            json={},
            headers={**bearer(token), "x-request-id": "probe-1"},
            timeout=30,
        )
        assert answer.json() == {"name": "mia", "role": "manager", "manager_id": "R00042"}
        deadline = time.monotonic() + 10
        while '"probe-1"' not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    (line,) = [json.loads(x) for x in log.read_text().splitlines() if '"probe-1"' in x]
    assert line["models"] == {"deal-win": "7"} and line["caller"] == "mia"
    assert token not in log.read_text()
