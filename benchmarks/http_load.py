"""A small HTTP/1.1 load generator: open-loop paced or closed-loop, one JSON summary line.

Used by ``benchmarks/serving_speed.py`` as a child process, so that its CPU time can be
measured apart from the server's (the machine has 2 cores and the generator shares them).
Standard library only (asyncio streams, a minimal HTTP/1.1 client over persistent
connections): an HTTP library would spend more CPU per request than the requests we send.

* ``--rate R`` (open loop): request ``i`` is *scheduled* at ``t0 + i / R`` whatever the
  server does; a free connection sends it when one is available; its latency is measured
  from the scheduled time, so a slow server cannot hide its queue by slowing the generator
  (no coordinated omission).  A request still unanswered ``--timeout`` seconds after its
  scheduled time counts as a timeout (and is not sent at all if it has not left yet).
* ``--clients C`` (closed loop): C connections, each sending the next request as soon as
  the previous answer arrives; answers completed within ``--duration`` count.

Request bodies come from ``--bodies`` (JSON lines, one body per line), used round robin.
The run stops by itself: scheduling ends after ``--duration`` seconds, every request ends
within ``--timeout`` seconds of its scheduled time, and a hard deadline cancels whatever
is left.  Only addresses on this machine are expected as targets.

``--serve-noop PORT`` runs a server that answers every request at once (for ``--duration``
seconds): the same load against it measures the generator's own latency floor.

Usage::

    python benchmarks/http_load.py --url http://127.0.0.1:3000/v1/deals/score \
        --bodies pool.jsonl --rate 500 --duration 60 [--timeout 10] [--connections 64] \
        [--token TOKEN]    # sent as Authorization: Bearer (default $SPM_ML_TOKEN)
    python benchmarks/http_load.py --serve-noop 3001 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HEADER_LIMIT = 64 * 1024


class HttpError(Exception):
    """The server's answer was not a well-formed HTTP/1.1 response."""


@dataclass
class Outcomes:
    """What happened to each request: latencies of the answered ones, counts of the rest."""

    latencies: list[float] = field(default_factory=list)
    """Seconds, of requests answered with 2xx."""
    statuses: Counter = field(default_factory=Counter)
    timeouts: int = 0
    not_sent: int = 0
    """Timeouts that never left the generator (older than the timeout when a connection freed)."""
    connection_errors: int = 0

    def record(self, result: int | str, latency: float) -> None:
        """Count one request's ``result`` (status, "timeout" or "error")."""
        if result == "timeout":
            self.timeouts += 1
        elif result == "error":
            self.connection_errors += 1
        else:
            self.statuses[result] += 1
            if 200 <= result < 300:
                self.latencies.append(latency)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        bad_status = sum(n for s, n in self.statuses.items() if not 200 <= s < 300)
        return bad_status + self.timeouts + self.connection_errors


class Connection:
    """One persistent HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=HEADER_LIMIT
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> int:
        """Send ``raw`` (a whole request), read the whole answer, return its status."""
        if self.writer is None:
            await self.open()
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            await self._skip_chunks()
        else:
            await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status

    async def _skip_chunks(self) -> None:
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                return


def build_requests(
    url: str, bodies: list[bytes], token: str | None = None
) -> tuple[str, int, list[bytes]]:
    """Host, port and the raw bytes of one POST per body (built once, before the run)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    raw = [
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        + body
        for body in bodies
    ]
    return host, port, raw


async def _send(conn: Connection, raw: bytes, budget: float) -> int | str:
    """One request within ``budget`` seconds: its status, ``"timeout"`` or ``"error"``."""
    try:
        return await asyncio.wait_for(conn.request(raw), budget)
    except TimeoutError:
        conn.close()  # the answer may still come: this connection's state is unknown
        return "timeout"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpError, ValueError):
        conn.close()
        return "error"


async def open_loop(
    host: str, port: int, raw: list[bytes], rate: float, duration: float, timeout: float, n: int
) -> tuple[Outcomes, float]:
    """Requests scheduled at ``rate`` per second for ``duration`` s over ``n`` connections."""
    loop = asyncio.get_running_loop()
    out = Outcomes()
    queue: asyncio.Queue = asyncio.Queue()
    conns = [Connection(host, port) for _ in range(n)]
    await asyncio.gather(*(asyncio.wait_for(c.open(), timeout) for c in conns))
    t0 = loop.time() + 0.05
    total = int(rate * duration)

    async def producer() -> None:
        i = 0
        while i < total:
            now = loop.time()
            while i < total and t0 + i / rate <= now:  # everything due, in one wake-up
                queue.put_nowait((i, t0 + i / rate))
                i += 1
            if i < total:
                await asyncio.sleep(max(t0 + i / rate - loop.time(), 0))
        for _ in conns:
            queue.put_nowait(None)

    async def worker(conn: Connection) -> None:
        while (item := await queue.get()) is not None:
            i, scheduled = item
            budget = scheduled + timeout - loop.time()
            if budget <= 0:
                out.timeouts += 1
                out.not_sent += 1
                continue
            out.record(await _send(conn, raw[i % len(raw)], budget), loop.time() - scheduled)

    tasks = [asyncio.ensure_future(producer())] + [asyncio.ensure_future(worker(c)) for c in conns]
    _, pending = await asyncio.wait(tasks, timeout=duration + timeout + 5)
    for task in pending:  # cannot happen with per-request budgets; belt and braces
        task.cancel()
    out.timeouts += max(total - out.ok - out.errors, 0)
    for conn in conns:
        conn.close()
    return out, loop.time() - t0


