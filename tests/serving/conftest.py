"""One real ``spm-ml serve`` for the HTTP tests of this package, with its log kept in a file.

The server reads its tokens from a store of this package's own (``SPM_ML_TOKENS_FILE``),
holding one admin token: the tests call it through ``api``, a client that sends it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest


@pytest.fixture(scope="package")
def server_log(tmp_path_factory) -> Path:
    """Everything the server printed (stdout and stderr of every process), for log checks."""
    return tmp_path_factory.mktemp("server") / "server.log"


@pytest.fixture(scope="package")
def tokens_file(tmp_path_factory) -> Path:
    """The running server's token store (tests may add and revoke tokens in it)."""
    return tmp_path_factory.mktemp("tokens") / "tokens.json"


@pytest.fixture(scope="package")
def admin_token(tokens_file) -> str:
    from spm_ml.tokens import TokenStore

    return TokenStore(tokens_file).create("tests-admin", "admin")


@pytest.fixture(scope="package")
def auth_headers(admin_token) -> dict[str, str]:
    """``Authorization`` of the tests' admin token, for every request but the probes."""
    return {"authorization": f"Bearer {admin_token}"}


@contextlib.contextmanager
def serving(module_args: list[str], *, env: dict, log: Path, cwd: Path | None = None):
    """``python -m MODULE_ARGS --port P`` on a free port, everything it prints in ``log``;
    yields its base URL once ``/readyz`` answers, stops its whole process group after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *module_args, "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the whole server process group can be stopped
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"server exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("server did not become ready within 120 s")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="package")
def start_server():
    """:func:`serving`, for a test that serves something of its own."""
    return serving


@pytest.fixture(scope="package")
def server(trained_workdir, server_log, tokens_file, admin_token):
    # the access log on: the privacy tests read every line the server can write
    env = {
        **os.environ,
        "SPM_ML_WORKDIR": str(trained_workdir),
        "SPM_ML_ACCESS_LOG": "1",
        "SPM_ML_TOKENS_FILE": str(tokens_file),
        # no polling: the registry of the shared work folder does not move
        "SPM_ML_RELOAD_SECONDS": "0",
    }
    for name in ("SPM_ML_API_TOKEN", "SPM_ML_REQUEST_LOG"):
        env.pop(name, None)
    with serving(["spm_ml.cli", "serve"], env=env, log=server_log) as base:
        yield base


@pytest.fixture(scope="package")
def api(server, auth_headers):
    """An HTTP client of the running server holding the tests' admin token."""
    with httpx.Client(base_url=server, headers=auth_headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="package")
def quarter(trained_workdir) -> tuple[str, list[str], str]:
    """A moment inside the last quota period, the AEs with a quota then, and a manager."""
    quotas = pd.read_parquet(trained_workdir / "data" / "quotas.parquet")
    reps = pd.read_parquet(trained_workdir / "data" / "reps.parquet")
    last = quotas["period_start"].max()
    as_of = last + pd.Timedelta(days=30)
    holders = set(
        quotas.loc[(quotas["period_start"] == last) & (quotas["quota_amount"] > 0), "rep_id"]
    )
    employed = reps["exit_date"].isna() | (reps["exit_date"] > as_of)
    aes = sorted(set(reps.loc[employed & (reps["role"] == "AE"), "rep_id"]) & holders)
    managers = sorted(set(reps.loc[reps["role"] != "AE", "rep_id"]))
    return as_of.isoformat(), aes, managers[0]
