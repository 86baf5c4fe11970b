"""Load on the coaching endpoint (issue 16): paced single deals, and 32-deal requests against
the same coaching function called in process.

Against the real service started as a user starts it (``python -m spm_ml.cli serve``, its own
token store, an admin token sent with every request), on the quickstart organisation
(``serving_speed.prepare_trained``: 50 reps, 24 months, seed 0), deals by id as of the
organisation's extraction time (the same pool as ``serving_speed.py --shape id``):

* **(p) paced**: ``POST /v1/deals/coaching`` with one deal per request, open loop at
  ``--rate`` (default 100) requests/s for ``--duration`` (default 60) seconds; latency from
  each request's scheduled send time.  Target: **p99 < 100 ms, 0 errors**.
* **(t) throughput, 32 deals per request**: ``--clients`` (default 4) closed-loop clients
  for ``--duration-t`` (default 30) seconds: deals coached per second over HTTP, against
  the service's own coaching function (``serving.service.coachings``) called in this
  process by 2 threads on the same 32-deal requests for as long (the reference).  Target:
  **HTTP >= 75% of the in-process figure**.

Every coaching request re-scores every applicable lever of every deal (one model call per
request: ``spm_ml/coaching/deals.py``).  Beside each figure: the load generator's own CPU
seconds and the server's (the machine has 2 cores and the generator shares them).

Usage::

    python benchmarks/coaching_load.py [--workdir DIR] [--rate 100] [--duration 60]
        [--workers 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from serving_speed import (  # noqa: E402
    FULL,
    QUICK,
    BenchmarkError,
    Processes,
    Server,
    check_answers,
    cpu_fields,
    default_org,
    log,
    prepare_trained,
    request_bodies,
    start_server,
    stop_on_sigterm,
    write_pool,
)

ROUTE = "/v1/deals/coaching"
TARGET_P99_MS = 100.0
TARGET_SHARE = 0.75
DEALS_PER_REQUEST = 32


def coaching_bodies(score_bodies: list[dict], per_request: int) -> list[dict]:
    """The score pool's deals (by id) as coaching requests of ``per_request`` deals each."""
    deals = [d for body in score_bodies for d in body["deals"]]
    return [
        {"deals": deals[i : i + per_request]}
        for i in range(0, len(deals) - per_request + 1, per_request)
    ] or [{"deals": deals[:per_request]}]


def http_load(
    procs: Processes, server: Server, pool: Path, logs: Path, args: list[str], budget: float
) -> tuple[dict, dict]:
    """``http_load.py`` against the coaching route: its summary and the CPU both used."""
    command = [sys.executable, str(HERE / "http_load.py"), "--url", server.url + ROUTE]
    command += ["--bodies", str(pool), "--token", server.token, *args]
    cpu0 = server.cpu()
    out, gen_cpu, wall = procs.run(command, timeout=budget, log_path=logs / "coaching_load.log")
    return json.loads(out.strip().splitlines()[-1]), cpu_fields(gen_cpu, server.cpu() - cpu0, wall)


def in_process(trained: Path, org, bodies: list[dict], seconds: float, threads: int) -> dict:
    """The service's coaching function on ``bodies``, ``threads`` threads for ``seconds``:
    deals coached per second (models loaded as the service loads them, outside the timing)."""
    from serving.models import load_model_set
    from serving.schemas import DealCoachingList
    from serving.service import coachings
    from spm_ml.data.io import load_tables

    models = load_model_set(trained, load_tables(str(org.data)))
    requests = [DealCoachingList.model_validate(b) for b in bodies]
    coachings(models, requests[0])  # warm: first-call caches
    done = [0] * threads
    times: list[float] = []
    stop = time.perf_counter() + seconds

    def work(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            results = coachings(models, requests[i % len(requests)])
            times.append(time.perf_counter() - t0)
            done[k] += sum(1 for r in results if r.status == 200)
            i += threads

    cpu0, wall0 = time.process_time(), time.perf_counter()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - wall0
    return {
        "threads": threads,
        "requests": len(times),
        "deals_per_s": round(sum(done) / wall, 1),
        "median_ms_per_request": round(statistics.median(times) * 1000, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "seconds": round(wall, 1),
    }


def run(args: argparse.Namespace, procs: Processes) -> dict:
    sizes = QUICK if args.quick else FULL
    work = Path(args.workdir).resolve()
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    trained = prepare_trained(work, sizes)
    org = default_org(trained, sizes)
    single = request_bodies(org, "id")
    batches = coaching_bodies(single, DEALS_PER_REQUEST)
    pools = work / "pools"
    single_pool = write_pool(single, pools / "coaching-1.jsonl")
    batch_pool = write_pool(batches, pools / f"coaching-{DEALS_PER_REQUEST}.jsonl")
    log(f"{len(single)} single-deal bodies, {len(batches)} bodies of {DEALS_PER_REQUEST} deals")
    duration_t = 5.0 if args.quick else args.duration_t
    reference = in_process(trained, org, batches, duration_t, threads=2)
    log(f"in process, 2 threads: {reference}")
    out: dict = {"reference_in_process": reference}
    server = start_server(trained, org, procs, logs, args.start_timeout, args.workers)
    try:
        check = check_answers(server, single, 3, args.timeout)
        out["unloaded_score_ms"] = check
        duration = 5.0 if args.quick else args.duration
        summary, cpu = http_load(
            procs,
            server,
            single_pool,
            logs,
            ["--rate", str(args.rate), "--duration", str(duration), "--timeout", "10"],
            duration + 60,
        )
        p99 = summary["latency_all_ms"]["p99"]
        out["paced"] = {
            "rate": args.rate,
            "seconds": duration,
            "requests": summary["requests"],
            "ok": summary["ok"],
            "errors": summary["errors"],
            "latency_ms": summary["latency_all_ms"],
            **cpu,
            "target": f"p99 < {TARGET_P99_MS:g} ms, 0 errors",
            "met": summary["errors"] == 0 and p99 is not None and p99 < TARGET_P99_MS,
        }
        log(f"paced: {out['paced']}")
        summary, cpu = http_load(
            procs,
            server,
            batch_pool,
            logs,
            ["--clients", str(args.clients), "--duration", str(duration_t), "--timeout", "30"],
            duration_t + 90,
        )
        deals_per_s = summary["ok"] * DEALS_PER_REQUEST / duration_t
        share = deals_per_s / reference["deals_per_s"] if reference["deals_per_s"] else None
        out["throughput_32"] = {
            "clients": args.clients,
            "seconds": duration_t,
            "requests_ok": summary["ok"],
            "errors": summary["errors"],
            "deals_per_s": round(deals_per_s, 1),
            "latency_ms": summary["latency_ms"],
            **cpu,
            "share_of_in_process": None if share is None else round(share, 3),
            "target": f">= {TARGET_SHARE:.0%} of in-process with 2 threads",
            "met": share is not None and share >= TARGET_SHARE and summary["errors"] == 0,
        }
        log(f"32 deals per request: {out['throughput_32']}")
    finally:
        procs.stop(server.process)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/spm-ml-serving-bench")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the paced run")
    parser.add_argument("--duration-t", type=float, default=30.0, help="seconds of (t)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--start-timeout", type=float, default=900.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    log(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    procs = Processes()
    try:
        with stop_on_sigterm():
            result = run(args, procs)
    except BenchmarkError as err:
        log(f"stopped: {err}")
        raise SystemExit(2) from None
    finally:
        procs.stop_all()
    print(json.dumps(result))
    log(f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