async def closed_loop(
    host: str, port: int, raw: list[bytes], clients: int, duration: float, timeout: float
) -> tuple[Outcomes, float]:
    """``clients`` connections sending back to back; answers completed in ``duration`` count."""
    loop = asyncio.get_running_loop()
    out = Outcomes()
    conns = [Connection(host, port) for _ in range(clients)]
    await asyncio.gather(*(asyncio.wait_for(c.open(), timeout) for c in conns))
    t0 = loop.time()
    end = t0 + duration

    async def client(k: int, conn: Connection) -> None:
        j = 0
        while (now := loop.time()) < end:
            body = raw[(k + clients * j) % len(raw)]
            j += 1
            budget = min(timeout, end - now)
            result = await _send(conn, body, budget)
            if result == "timeout" and loop.time() >= end:
                continue  # cut off by the end of the run, not by the server
            out.record(result, loop.time() - now)

    await asyncio.wait(
        [asyncio.ensure_future(client(k, c)) for k, c in enumerate(conns)],
        timeout=duration + timeout + 5,
    )
    for conn in conns:
        conn.close()
    return out, duration


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100) of an ascending list; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(math.ceil(q / 100 * len(sorted_values)), 1)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(out: Outcomes, elapsed: float, total: int | None) -> dict:
    """The JSON summary: counts, rates and latency percentiles in milliseconds.

    ``latency_ms`` is over the answered requests; ``latency_all_ms`` over every scheduled
    request, a failed one counting as slower than any answer (``null`` where a failure
    falls on the percentile), so errors cannot flatter the tail.
    """
    answered = sorted(out.latencies)
    everything = answered + [math.inf] * out.errors
    pct = {"p50": 50, "p95": 95, "p99": 99, "max": 100}

    def ms(values: list[float]) -> dict:
        result = {}
        for name, q in pct.items():
            v = percentile(values, q)
            result[name] = None if not math.isfinite(v) else round(v * 1000, 2)
        return result

    return {
        "requests": total if total is not None else out.ok + out.errors,
        "ok": out.ok,
        "errors": out.errors,
        "timeouts": out.timeouts,
        "not_sent": out.not_sent,
        "connection_errors": out.connection_errors,
        "statuses": {str(k): v for k, v in sorted(out.statuses.items())},
        "elapsed_s": round(elapsed, 3),
        "ok_per_s": round(out.ok / elapsed, 2) if elapsed > 0 else None,
        "latency_ms": ms(answered),
        "latency_all_ms": ms(everything),
    }


async def serve_noop(port: int, seconds: float) -> None:
    """An HTTP/1.1 server answering every request at once with a fixed small JSON body.

    The generator's own latency floor on this machine: the same paced run against it shows
    how much of a measured latency is the generator and the shared cores, not the service.
    """
    body = b'{"deal_id":"noop","probability":0.5,"drivers":[]}'
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(answer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=HEADER_LIMIT)
    async with server:
        await asyncio.sleep(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--bodies", help="JSON lines, one request body per line")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rate", type=float, help="open loop: requests per second")
    mode.add_argument("--clients", type=int, help="closed loop: concurrent clients")
    mode.add_argument("--serve-noop", type=int, metavar="PORT", help="run the no-op server")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--connections", type=int, default=64, help="open loop: connections")
    parser.add_argument(
        "--token", default=os.environ.get("SPM_ML_TOKEN"), help="API token (Bearer)"
    )
    args = parser.parse_args()
    if args.serve_noop is not None:
        asyncio.run(serve_noop(args.serve_noop, args.duration))
        return
    if not (args.url and args.bodies):
        parser.error("--url and --bodies are needed to send requests")

    with open(args.bodies, "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    host, port, raw = build_requests(args.url, bodies, args.token)
    started = time.perf_counter()
    if args.rate is not None:
        out, elapsed = asyncio.run(
            open_loop(host, port, raw, args.rate, args.duration, args.timeout, args.connections)
        )
        summary = summarise(out, elapsed, int(args.rate * args.duration))
        summary.update(mode="open", rate=args.rate, connections=args.connections)
        summary["offered_per_s"] = round((summary["requests"] - out.not_sent) / args.duration, 2)
    else:
        out, elapsed = asyncio.run(
            closed_loop(host, port, raw, args.clients, args.duration, args.timeout)
        )
        summary = summarise(out, elapsed, None)
        summary.update(mode="closed", clients=args.clients)
    summary.update(
        duration_s=args.duration,
        timeout_s=args.timeout,
        wall_s=round(time.perf_counter() - started, 3),
    )
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
