"""The real service over HTTP: ``spm-ml serve`` on a free localhost port, called with httpx."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest

from serving.service import EXAMPLE_REQUEST

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(trained_workdir):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SPM_ML_WORKDIR": str(trained_workdir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "spm_ml.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so the whole server process group can be stopped
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{process.stdout.read()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("server did not become ready within 120 s")
    yield base
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def example_for(workdir) -> dict:
    """The shared example request, pointed at a rep and account of this organisation."""
    deals = pd.read_parquet(workdir / "data" / "deals.parquet")
    known = deals.iloc[0]
    request = copy.deepcopy(EXAMPLE_REQUEST)
    request["deal"].update(
        rep_id=known["rep_id"], account_id=known["account_id"], product=known["product"]
    )
    return request


def test_scores_a_posted_deal_with_drivers(server, trained_workdir):
    response = httpx.post(f"{server}/v1/deals/score", json=example_for(trained_workdir), timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deal_id"] == "NEW-1"
    assert 0.0 <= body["probability"] <= 1.0
    assert len(body["drivers"]) == 3
    assert {d["direction"] for d in body["drivers"]} <= {"raises", "lowers"}
    assert body["model"] == {"name": "deal-win", "version": "1", "alias": "champion"}


def test_more_engagement_changes_the_score(server, trained_workdir):
    quiet = example_for(trained_workdir)
    quiet["activities"], quiet["emails"] = [], []
    busy = example_for(trained_workdir)
    a = httpx.post(f"{server}/v1/deals/score", json=quiet, timeout=30).json()["probability"]
    b = httpx.post(f"{server}/v1/deals/score", json=busy, timeout=30).json()["probability"]
    assert a != b


def test_bad_request_is_rejected_with_the_field_named(server):
    response = httpx.post(f"{server}/v1/deals/score", json={"deal": {"deal_id": "x"}}, timeout=30)
    assert response.status_code == 400
    assert "rep_id" in response.text and "amount" in response.text


def test_bad_stage_is_rejected(server, trained_workdir):
    request = example_for(trained_workdir)
    request["deal"]["stage"] = "won-ish"
    response = httpx.post(f"{server}/v1/deals/score", json=request, timeout=30)
    assert response.status_code == 400 and "stage" in response.text
