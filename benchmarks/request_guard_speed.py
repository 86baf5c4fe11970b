"""What the service's front door costs per request: token check, roles, request id, log line.

Calls :class:`serving.middleware.RequestGuard` directly (no sockets, no HTTP parsing) in front
of an ASGI app that answers at once, and prints microseconds per request for:

* the bare app (the reference: what the loop itself costs);
* the guard with the request log off and on (the log written to ``/dev/null``);
* the token look-up alone (``LiveTokens.lookup``: a ``stat``, a SHA-256, one constant-time
  comparison per token) with 10 and 100 tokens in the store.

Usage::

    python benchmarks/request_guard_speed.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
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
        started = time.perf_counter()
        for _ in range(n):
            await app({**scope, "state": {}}, receive, send)
        return (time.perf_counter() - started) / n * 1e6

    return asyncio.run(run())


def lookup_us(path: Path, token: str, n: int) -> float:
    live = LiveTokens(path)
    live.lookup(token)
    started = time.perf_counter()
    for _ in range(n):
        live.lookup(token)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    n = parser.parse_args().requests
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
        off = per_request_us(
            RequestGuard(answer, tokens_path=store.path, request_log=False), token, n
        )
        on = per_request_us(
            RequestGuard(answer, tokens_path=store.path, request_log=RequestLog(quiet)), token, n
        )
        ten = lookup_us(store.path, token, n)
        for i in range(90):
            store.create(f"more-{i}", "coach")
        hundred = lookup_us(store.path, token, n)
    print(f"requests per figure:               {n:,}")
    print(f"bare ASGI app:                     {bare:6.1f} us/request")
    print(f"guard, request log off:            {off:6.1f} us/request (+{off - bare:.1f})")
    print(f"guard, request log on (/dev/null): {on:6.1f} us/request (+{on - bare:.1f})")
    print(f"token look-up, 10 tokens:          {ten:6.2f} us")
    print(f"token look-up, 100 tokens:         {hundred:6.2f} us")


if __name__ == "__main__":
    main()
