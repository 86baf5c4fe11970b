"""schemathesis against the live service's ``/docs.json``: no 5xx, every answer as documented.

A small budget (400 requests over every route, about a minute) runs in CI;
``benchmarks/api_fuzz.py`` is the same run at 10,000 requests, recorded in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "api_fuzz.py"


def test_generated_requests_get_no_server_error(
    server, admin_token, server_log, trained_workdir, tmp_path
):
    out = tmp_path / "fuzz.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", server, "--requests", "400", "--round", "12"]
        + ["--seed", "1", "--json", str(out), "--workdir", str(trained_workdir)]
        + ["--token", admin_token],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert report["requests"] == 400
    assert report["server_errors"] == 0 and report["check_failures"] == 0, report["failures"]
    assert report["statuses"].get("200", 0) >= 20  # the scoring path itself was reached
    assert report["by_kind"]["raw"] > 0 and report["by_kind"]["well-formed posted deal"] > 0
    routes = ("deals/score", "deals/coaching", "deals/what-if", "reps/risk", "emails/sentiment")
    for route in routes:
        assert any(route in kind for kind in report["by_kind"]), (route, report["by_kind"])
    assert "Traceback" not in server_log.read_text()
