"""What the service's front door costs per request: token check, roles, request id, log line.

Calls :class:`serving.middleware.RequestGuard` directly (no sockets, no HTTP parsing) in front
of an ASGI app that answers at once, and prints the CPU microseconds per request (process
time, so that other processes sharing the cores do not count) for:

* the bare app (the reference: what the loop itself costs);
* the guard with the request log off, on (the default: straight to standard output, here
  ``/dev/null``) and on through a configured ``spm_ml.requests`` logger (a handler writing
  to ``/dev/null``);
* with ``--before REF``, the guard as it was at git revision ``REF`` (e.g. ``main``, before
  tokens and the request log), loaded from ``git show``, with ``SPM_ML_API_TOKEN`` set;
* the token look-up alone (``LiveTokens.lookup``: a ``stat``, a SHA-256, one constant-time
  comparison per token) with 10 and 100 tokens in the store.

Usage::

    python benchmarks/request_guard_speed.py [--requests 20000] [--before main]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

from serving.logs import RequestLog
from serving.middleware import RequestGuard
from spm_ml.tokens import LiveTokens, TokenStore

BODY = b'{"deal_id": "D000001"}'


async def answer(scope, receive, send) -> None:
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def per_request_us(app, token: str, n: int) -> float:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/deals/score",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": None,
    }

    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    async def run() -> float:
        for _ in range(200):  # warm up
            await app({**scope, "state": {}}, receive, send)
        started = time.process_time()
        for _ in range(n):
            await app({**scope, "state": {}}, receive, send)
        return (time.process_time() - started) / n * 1e6

    return asyncio.run(run())


def lookup_us(path: Path, token: str, n: int) -> float:
    live = LiveTokens(path)
    live.lookup(token)
    started = time.process_time()
    for _ in range(n):
        live.lookup(token)
    return (time.process_time() - started) / n * 1e6


def old_guard(revision: str, folder: Path):
    """``RequestGuard`` of ``serving/middleware.py`` as it was at git ``revision``."""
    source = subprocess.run(
        ["git", "show", f"{revision}:serving/middleware.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    path = folder / "middleware_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("middleware_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RequestGuard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--before", help="git revision whose serving/middleware.py to time too")
    args = parser.parse_args()
    n = args.requests
    quiet = logging.getLogger("request-guard-speed")
    quiet.addHandler(logging.FileHandler("/dev/null"))
    quiet.setLevel(logging.INFO)
    quiet.propagate = False
    with tempfile.TemporaryDirectory() as tmp:
        store = TokenStore(Path(tmp) / "tokens.json")
        token = store.create("bench", "admin")
        for i in range(9):
            store.create(f"other-{i}", "coach")
        bare = per_request_us(answer, token, n)
        before = None
        if args.before:
            os.environ["SPM_ML_API_TOKEN"] = token  # the old guard's single token
            before = per_request_us(old_guard(args.before, Path(tmp))(answer), token, n)
            del os.environ["SPM_ML_API_TOKEN"]
        off = per_request_us(
            RequestGuard(answer, tokens_path=store.path, request_log=False), token, n
        )
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            on = per_request_us(
                RequestGuard(answer, tokens_path=store.path, request_log=RequestLog()), token, n
            )
        logged = per_request_us(
            RequestGuard(answer, tokens_path=store.path, request_log=RequestLog(quiet)), token, n
        )
        ten = lookup_us(store.path, token, n)
        for i in range(90):
            store.create(f"more-{i}", "coach")
        hundred = lookup_us(store.path, token, n)
    print(f"requests per figure:               {n:,}")
    print(f"bare ASGI app:                     {bare:6.1f} us CPU/request")
    if before is not None:
        label = f"guard at {args.before} (env token):"
        print(f"{label:<35}{before:6.1f} us CPU/request (+{before - bare:.1f})")
    print(f"guard, request log off:            {off:6.1f} us CPU/request (+{off - bare:.1f})")
    print(f"guard, request log on (stdout):    {on:6.1f} us CPU/request (+{on - bare:.1f})")
    print(f"guard, log through a logger:       {logged:6.1f} us CPU/request (+{logged - bare:.1f})")
    print(f"token look-up, 10 tokens:          {ten:6.2f} us")
    print(f"token look-up, 100 tokens:         {hundred:6.2f} us")


if __name__ == "__main__":
    main()
