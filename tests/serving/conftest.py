"""One real ``spm-ml serve`` for the HTTP tests of this package, with its log kept in a file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="package")
def server_log(tmp_path_factory) -> Path:
    """Everything the server printed (stdout and stderr of every process), for log checks."""
    return tmp_path_factory.mktemp("server") / "server.log"


@pytest.fixture(scope="package")
def server(trained_workdir, server_log):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # the access log on: the privacy tests read every line the server can write
    env = {**os.environ, "SPM_ML_WORKDIR": str(trained_workdir), "SPM_ML_ACCESS_LOG": "1"}
    env.pop("SPM_ML_API_TOKEN", None)
    with server_log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "spm_ml.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the whole server process group can be stopped
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{server_log.read_text()}")
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
