"""Fuzz the HTTP API from its own OpenAPI document: no request may get a 5xx.

Issue 14 asks for a recorded run of at least 10,000 generated requests with 0 server errors.
This script starts ``spm-ml serve`` on a trained work folder (or uses ``--url``), loads
``/docs.json`` with schemathesis and sends, until ``--requests`` are done, rounds of:

* schema-conforming bodies (schemathesis' positive mode: mostly rejected for a rule the
  document cannot state, such as dates in order, some scored);
* schema-violating bodies (negative mode: wrong types, missing fields, extra fields, ...);
* raw bodies: random bytes and truncated JSON under random content types.

Every answer is checked: not a 5xx, a status the document lists, the declared content type,
and a body that matches the document's schema for that status.  schemathesis' two
data-acceptance checks are left out on purpose: the API accepts more than the document
says (numbers sent as strings, a date for a datetime), and rejects schema-valid bodies whose
fields disagree (``as_of`` before ``created_at``), which OpenAPI 3.0 cannot express.

It prints the number of requests, the answers by status and the count of 5xx and of other
check failures, and exits 1 if any.  With ``--json PATH`` it writes the same as JSON.

Every route of the document is fuzzed (``/v1/deals/score``, ``/coaching``, ``/what-if``,
``/v1/reps/risk``, ``/v1/emails/sentiment``, ``/admin/reload``...); the well-formed posted
deals go to ``/v1/deals/score`` as lists of one to three.

Usage::

    python benchmarks/api_fuzz.py --workdir spm-ml-quickstart [--requests 10000] [--seed 0]
    python benchmarks/api_fuzz.py --url http://127.0.0.1:3000 --token "$TOKEN" [--requests 500]

Started here, the server gets a token store of its own holding one admin token; with
``--url``, pass an admin token (``--token`` or ``$SPM_ML_TOKEN``).

Re-run it after any change to the scoring path: the count is only as good as the code it ran
against.  The server's log is scanned too: a traceback there counts as a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import hypothesis
import hypothesis.errors
import hypothesis.strategies as st
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from spm_ml.data.schema import ACTIVITY_TYPES, DEAL_STAGES, OPEN_STAGES

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SCORE_PATH = "/v1/deals/score"
ROUND = 200
"""Cases of one kind (operation and mode, well-formed, raw) before switching to the next."""
RAW_SHARE = 0.1
CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
    "application/vnd.bentoml+pickle",
    "application/json; charset=latin-1",
    "",
]


@dataclass
class FuzzReport:
    """What a fuzz run sent and got back."""

    requests: int = 0
    server_errors: int = 0
    check_failures: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    server_log_tracebacks: int = 0
    seconds: float = 0.0

    def record(self, kind: str, status: int, failure: str | None) -> None:
        self.requests += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        self.server_errors += status >= 500
        if failure is not None:
            self.check_failures += 1
            if len(self.failures) < 20:
                self.failures.append(failure)

    @property
    def ok(self) -> bool:
        return not (self.server_errors or self.check_failures or self.server_log_tracebacks)


def fuzz(
    base_url: str,
    requests: int,
    seed: int = 0,
    ids: dict[str, list[str]] | None = None,
    round_size: int = ROUND,
    token: str | None = None,
) -> FuzzReport:
    """Send ``requests`` generated requests to the API at ``base_url`` and check them.

    ``ids`` (``deal_id``, ``rep_id``, ``account_id``, ``product`` values of the served
    organisation) make some well-formed deals look like the organisation's own; ``token``
    goes with every request as ``Authorization: Bearer``.
    """
    ids = ids or {}
    auth = {"authorization": f"Bearer {token}"} if token else {}
    schema = schemathesis.openapi.from_url(f"{base_url}/docs.json", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    scorer = next((op for op in operations if op.path == SCORE_PATH), None)
    report = FuzzReport()
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers=auth, timeout=60) as client:
        round_no = 0
        while report.requests < requests:
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    left = requests - report.requests
                    if left <= 0:
                        break
                    n = min(round_size, left)
                    _generated(base_url, auth, operation, mode, n, seed + round_no, report)
            left = requests - report.requests
            if left > 0 and scorer is not None:
                n = min(round_size, left)
                _well_formed(base_url, auth, scorer, n, seed + round_no, ids, report)
            left = requests - report.requests
            if left > 0:
                raw = max(1, min(left, int(round_size * len(operations) * RAW_SHARE)))
                _raw(client, operations, raw, seed + round_no, report)
            round_no += 1
    report.seconds = round(time.perf_counter() - started, 1)
    return report


def _generated(
    base_url: str,
    auth: dict,
    operation,
    mode: GenerationMode,
    n: int,
    seed: int,
    report: FuzzReport,
) -> None:
    strategy = operation.as_strategy(generation_mode=mode)
    kind = f"{operation.method.upper()} {operation.path} {mode.value}"

    @generated(n, seed)
    @hypothesis.given(strategy)
    def run(case) -> None:
        _call_and_check(case, base_url, auth, kind, report)

    # Unsatisfiable: e.g. no schema-violating request exists for a GET without parameters
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        run()


def _call_and_check(case, base_url: str, auth: dict, kind: str, report: FuzzReport) -> None:
    response = case.call(base_url=base_url, headers=auth)
    failure = None
    try:
        case.validate_response(response, checks=CHECKS)
    except Exception as error:  # a failed check: keep its first line, go on
        failure = f"{kind} -> {response.status_code}: {str(error).strip().splitlines()[0]}"
    report.record(kind, response.status_code, failure)


def generated(n: int, seed: int):
    """``n`` generated examples from ``seed``, no shrinking (failures are recorded, not
    raised), no example database and no deadline: every fuzzing round is set up alike."""

    def decorate(test):
        settings = hypothesis.settings(
            max_examples=n,
            database=None,
            deadline=None,
            derandomize=False,
            phases=[hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        return settings(hypothesis.seed(seed)(test))

    return decorate


def _well_formed(
    base_url: str,
    auth: dict,
    operation,
    n: int,
    seed: int,
    ids: dict[str, list[str]],
    report: FuzzReport,
) -> None:
    """Lists of posted deals that pass validation, so the scoring path itself gets fuzzed."""

    @generated(n, seed)
    @hypothesis.given(st.lists(posted_deals(ids), min_size=1, max_size=3))
    def run(deals: list[dict]) -> None:
        case = operation.Case(body={"deals": deals}, media_type="application/json")
        _call_and_check(case, base_url, auth, "well-formed posted deal", report)

    run()


def posted_deals(ids: dict[str, list[str]]) -> st.SearchStrategy[dict]:
    """Valid requests with a posted deal: dates in order and in range, parseable history."""
    day = timedelta(days=1)
    moments = st.datetimes(datetime(1970, 1, 1), datetime(2199, 1, 1))

    def ident(kind: str) -> st.SearchStrategy[str]:
        known = ids.get(kind) or []
        fresh = st.text(st.characters(codec="utf-8", min_codepoint=32), min_size=1, max_size=40)
        return st.one_of(st.sampled_from(known), fresh) if known else fresh

    def history(created: datetime) -> st.SearchStrategy[dict]:
        values = {
            "stage": st.sampled_from(DEAL_STAGES),
            "amount": st.floats(0, 1e12).map(str),
            "expected_close_at": st.dates(date(1970, 1, 1), date(2199, 1, 1)).map(str),
            "rep_id": st.sampled_from(ids["rep_id"]) if ids.get("rep_id") else ident("rep_id"),
        }
        return st.sampled_from(sorted(values)).flatmap(
            lambda f: st.fixed_dictionaries(
                {
                    "changed_at": st.integers(0, 3_000).map(lambda d: str(created + d * day)),
                    "field": st.just(f),
                    "new_value": values[f],
                }
            )
        )

    def activity(created: datetime) -> st.SearchStrategy[dict]:
        return st.fixed_dictionaries(
            {
                "type": st.sampled_from(ACTIVITY_TYPES),
                "occurred_at": st.integers(-100, 3_000).map(lambda d: str(created + d * day)),
            },
            optional={"duration_min": st.none() | st.floats(0, 43_200)},
        )

    def email(created: datetime) -> st.SearchStrategy[dict]:
        scores = st.tuples(st.floats(0, 1), st.floats(0, 1)).map(
            lambda ab: {
                "p_negative": min(ab) * 0.5,
                "p_neutral": 1 - min(ab) * 0.5 - max(ab) * 0.5,
                "p_positive": max(ab) * 0.5,
            }
        )
        base = st.fixed_dictionaries(
            {
                "direction": st.sampled_from(["inbound", "outbound"]),
                "sent_at": st.integers(-100, 3_000).map(lambda d: str(created + d * day)),
            }
        )
        return st.one_of(base, st.tuples(base, scores).map(lambda bs: {**bs[0], **bs[1]}))

    def known_or(kind: str, complete: bool) -> st.SearchStrategy[str]:
        known = ids.get(kind) or []
        return st.sampled_from(known) if complete and known else ident(kind)

    @st.composite
    def request(draw) -> dict:
        created = draw(moments)
        room = (datetime(2199, 12, 31) - created).days
        # most requests carry what training features need (the organisation's rep and
        # account, the initial values at created_at, scored emails), so the scoring path
        # itself is fuzzed; the rest are refused with 422 naming what is missing
        complete = draw(st.integers(0, 4)) > 0
        deal = {
            "deal_id": draw(ident("deal_id")),
            "rep_id": draw(known_or("rep_id", complete)),
            "account_id": draw(known_or("account_id", complete)),
            "product": draw(ident("product")),
            "amount": draw(st.floats(0, 1e12)),
            "created_at": created.isoformat(),
            "expected_close_at": str(created + draw(st.integers(0, room)) * day),
            "stage": draw(st.sampled_from(OPEN_STAGES)),
        }
        initial = [
            {"changed_at": created.isoformat(), "field": "stage", "new_value": deal["stage"]},
            {
                "changed_at": created.isoformat(),
                "field": "amount",
                "new_value": str(deal["amount"]),
            },
            {
                "changed_at": created.isoformat(),
                "field": "expected_close_at",
                "new_value": deal["expected_close_at"][:10],
            },
        ]
        emails = draw(st.lists(email(created), max_size=6))
        if complete:
            emails = [{"p_negative": 0.2, "p_neutral": 0.5, "p_positive": 0.3, **e} for e in emails]
        return {
            "deal": deal,
            "as_of": str(created + draw(st.integers(0, min(room, 4_000))) * day),
            "history": (initial if complete else []) + draw(st.lists(history(created), max_size=6)),
            "activities": draw(st.lists(activity(created), max_size=6)),
            "emails": emails,
            "top_k": draw(st.integers(0, 20)),
        }

    return request()


def _raw(client: httpx.Client, operations, n: int, seed: int, report: FuzzReport) -> None:
    """Bodies no schema generates: random bytes, broken JSON, odd content types."""
    # not the admin routes: a body-less POST /admin/reload accepts any body
    posts = [
        op.path
        for op in operations
        if op.method.upper() == "POST" and not op.path.startswith("/admin/")
    ]
    if not posts:
        return
    bodies = st.one_of(
        st.binary(max_size=2_000),
        st.text(max_size=500).map(str.encode),
        st.just(b'{"deals": [{"deal": {"deal_id": "x", "created_at": "2025-'),
        st.just(b'{"deals": [{"deal_id": "x"' * 3),
        st.sampled_from([b"null", b"[]", b"0", b'"x"', b"{}", b'{"deals": {}}', b'{"reps": [[]]}']),
    )

    @generated(n, seed)
    @hypothesis.given(st.sampled_from(posts), st.sampled_from(CONTENT_TYPES), bodies)
    def run(path: str, content_type: str, body: bytes) -> None:
        headers = {"content-type": content_type} if content_type else {}
        response = client.post(path, content=body, headers=headers)
        failure = None
        if response.status_code >= 500:
            failure = f"raw {content_type!r} -> {response.status_code}"
        elif response.status_code not in (400, 413, 415):
            failure = f"raw {content_type!r} -> unexpected {response.status_code}"
        report.record("raw", response.status_code, failure)

    run()


@contextlib.contextmanager
def served(workdir: Path, log: Path) -> Iterator[tuple[str, str]]:
    """``spm-ml serve`` on a free local port for ``workdir``, with a token store of its own
    (beside ``log``) holding one admin token; yields its base URL and that token."""
    from spm_ml.tokens import TokenStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tokens = log.with_name("tokens.json")
    token = TokenStore(tokens).create("api-fuzz", "admin")
    env = {**os.environ, "SPM_ML_WORKDIR": str(workdir), "SPM_ML_TOKENS_FILE": str(tokens)}
    env.pop("SPM_ML_API_TOKEN", None)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "spm_ml.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError("server did not become ready within 180 s")
        yield base, token
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def organisation_ids(work: Path) -> dict[str, list[str]]:
    """A few hundred ids of each kind from the work folder's deals table."""

    from spm_ml import settings
    from spm_ml.data.io import load_tables

    deals = load_tables(settings.data_source(work)).deals.head(500)
    return {
        c: sorted(set(deals[c].astype(str))) for c in ("deal_id", "rep_id", "account_id", "product")
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service; default: start one on --workdir")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="trained work folder (quickstart output); with --url, only its ids are used",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SPM_ML_TOKEN"),
        help="with --url: an admin token of that service (default $SPM_ML_TOKEN)",
    )
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--round", type=int, default=ROUND, help="cases of one kind in a row")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)

    if args.url:
        ids = organisation_ids(args.workdir) if args.workdir else None
        report = fuzz(args.url.rstrip("/"), args.requests, args.seed, ids, args.round, args.token)
    else:
        from spm_ml import settings

        work = settings.workdir(args.workdir)
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "server.log"
            with served(work, log) as (base, token):
                ids = organisation_ids(work)
                report = fuzz(base, args.requests, args.seed, ids, args.round, token)
            report.server_log_tracebacks = log.read_text().count("Traceback")

    kinds = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.by_kind.items()))
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.statuses.items()))
    print(f"requests:        {report.requests:,} in {report.seconds} s ({kinds})")
    print(f"answers:         {statuses}")
    print(f"5xx:             {report.server_errors}")
    print(f"check failures:  {report.check_failures}")
    if not args.url:
        print(f"server log tracebacks: {report.server_log_tracebacks}")
    for failure in report.failures:
        print(f"  {failure}")
    if args.json:
        payload = {**asdict(report), "ok": report.ok, "seed": args.seed}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
