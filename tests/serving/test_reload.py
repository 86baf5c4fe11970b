"""A champion moves while the service serves: it is picked up, and no request fails.

The service runs on a copy of the shared work folder (its registry is moved here, not the
shared one's).  A new version is registered from the champion's own artifacts and made
``champion`` with the registry's alias API (what ``spm-ml promote`` does once it has judged
the challenger): first picked up by ``POST /admin/reload`` while a stream of requests runs,
then by the service's own polling.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import httpx
import pandas as pd
import pytest
from mlflow import MlflowClient

from spm_ml import settings

pytestmark = pytest.mark.slow
POLL_SECONDS = 2


@pytest.fixture(scope="module")
def moving(trained_workdir, tmp_path_factory, start_server, tokens_file, auth_headers):
    work = tmp_path_factory.mktemp("moving") / "work"
    shutil.copytree(trained_workdir, work)
    log = work.parent / "server.log"
    env = {
        **os.environ,
        "SPM_ML_WORKDIR": str(work),
        "SPM_ML_TOKENS_FILE": str(tokens_file),
        "SPM_ML_RELOAD_SECONDS": str(POLL_SECONDS),
    }
    env.pop("SPM_ML_API_TOKEN", None)
    with start_server(["spm_ml.cli", "serve"], env=env, log=log) as base:
        yield work, base, log, auth_headers


def promote_a_new_version(work, name: str) -> str:
    """A new version of ``name`` (the champion's artifacts) becomes its champion."""
    uri = settings.tracking_uri(work)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias(name, "champion")
    new = client.create_model_version(name, champion.source, run_id=champion.run_id)
    client.set_registered_model_alias(name, "champion", new.version)
    return str(new.version)


def deal_ids(work) -> list[str]:
    deals = pd.read_parquet(work / "data" / "deals.parquet")
    return deals.loc[deals["closed_at"].isna(), "deal_id"].head(8).tolist()


def score(client: httpx.Client, ids: list[str]) -> httpx.Response:
    body = {"deals": [{"deal_id": d, "as_of": "2024-12-31T00:00:00"} for d in ids]}
    return client.post("/v1/deals/score", json=body)


def test_admin_reload_swaps_models_without_failing_requests_in_flight(moving):
    work, base, log, auth = moving
    ids = deal_ids(work)
    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=base, timeout=60, headers=auth) as client:
            while not stop.is_set():
                response = score(client, ids)
                versions = {
                    m["version"] for r in response.json().get("results", []) for m in r["models"]
                }
                seen.append((response.status_code, ",".join(sorted(versions)) or None))

    streams = [threading.Thread(target=stream) for _ in range(3)]
    for thread in streams:
        thread.start()
    try:
        time.sleep(1.0)
        version = promote_a_new_version(work, "deal-win")
        reload = httpx.post(f"{base}/admin/reload", json={}, timeout=120, headers=auth)
        assert reload.status_code == 200, reload.text
        served = {m["name"]: m["version"] for m in reload.json()["models"]}
        assert served["deal-win"] == version  # whether this call or the poll loaded it
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in streams:
            thread.join(timeout=60)
    assert len(seen) > 10
    assert {status for status, _ in seen} == {200}, seen
    assert {v for _, v in seen} <= {"1", version}
    assert seen[-1][1] == version
    with httpx.Client(base_url=base, timeout=60, headers=auth) as client:
        results = score(client, ids).json()["results"]
    assert {m["version"] for r in results for m in r["models"]} == {version}
    assert "Traceback" not in log.read_text()


def test_polling_picks_up_a_new_champion(moving):
    work, base, _, auth = moving
    ids = deal_ids(work)[:1]
    version = promote_a_new_version(work, "deal-win")
    deadline = time.monotonic() + 20 * POLL_SECONDS
    with httpx.Client(base_url=base, timeout=60, headers=auth) as client:
        while time.monotonic() < deadline:
            # nothing asks for a reload: the service polls the registry by itself
            (result,) = score(client, ids).json()["results"]
            if result["models"][0]["version"] == version:
                break
            time.sleep(POLL_SECONDS / 4)
        else:
            pytest.fail("the new deal-win champion was not picked up by polling")
