"""One real ``spm-ml serve`` for the HTTP tests of this package, with its log kept in a file."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


@contextlib.contextmanager
def serving(workdir: Path, log: Path, **env: str) -> Iterator[str]:
    """``spm-ml serve`` for ``workdir`` on a free localhost port (extra ``env`` variables);
    yields its base URL and stops the whole process group afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environment = {**os.environ, "SPM_ML_WORKDIR": str(workdir), **env}
    environment.pop("SPM_ML_API_TOKEN", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "spm_ml.cli", "serve", "--port", str(port)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the whole server process group can be stopped
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
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
            pytest.fail("server did not become ready within 180 s")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="package")
def server_log(tmp_path_factory) -> Path:
    """Everything the server printed (stdout and stderr of every process), for log checks."""
    return tmp_path_factory.mktemp("server") / "server.log"


@pytest.fixture(scope="package")
def server(trained_workdir, server_log):
    # the access log on: the privacy tests read every line the server can write;
    # no polling: the registry of the shared work folder does not move
    with serving(
        trained_workdir, server_log, SPM_ML_ACCESS_LOG="1", SPM_ML_RELOAD_SECONDS="0"
    ) as base:
        yield base


@pytest.fixture(scope="package")
def serve():
    """:func:`serving`, for test modules that start a server of their own."""
    return serving
