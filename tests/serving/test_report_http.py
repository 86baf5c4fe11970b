"""``GET /v1/managers/{id}/report`` on the real server (this package's ``server``, serving the
quickstart's batch run from ``WORKDIR/outputs/batch``): the page as HTML to that manager's
token and admins, 403 to other managers and coaches, 404 naming valid ids, and the served
page opened in headless Chromium like the written file (tests/report)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from spm_ml.report import read_batch_outputs
from spm_ml.tokens import TokenStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outputs(trained_workdir):
    return read_batch_outputs(trained_workdir / "outputs" / "batch")


@pytest.fixture(scope="module")
def tokens(tokens_file, outputs) -> dict[str, str]:
    """A token for the first two managers of the run and one for a coach."""
    store = TokenStore(tokens_file)
    first, second = outputs.managers()[:2]
    return {
        "first": store.create("report-manager-1", "manager", manager_id=first),
        "second": store.create("report-manager-2", "manager", manager_id=second),
        "coach": store.create("report-coach", "coach"),
    }


def get(server: str, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{server}{path}", headers={"authorization": f"Bearer {token}"}, timeout=30)


def test_a_manager_gets_their_own_page_as_html(server, tokens, outputs):
    manager = outputs.managers()[0]
    answer = get(server, f"/v1/managers/{manager}/report", tokens["first"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert f"Pre-call report: manager {manager}" in answer.text
    assert answer.headers["x-request-id"]


def test_other_managers_and_coaches_are_refused(server, tokens, outputs):
    manager = outputs.managers()[0]
    for who in ("second", "coach"):
        answer = get(server, f"/v1/managers/{manager}/report", tokens[who])
        assert answer.status_code == 403, who
        assert manager in answer.json()["error"]
    assert httpx.get(f"{server}/v1/managers/{manager}/report").status_code == 401


def test_an_admin_sees_any_page_and_an_unknown_id_is_404(server, admin_token, outputs):
    for manager in outputs.managers():
        assert get(server, f"/v1/managers/{manager}/report", admin_token).status_code == 200
    answer = get(server, "/v1/managers/NOPE/report", admin_token)
    assert answer.status_code == 404
    assert "NOPE" in answer.json()["error"] and outputs.managers()[0] in answer.json()["error"]


def test_the_served_page_renders_in_chromium(server, tokens, outputs, browser):
    manager = outputs.managers()[0]
    artifacts = Path(__file__).resolve().parents[2] / "artifacts" / "report"
    artifacts.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        viewport={"width": 1200, "height": 900},
        extra_http_headers={"authorization": f"Bearer {tokens['first']}"},
    )
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda err: problems.append(str(err)))
        response = page.goto(f"{server}/v1/managers/{manager}/report", wait_until="load")
        assert response.status == 200 and problems == []
        sizes = page.eval_on_selector_all(
            "svg", "s => s.map(c => [c.getBoundingClientRect().width, c.childElementCount])"
        )
        assert sizes and all(width > 50 and children > 3 for width, children in sizes)
        rows = page.eval_on_selector_all(
            "table.reps tr[data-rep-id]", "r => r.map(x => x.dataset.repId)"
        )
        reps = outputs.reps
        scored = reps[(reps["manager_id"] == manager) & (reps["quota_status"] == "scored")]
        assert sorted(rows) == sorted(scored["rep_id"])
        page.screenshot(path=str(artifacts / f"served-{manager}.png"), full_page=True)
    finally:
        context.close()


def test_no_batch_run_is_503_saying_what_to_run(tmp_path):
    from serving.auth import Caller
    from serving.report import ReportPages

    answer = ReportPages(tmp_path / "none").answer("M1", Caller("a", "admin"))
    assert answer.status_code == 503 and b"spm-ml batch" in answer.body
