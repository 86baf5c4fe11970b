"""Speed of the HTTP service (issue 14, point 5): explained deal scores per second and latency.

What it measures, one deal per request, ``top_k=3`` (an explained score), against the real
service started as a user starts it (``python -m spm_ml.cli serve``), with the same champion
model serving every organisation:

* **(a) throughput**: 32 clients sending back to back for ``--duration`` seconds (default
  30): explained scores per second (2xx answers), errors.  Target: **>= 1,500 scores/s**.
* **(b) paced load**: 500 requests/s, open loop, for 60 s: p50/p95/p99 latency measured
  from each request's *scheduled* send time (no coordinated omission), errors, achieved
  rate.  Target: **p99 < 25 ms with 0 errors**.
* **(c) organisation size**: latency p50/p99 at a moderate paced rate (50 requests/s for
  60 s) at organisations of 50, 500 and 2,000 reps, and the ratio largest/smallest.  60 s
  gives 3,000 answers, so the p99 is the 30th slowest: of 1,000 answers (the 20 s of earlier
  runs) it was the 10th, and two 20 s runs of the same code (2026-12-07) put the slowest
  organisation's p99 at x1.17 and x1.30 of the fastest's, a different organisation each
  time.
  Target: **within 20% of each other** (ratio <= 1.2).

Measured in the same run, as the reference: the same scoring called in process (no HTTP),
per-call median and calls per second (:func:`in_process_reference`).  Also recorded: the
server's start-up time (process start to ``/readyz`` answering 200 and every worker
loaded), the CPU seconds the server's processes used during each load run, and the load
generator's own CPU seconds:
the machine has 2 cores and the generator shares them with the server.

Organisations (prepared once under ``--workdir`` and reused by later runs):

* ``trained-…``: ``run_quickstart(reps=50, months=24, seed=0)``: the champion model, and the
  default organisation that (a) and (b) run against (served with ``SPM_ML_DATA`` unset, so
  from the work folder's own ``data/``, as after ``spm-ml quickstart``);
* ``org-r{50,500,2000}-m12``: ``simulate(SimulationConfig(n_reps=N, months=12, seed=0))``
  written with ``write_tables(..., format="parquet")`` and served with ``SPM_ML_DATA`` set
  to it.  12 months (after the simulator's 6 warm-up months) keeps the 2,000-rep
  organisation to under two minutes of simulation and ~3 GB of server memory.  Only the
  emails of the deals in the request pool are sentiment-scored (with the default model) and
  stored as scores; the others carry NaN scores ("unscored", as non-English emails are) and no
  text.  Scoring all 1-3 million emails would take 10-25 minutes per organisation and does not
  change the cost of a request.  The service does no sentiment scoring at start-up for these
  organisations, so their start-up time excludes it.

Requests (``--shape``): a pool of ``--pool`` (default 300) distinct bodies built from
deals open at the organisation's ``extracted_at``, sent round robin:

* ``posted``: ``{"deals": [{"deal": {...}, "as_of", "history", "activities", "emails",
  "top_k": 3}]}`` (the API takes lists; a list of one deal) with the deal's row (custom
  fields included), its full stage / amount / close-date history, its activities (type,
  time, duration, contact) and its emails as metadata and sentiment scores (direction,
  sent_at, contact, p_negative, p_neutral, p_positive, scored by the default model where
  the data holds text; never subject or body; inbound emails the model leaves unscored are
  left out);
* ``id`` (the API of point 4): ``{"deals": [{"deal_id": ..., "as_of": extracted_at,
  "top_k": 3}]}``.

Before each load run a few requests are sent one at a time and their answers checked (2xx,
a probability, 3 drivers); the run stops with the server's answer if they fail.

Load generators: ``wrk`` (Debian package ``wrk``; one thread, a Lua script posting the pool,
``benchmarks/wrk_post_pool.lua``) for (a), as it costs the server the least CPU; when it is
not installed, the closed loop of ``benchmarks/http_load.py``.  (b) and (c) use
``benchmarks/http_load.py`` (asyncio, persistent HTTP/1.1 connections, open loop).  Every
generator runs as a child process whose CPU time is read from ``wait4``.

Everything stops by itself: every request has a timeout (``--timeout``, default 30 s; long,
because with 32 clients a server taking 1 s per request answers each after ~32 s), every
child process a deadline, and every server and generator is started in its own process group
and stopped in a ``finally`` block, also on Ctrl-C or SIGTERM.

Usage::

    python benchmarks/serving_speed.py [--workdir DIR] [--shape id|posted]
        [--scenarios a b c] [--duration S] [--quick] [--profile S]

``--quick`` (smaller organisations, 5-second runs) checks that the script works end to end.
``--profile S`` runs ``py-spy record`` for S seconds on the server's worker during (a) and
prints the heaviest frames.  Prints one JSON line per measurement, then a Markdown table.
Delete the work folder after changing training code so the model is trained anew.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROUTE = "/v1/deals/score"
TOP_K = 3
CLIENTS_A = 32
RATE_B = 500.0
RATE_C = 50.0
TARGET_A = 1500.0
TARGET_B_P99_MS = 25.0
TARGET_C_RATIO = 1.2


class BenchmarkError(RuntimeError):
    """A run that cannot go on (server will not start, answers are wrong): said, not traced."""


@dataclass(frozen=True)
class Sizes:
    """How big everything is: the full run, or ``--quick``."""

    trained_reps: int
    trained_months: int
    sweep_reps: tuple[int, ...]
    sweep_months: int
    pool: int
    duration_a: float
    duration_b: float
    duration_c: float


FULL = Sizes(50, 24, (50, 500, 2000), 12, 300, 30.0, 60.0, 60.0)
QUICK = Sizes(20, 12, (20, 50, 100), 6, 60, 5.0, 5.0, 5.0)


@dataclass(frozen=True)
class Org:
    """An organisation the service can serve, and the open deals requests are built from."""

    name: str
    reps: int
    months: int
    data: Path
    """Folder of its tables."""
    env_data: str | None
    """``SPM_ML_DATA`` for the server; ``None`` serves the trained work folder's own data."""
    extracted_at: pd.Timestamp
    pool_ids: tuple[str, ...]


# --------------------------------------------------------------------------- preparation


def prepare_trained(work: Path, sizes: Sizes) -> Path:
    """A work folder after ``run_quickstart``: data, MLflow store with a champion, scores."""
    from spm_ml.quickstart import run_quickstart

    folder = work / f"trained-r{sizes.trained_reps}-m{sizes.trained_months}-s0"
    marker = folder / ".complete.json"
    if marker.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)  # a half-made folder from an interrupted run
    log(f"preparing {folder.name}: quickstart (a few minutes)")
    t0 = time.perf_counter()
    result = run_quickstart(folder, reps=sizes.trained_reps, months=sizes.trained_months, seed=0)
    marker.write_text(
        json.dumps({"seconds": round(time.perf_counter() - t0, 1), "steps": result.seconds})
    )
    return folder


def read_extracted_at(folder: Path) -> pd.Timestamp:
    """The ``extracted_at`` that ``write_tables`` recorded beside the tables."""
    from spm_ml.data.io import METADATA_FILE

    return pd.Timestamp(json.loads((folder / METADATA_FILE).read_text())["extracted_at"])


def open_deal_ids(deals: pd.DataFrame, extracted_at: pd.Timestamp, n: int) -> tuple[str, ...]:
    """Up to ``n`` deals open at ``extracted_at``, drawn with a fixed seed."""
    from spm_ml.data.schema import OPEN_STAGES

    is_open = deals["stage"].isin(OPEN_STAGES) & (deals["created_at"] < extracted_at)
    ids = np.sort(deals.loc[is_open, "deal_id"].astype(str).to_numpy())
    rng = np.random.default_rng(0)
    return tuple(rng.choice(ids, size=min(n, len(ids)), replace=False).tolist())


def default_org(trained: Path, sizes: Sizes) -> Org:
    """The trained work folder's own organisation (emails scored by the quickstart)."""
    data = trained / "data"
    extracted_at = read_extracted_at(data)
    deals = pd.read_parquet(data / "deals.parquet")
    return Org(
        name=f"default ({sizes.trained_reps} reps x {sizes.trained_months} months)",
        reps=sizes.trained_reps,
        months=sizes.trained_months,
        data=data,
        env_data=None,
        extracted_at=extracted_at,
        pool_ids=open_deal_ids(deals, extracted_at, sizes.pool),
    )


def prepare_org(work: Path, reps: int, months: int, pool: int) -> Org:
    """A simulated organisation of ``reps`` reps as a Parquet folder (see the module doc)."""
    from spm_ml.data.io import write_tables
    from spm_ml.data.simulate import SimulationConfig, simulate
    from spm_ml.nlp.signals import TEXT_COLUMNS, score_emails

    folder = work / f"org-r{reps}-m{months}-s0"
    data, marker = folder / "data", folder / "pool.json"
    if not marker.exists():
        if folder.exists():
            shutil.rmtree(folder)
        log(f"preparing {folder.name}: simulate, score the pool's emails, write Parquet")
        t0 = time.perf_counter()
        tables = simulate(SimulationConfig(n_reps=reps, months=months, seed=0)).tables
        simulated_s = time.perf_counter() - t0
        ids = open_deal_ids(tables.deals, tables.extracted_at, pool)
        emails = tables.emails
        in_pool = emails["deal_id"].isin(ids)
        scored = score_emails(tables.replace(emails=emails[in_pool])).emails
        emails = emails.drop(columns=list(TEXT_COLUMNS))
        for column in ("p_negative", "p_neutral", "p_positive"):
            emails[column] = np.nan
            emails.loc[in_pool, column] = scored[column].to_numpy()
        for column in TEXT_COLUMNS:  # kept as empty columns: the contract lists them
            emails[column] = pd.Series(None, index=emails.index, dtype="str")
        write_tables(tables.replace(emails=emails), data, format="parquet")
        marker.write_text(
            json.dumps(
                {
                    "pool_ids": list(ids),
                    "simulate_s": round(simulated_s, 1),
                    "prepare_s": round(time.perf_counter() - t0, 1),
                    "rows": {name: len(frame) for name, frame in tables.items()},
                    "scored_emails": int(in_pool.sum()),
                }
            )
        )
    return Org(
        name=f"{reps} reps x {months} months",
        reps=reps,
        months=months,
        data=data,
        env_data=str(data),
        extracted_at=read_extracted_at(data),
        pool_ids=tuple(json.loads(marker.read_text())["pool_ids"]),
    )


def request_bodies(org: Org, shape: str) -> list[dict]:
    """One request body per pooled deal, in the given ``shape`` (see the module doc)."""
    as_of = org.extracted_at.isoformat()
    if shape == "id":
        return [{"deals": [{"deal_id": i, "as_of": as_of, "top_k": TOP_K}]} for i in org.pool_ids]
    ids = list(org.pool_ids)

    def read(table: str) -> pd.DataFrame:
        frame = pd.read_parquet(org.data / f"{table}.parquet", filters=[("deal_id", "in", ids)])
        return frame

    deals = read("deals").set_index("deal_id")
    history = read("deal_history").sort_values("changed_at").groupby("deal_id")
    activities = read("activities").sort_values("occurred_at").groupby("deal_id")
    emails = with_scores(read("emails"))
    log(
        f"{org.name}: posted emails carry their sentiment scores; "
        f"{emails.attrs.get('left_out', 0)} inbound emails the model leaves unscored "
        "(flagged) are left out, as the API needs the scores of every inbound email"
    )
    emails = emails.sort_values("sent_at").groupby("deal_id")

    def rows(groups, deal_id: str, columns: tuple[str, ...]) -> list[dict]:
        if deal_id not in groups.groups:
            return []
        frame = groups.get_group(deal_id)
        return [plain(r) for r in frame[[c for c in columns if c in frame]].to_dict("records")]

    bodies = []
    for deal_id in ids:
        deal = plain(deals.loc[deal_id].drop(["closed_at", "outcome"]).to_dict())
        bodies.append(
            {
                "deal": {"deal_id": deal_id, **deal},
                "as_of": as_of,
                "history": rows(
                    history, deal_id, ("changed_at", "field", "old_value", "new_value")
                ),
                "activities": rows(
                    activities, deal_id, ("type", "occurred_at", "duration_min", "contact_id")
                ),
                # metadata and derived scores only: the text of an email never leaves the
                # organisation's tables
                "emails": rows(emails, deal_id, ("direction", "sent_at", "contact_id", *TONE)),
                "top_k": TOP_K,
            }
        )
    return [{"deals": [body]} for body in bodies]  # the API takes lists: a list of one


TONE = ("p_negative", "p_neutral", "p_positive")


def with_scores(emails: pd.DataFrame) -> pd.DataFrame:
    """The emails with their sentiment scores (the default model's, as the service computes
    them), without text; inbound emails left unscored (flagged) are dropped and counted in
    ``attrs["left_out"]``."""
    from spm_ml.data.parse import empty_frame
    from spm_ml.data.schema import TABLES
    from spm_ml.data.tables import Tables
    from spm_ml.nlp.signals import score_emails

    if not all(c in emails.columns for c in TONE):
        frames = {name: empty_frame(TABLES[name]) for name in TABLES}
        emails = score_emails(Tables(**{**frames, "emails": emails})).emails
    unscored = (emails["direction"] == "inbound") & emails["p_positive"].isna()
    kept = emails[~unscored].drop(columns=["subject", "body"], errors="ignore")
    kept.attrs["left_out"] = int(unscored.sum())
    return kept


def plain(record: dict) -> dict:
    """JSON-ready values: times as ISO strings, missing values left out (null for history)."""
    out = {}
    for key, value in record.items():
        if isinstance(value, pd.Timestamp):
            out[key] = value.isoformat()
        elif value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            if key == "old_value":
                out[key] = None
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def write_pool(bodies: list[dict], path: Path) -> Path:
    """The bodies as JSON lines (what both load generators read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in bodies))
    return path


# --------------------------------------------------------------------------- processes


class Processes:
    """Every child started here, each in its own process group, stopped on the way out."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, command: list[str], *, env: dict | None = None, log_path: Path):
        log_file = open(log_path, "wb")  # noqa: SIM115 (closed by the child's exit)
        child = subprocess.Popen(
            command,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # so the child and all it starts can be stopped at once
        )
        log_file.close()
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen, grace: float = 20.0) -> None:
        """SIGTERM to the child's group, SIGKILL after ``grace`` seconds, then to anything
        left of its process tree (workers in sessions of their own included)."""
        tree = process_tree(child.pid) if child.returncode is None else []
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):  # stragglers left in the group
            os.killpg(child.pid, signal.SIGKILL)
        for pid in tree[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in list(self.children):
            self.stop(child, grace=10.0)

    def run(
        self, command: list[str], *, timeout: float, log_path: Path
    ) -> tuple[str, float, float]:
        """Run a generator to the end (killed after ``timeout`` s): output, CPU s, wall s."""
        out_path = log_path.with_suffix(".out")
        with open(out_path, "wb") as out:
            child = subprocess.Popen(
                command,
                stdout=out,
                stderr=open(log_path, "wb"),  # noqa: SIM115
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.children.append(child)
        started = time.monotonic()
        deadline = started + timeout
        try:
            while True:
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    os.killpg(child.pid, signal.SIGKILL)
                    pid, status, usage = os.wait4(child.pid, 0)
                    break
                time.sleep(0.05)
            child.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if child.returncode is None:
                self.stop(child, grace=1.0)
            elif child in self.children:
                self.children.remove(child)
        if child.returncode != 0:
            raise BenchmarkError(
                f"{command[0]} exited with {child.returncode}: {log_path.read_text()[-2000:]}"
            )
        cpu = usage.ru_utime + usage.ru_stime
        return out_path.read_text(), cpu, time.monotonic() - started


def proc_table() -> dict[int, tuple[int, float, int, str]]:
    """Every live process: ``pid -> (parent pid, CPU seconds, RSS kB, command line)``."""
    tick, page_kb = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE") // 1024
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # fields[0] is field 3, state
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, UnicodeDecodeError):
            continue
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        table[int(stat.parent.name)] = (int(fields[1]), cpu, int(fields[21]) * page_kb, cmd)
    return table


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants.

    By parentage, not process group: BentoML's process manager starts each worker in a
    session of its own, so stopping or measuring the server's group alone would miss them.
    """
    children: dict[int, list[int]] = {}
    for child, (parent, *_rest) in proc_table().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (from /proc)."""
    table = proc_table()
    return sum(table[p][1] for p in process_tree(pid) if p in table)


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    startup_s: float
    log_path: Path
    token: str = ""
    """An admin token of the server's own token store (sent with every request)."""

    def cpu(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def rss_mb(self) -> float:
        """Resident memory of the server's processes together."""
        table = proc_table()
        return sum(table[p][2] for p in process_tree(self.process.pid) if p in table) / 1024

    def worker_pid(self) -> int:
        """The process doing the work: the largest of the tree (it holds model and context)."""
        table = proc_table()
        return max(
            (p for p in process_tree(self.process.pid) if p in table), key=lambda p: table[p][2]
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORKER_LOADED = "Service spm-ml initialized"
"""What BentoML logs for each worker once its service (model and context) is loaded."""


def start_server(
    trained: Path, org: Org, procs: Processes, logs: Path, timeout: float, workers: int = 1
) -> Server:
    """``python -m spm_ml.cli serve --workers N`` on a free port; returns once every worker
    has loaded its model (``/readyz`` answers as soon as the first one has: load sent
    earlier would all land on that one)."""
    import httpx

    from spm_ml.tokens import TokenStore

    port = free_port()
    tokens = logs / f"tokens-{port}.json"
    token = TokenStore(tokens).create("serving-speed", "admin")
    env = {**os.environ, "SPM_ML_WORKDIR": str(trained), "SPM_ML_TOKENS_FILE": str(tokens)}
    env.pop("SPM_ML_DATA", None)
    if org.env_data is not None:
        env["SPM_ML_DATA"] = org.env_data
    log_path = logs / f"server-{port}.log"
    t0 = time.perf_counter()
    child = procs.start(
        [
            sys.executable,
            "-m",
            "spm_ml.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        log_path=log_path,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchmarkError(f"server exited early:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if (
                httpx.get(f"{url}/readyz", timeout=2).status_code == 200
                and log_path.read_text().count(WORKER_LOADED) >= workers
            ):
                return Server(child, url, time.perf_counter() - t0, log_path, token)
        time.sleep(0.25)
    procs.stop(child)
    raise BenchmarkError(f"server not ready within {timeout:g} s; log: {log_path}")


def wait_until_idle(server: Server, limit: float) -> float:
    """Let a server finish work left by the previous run (CPU < 10% over 1 s); seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        before = server.cpu()
        time.sleep(1.0)
        if server.cpu() - before < 0.1:
            break
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- measurement


def in_process_reference(
    trained: Path, org: Org, bodies: list[dict], *, seconds: float, max_calls: int = 500
) -> dict:
    """The scoring the service does per request, called in this process: no HTTP, no queue.

    Model and context are loaded as ``serving/service.py`` loads them (outside the timing);
    then each body, validated by the service's request model, goes through the service's
    own batch function with a batch of one: ``DealScorer.score_requests``.
    """
    from serving.schemas import DealScoreList
    from serving.service import deal_request
    from spm_ml import registry, settings
    from spm_ml.data.io import load_tables
    from spm_ml.nlp.signals import with_email_scores
    from spm_ml.scoring import DealScorer

    t0 = time.perf_counter()
    registry.use_local_store(trained)
    loaded = registry.load_model("deal-win", alias=registry.CHAMPION)
    tables = with_email_scores(
        load_tables(str(org.data)), cache=settings.email_scores_path(trained)
    )
    scorer = DealScorer.for_model(loaded, tables)
    scorer.context.index_rows()  # as the service does at start-up, before its first request
    load_s = time.perf_counter() - t0
    # the service freezes its heap and collects cycles rarely (serving/service.py); without
    # that, collections rescanning a 2,000-rep context's objects made the reference itself
    # grow with the organisation (4.1 against 3.0 ms a call, 2026-12-07)
    from serving.service import freeze_heap

    thresholds = gc.get_threshold()
    freeze_heap()

    def call_for(body: dict):
        request = deal_request(DealScoreList.model_validate(body).deals[0])
        return lambda: scorer.score_requests([request])

    times: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for body in itertools.islice(itertools.cycle(bodies), max_calls):
        call = call_for(body)
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        if time.perf_counter() - wall0 >= seconds:
            break
    cpu = time.process_time() - cpu0
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    return {
        "calls": len(times),
        "median_ms": round(statistics.median(times) * 1000, 2),
        "p99_ms": round(float(np.percentile(times, 99)) * 1000, 2),
        "calls_per_s": round(len(times) / sum(times), 2),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_call": round(cpu / len(times) * 1000, 2),
        "load_s": round(load_s, 1),
    }


def check_answers(server: Server, bodies: list[dict], n: int, timeout: float) -> dict:
    """``n`` requests one at a time: each must be a 2xx explained score.  Unloaded latency."""
    import httpx

    times = []
    auth = {"authorization": f"Bearer {server.token}"}
    with httpx.Client(timeout=timeout, headers=auth) as client:
        for body in bodies[:n]:
            t0 = time.perf_counter()
            response = client.post(server.url + ROUTE, json=body)
            times.append(time.perf_counter() - t0)
            answer = response.json()["results"][0] if response.is_success else {}
            if not response.is_success or len(answer.get("drivers", ())) != TOP_K:
                raise BenchmarkError(
                    f"the server does not score this request shape: HTTP "
                    f"{response.status_code}: {response.text[:600]}"
                )
            if not 0.0 <= answer["probability"] <= 1.0:
                raise BenchmarkError(f"probability out of range: {answer['probability']}")
    return {
        "requests": len(times),
        "median_ms": round(statistics.median(times) * 1000, 2),
        "max_ms": round(max(times) * 1000, 2),
    }


def run_http_load(
    procs: Processes, server: Server, pool: Path, logs: Path, args: list[str], budget: float
) -> tuple[dict, dict]:
    """``benchmarks/http_load.py`` with ``args``: its summary, and the CPU it and the server
    used over the generator's lifetime (``window_s``)."""
    command = [sys.executable, str(HERE / "http_load.py"), "--url", server.url + ROUTE]
    command += ["--bodies", str(pool), "--token", server.token, *args]
    cpu0 = server.cpu()
    out, gen_cpu, wall = procs.run(command, timeout=budget, log_path=logs / "http_load.log")
    return json.loads(out.strip().splitlines()[-1]), cpu_fields(gen_cpu, server.cpu() - cpu0, wall)


def cpu_fields(generator: float, server: float, window: float) -> dict:
    return {
        "window_s": round(window, 2),
        "generator_cpu_s": round(generator, 2),
        "server_cpu_s": round(server, 2),
    }


def scenario_a(
    procs: Processes, server: Server, pool: Path, logs: Path, duration: float, timeout: float
) -> dict:
    """32 clients back to back: explained scores per second."""
    wrk = shutil.which("wrk")
    if wrk:
        command = [wrk, "-t1", f"-c{CLIENTS_A}", f"-d{duration:g}s", f"--timeout={timeout:g}s"]
        command += ["-s", str(HERE / "wrk_post_pool.lua"), server.url + ROUTE, "--", str(pool)]
        command += [server.token]
        cpu0 = server.cpu()
        out, gen_cpu, wall = procs.run(
            command, timeout=duration + timeout + 30, log_path=logs / "wrk"
        )
        cpu = cpu_fields(gen_cpu, server.cpu() - cpu0, wall)
        line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
        w = json.loads(line.removeprefix("WRKJSON "))
        seconds = w["duration_us"] / 1e6
        ok = w["requests"] - w["errors_status"]
        errors = w["errors_status"] + w["errors_timeout"] + w["errors_connect"]
        errors += w["errors_read"] + w["errors_write"]
        result = {
            "generator": "wrk -t1 (closed loop)",
            "ok": ok,
            "errors": errors,
            "error_kinds": {k: v for k, v in w.items() if k.startswith("errors_") and v},
            "seconds": round(seconds, 2),
            "scores_per_s": round(ok / seconds, 2),
            "latency_ms": {
                p: round(w[f"latency_{p}_us"] / 1000, 2) for p in ("p50", "p95", "p99", "max")
            },
        }
    else:
        args = ["--clients", str(CLIENTS_A), "--duration", str(duration), "--timeout", str(timeout)]
        s, cpu = run_http_load(procs, server, pool, logs, args, duration + timeout + 30)
        result = {
            "generator": "http_load.py (closed loop; wrk not installed)",
            "ok": s["ok"],
            "errors": s["errors"],
            "error_kinds": {"timeouts": s["timeouts"], "statuses": s["statuses"]},
            "seconds": s["elapsed_s"],
            "scores_per_s": s["ok_per_s"],
            "latency_ms": s["latency_ms"],
        }
    result.update(
        clients=CLIENTS_A,
        **cpu,
        server_cpu_ms_per_ok=round(cpu["server_cpu_s"] / max(result["ok"], 1) * 1000, 2),
        target=f">= {TARGET_A:,.0f} scores/s",
        met=result["scores_per_s"] >= TARGET_A,
    )
    return result


def paced(
    procs: Processes,
    server: Server,
    pool: Path,
    logs: Path,
    *,
    rate: float,
    duration: float,
    timeout: float,
    connections: int,
) -> dict:
    """Open-loop paced load through ``http_load.py``."""
    args = ["--rate", str(rate), "--duration", str(duration), "--timeout", str(timeout)]
    args += ["--connections", str(connections)]
    s, cpu = run_http_load(procs, server, pool, logs, args, duration + timeout + 30)
    return {
        "generator": "http_load.py (open loop)",
        "rate": rate,
        "seconds": duration,
        "requests": s["requests"],
        "ok": s["ok"],
        "errors": s["errors"],
        "error_kinds": {
            "timeouts": s["timeouts"],
            "not_sent": s["not_sent"],
            "connection": s["connection_errors"],
            "statuses": {k: v for k, v in s["statuses"].items() if not k.startswith("2")},
        },
        "offered_per_s": s["offered_per_s"],
        "ok_per_s": s["ok_per_s"],
        "latency_ms": s["latency_all_ms"],
        "latency_answered_ms": s["latency_ms"],
        "connections": connections,
        "timeout_s": timeout,
        **cpu,
        "server_cpu_ms_per_ok": round(cpu["server_cpu_s"] / max(s["ok"], 1) * 1000, 2),
    }


def generator_floor(
    procs: Processes,
    pool: Path,
    logs: Path,
    *,
    rate: float,
    duration: float,
    timeout: float,
    connections: int,
) -> dict:
    """The paced run of (b) against a server that answers at once: the generator's floor.

    On 2 shared cores a late wake-up of the generator shows as latency; this says how much
    of a measured p99 is that, not the service.
    """
    import httpx

    port = free_port()
    command = [sys.executable, str(HERE / "http_load.py"), "--serve-noop", str(port)]
    noop = procs.start(
        command + ["--duration", str(duration + timeout + 30)], log_path=logs / "noop.log"
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"http://127.0.0.1:{port}{ROUTE}", content=b"{}", timeout=2)
                break
            time.sleep(0.2)
        fake = Server(noop, f"http://127.0.0.1:{port}", 0.0, logs / "noop.log")
        result = paced(
            procs,
            fake,
            pool,
            logs,
            rate=rate,
            duration=duration,
            timeout=timeout,
            connections=connections,
        )
    finally:
        procs.stop(noop, grace=2.0)
    result["generator"] += " against a no-op HTTP server"
    return result


def profile(server: Server, seconds: float, out: Path, procs: Processes) -> subprocess.Popen:
    """Start ``py-spy record`` on the server's worker (raw collapsed stacks into ``out``)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise BenchmarkError("--profile needs py-spy: pip install py-spy (in the dev extra)")
    command = [py_spy, "record", "-d", str(int(seconds)), "-r", "100", "-f", "raw", "--function"]
    command += ["-o", str(out), "--pid", str(server.worker_pid())]
    return procs.start(command, log_path=out.with_suffix(".log"))


def top_frames(collapsed: Path, root: str = "score_deals", n: int = 15) -> dict:
    """The heaviest frames of a py-spy profile (collapsed stacks), as shares of all samples.

    ``inclusive``: frames below the request handler ``root`` (a frame counted once per
    sample however deep it recurs); ``self``: where the samples' innermost frames were.
    """
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = under_root = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, weight = stack.split(";"), int(count)
        total += weight
        own[frames[-1]] += weight
        starts = [i for i, f in enumerate(frames) if f.startswith(root + " ") or f"{root} (" in f]
        if starts:
            under_root += weight
            for frame in set(frames[starts[0] :]):
                inclusive[frame] += weight
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "in_handler": round(under_root / total, 3),
        "inclusive": [(f, round(w / total, 3)) for f, w in inclusive.most_common(n)],
        "self": [(f, round(w / total, 3)) for f, w in own.most_common(n)],
    }


def report_profile(collapsed: Path) -> dict | None:
    """Print the heaviest frames and return them, or say why there is no profile."""
    if not collapsed.exists():
        tail = collapsed.with_suffix(".log").read_text()[-500:]
        log(f"py-spy wrote no profile: {tail}")
        return None
    frames = top_frames(collapsed)
    for kind in ("inclusive", "self"):
        for frame, share in frames.get(kind, []):
            log(f"profile {kind:9} {share:6.1%}  {frame}")
    return frames


# --------------------------------------------------------------------------- reporting


def log(message: str) -> None:
    print(f"# {message}", flush=True)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def fmt_ms(value: float | None) -> str:
    """Milliseconds, or ``timeout`` where the percentile fell on a failed request."""
    return "timeout" if value is None else f"{value:,.1f}"


def latency_text(r: dict) -> str:
    lat = r["latency_ms"]
    return f"p50 {fmt_ms(lat['p50'])}, p95 {fmt_ms(lat['p95'])}, **p99 {fmt_ms(lat['p99'])}** ms"


def markdown(results: list[dict]) -> str:
    """One table row per measurement, the generator's and the server's CPU beside it."""
    lines = [
        "| scenario | organisation | result | errors | target | met | generator CPU | server CPU |",
        "| --- | --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for r in results:
        kind = r["scenario"]
        errors = target = met = gen = server = ""
        if kind == "reference":
            result = (
                f"in process, 1 thread: median {r['median_ms']:,.1f} ms/call, "
                f"{r['calls_per_s']:,.2f} calls/s ({r['calls']} calls; "
                f"{r['cpu_ms_per_call']:,.1f} ms CPU/call)"
            )
        elif kind == "start-up":
            result = (
                f"start to `/readyz` 200: {r['startup_s']:.1f} s; server processes' RSS "
                f"{r['rss_mb']:,.0f} MB"
            )
        elif kind == "unloaded":
            result = f"one client, {r['requests']} requests: median {r['median_ms']:,.1f} ms"
        elif kind == "a":
            result = (
                f"**{r['scores_per_s']:,.1f} explained scores/s** ({r['ok']:,} in "
                f"{r['seconds']:g} s, {r['clients']} clients, {r['generator']}; "
                f"p50 {fmt_ms(r['latency_ms']['p50'])}, p99 {fmt_ms(r['latency_ms']['p99'])} ms)"
            )
        elif kind in ("b", "b-floor", "c"):
            result = (
                f"{r['rate']:g}/s for {r['seconds']:g} s ({r['generator']}): "
                f"{latency_text(r)}; {r['ok_per_s']:,.1f} answers/s, "
                f"{r['offered_per_s']:,.1f} requests/s sent"
            )
        elif kind == "c-ratio":
            result = (
                f"slowest / fastest organisation: p50 x{r['p50_ratio']:.2f}, "
                f"p99 x{r['p99_ratio']:.2f}"
                if r["p50_ratio"] is not None and r["p99_ratio"] is not None
                else "paced p50/p99 ratio undefined (timeouts)"
            )
            result += (
                f"; one client x{r['unloaded_median_ratio']:.2f}, "
                f"in process x{r['reference_median_ratio']:.2f} (medians)"
            )
        else:
            continue
        if kind in ("a", "b", "b-floor", "c"):
            errors = f"{r['errors']:,}"
            busy = r["generator_cpu_s"] / r["window_s"]
            gen = f"{r['generator_cpu_s']:.2f} s in {r['window_s']:.0f} s ({busy:.0%} of a core)"
            if kind != "b-floor":
                server = f"{r['server_cpu_s']:.1f} s ({r['server_cpu_ms_per_ok']:,.0f} ms/answer)"
        if "target" in r:
            target, met = r["target"], "yes" if r["met"] else "**no**"
        lines.append(
            f"| {kind} | {r['org']} | {result} | {errors} | {target} | {met} | {gen} | {server} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def ratio(values: list[float | None]) -> float | None:
    if any(v is None for v in values) or not values:
        return None
    return max(values) / min(values)


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so the ``finally`` blocks stop every child."""

    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace, procs: Processes) -> list[dict]:
    sizes = QUICK if args.quick else FULL
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    results: list[dict] = []

    def record(kind: str, org: Org, **fields) -> dict:
        entry = {"scenario": kind, "org": org.name, "shape": args.shape, **fields}
        results.append(entry)
        emit(entry)
        return entry

    trained = prepare_trained(work, sizes)
    orgs = []
    if {"a", "b"} & set(args.scenarios):
        orgs.append(("ab", default_org(trained, sizes)))
    if "c" in args.scenarios:
        for reps in sizes.sweep_reps:
            orgs.append(("c", prepare_org(work, reps, sizes.sweep_months, sizes.pool)))

    c_latency: list[dict] = []
    c_unloaded: list[float] = []
    c_reference: list[float] = []
    for group, org in orgs:
        bodies = request_bodies(org, args.shape)
        pool = write_pool(bodies, work / "pools" / f"{org.data.parent.name}-{args.shape}.jsonl")
        sizes_b = [len(json.dumps(b)) for b in bodies]
        log(
            f"{org.name}: {len(bodies)} request bodies ({args.shape}), median "
            f"{statistics.median(sizes_b):,.0f} bytes, max {max(sizes_b):,}"
        )
        ref = in_process_reference(trained, org, bodies, seconds=args.reference_seconds)
        gc.collect()  # let the reference's copy of the organisation go before the server starts
        record("reference", org, **ref)
        if group == "c":
            c_reference.append(ref["median_ms"])
        server = start_server(trained, org, procs, logs, args.start_timeout, args.workers)
        try:
            record(
                "start-up", org, startup_s=round(server.startup_s, 2), rss_mb=round(server.rss_mb())
            )
            unloaded = record("unloaded", org, **check_answers(server, bodies, 5, args.timeout))
            if group == "c":
                c_unloaded.append(unloaded["median_ms"])
            if group == "ab" and "a" in args.scenarios:
                duration = args.duration or sizes.duration_a
                spy = None
                if args.profile:
                    spy_out = work / "profile-a.txt"
                    spy = profile(server, min(args.profile, duration), spy_out, procs)
                record("a", org, **scenario_a(procs, server, pool, logs, duration, args.timeout))
                if spy is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        spy.wait(timeout=60)
                    procs.stop(spy)
                    frames = report_profile(spy_out)
                    if frames is not None:
                        record("profile", org, file=str(spy_out), **frames)
            if group == "ab" and "b" in args.scenarios:
                waited = wait_until_idle(server, args.timeout)
                if waited > 2:
                    log(f"waited {waited:.0f} s for the server to finish earlier requests")
                b = paced(
                    procs,
                    server,
                    pool,
                    logs,
                    rate=args.rate_b,
                    duration=args.duration or sizes.duration_b,
                    timeout=args.timeout,
                    connections=args.connections,
                )
                p99 = b["latency_ms"]["p99"]
                b.update(
                    target=f"p99 < {TARGET_B_P99_MS:g} ms, 0 errors",
                    met=b["errors"] == 0 and p99 is not None and p99 < TARGET_B_P99_MS,
                )
                record("b", org, **b)
            if group == "c":
                c = paced(
                    procs,
                    server,
                    pool,
                    logs,
                    rate=args.rate_c,
                    duration=args.duration or sizes.duration_c,
                    timeout=args.timeout,
                    connections=args.connections,
                )
                c_latency.append(record("c", org, **c)["latency_ms"])
        finally:
            procs.stop(server.process)
        if group == "ab" and "b" in args.scenarios:
            floor = generator_floor(
                procs,
                pool,
                logs,
                rate=args.rate_b,
                duration=min(args.duration or sizes.duration_b, 20.0),
                timeout=args.timeout,
                connections=args.connections,
            )
            record("b-floor", org, **floor)
    if c_latency:
        p50 = ratio([x["p50"] for x in c_latency])
        p99 = ratio([x["p99"] for x in c_latency])
        entry = {
            "scenario": "c-ratio",
            "org": " / ".join(str(r) for r in sizes.sweep_reps) + " reps",
            "shape": args.shape,
            "p50_ratio": None if p50 is None else round(p50, 3),
            "p99_ratio": None if p99 is None else round(p99, 3),
            "unloaded_median_ratio": round(ratio(c_unloaded), 3),
            "reference_median_ratio": round(ratio(c_reference), 3),
            "target": f"<= {TARGET_C_RATIO:g}",
            "met": p50 is not None and p99 is not None and max(p50, p99) <= TARGET_C_RATIO,
        }
        results.append(entry)
        emit(entry)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        default=str(Path(tempfile.gettempdir()) / "spm-ml-serving-bench"),
        help="where the prepared work folders, pools and logs are kept (reused by re-runs)",
    )
    parser.add_argument(
        "--shape", choices=("id", "posted"), default="posted", help="request shape (module doc)"
    )
    parser.add_argument("--scenarios", nargs="+", choices=("a", "b", "c"), default=["a", "b", "c"])
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds of every load run (a 30, b 60, c 20)"
    )
    parser.add_argument("--quick", action="store_true", help="small organisations, 5 s runs")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--rate-b", type=float, default=RATE_B, help="requests/s of (b)")
    parser.add_argument("--rate-c", type=float, default=RATE_C, help="requests/s of (c)")
    parser.add_argument(
        "--connections", type=int, default=64, help="connections of the open-loop generator"
    )
    parser.add_argument("--reference-seconds", type=float, default=15.0)
    parser.add_argument("--start-timeout", type=float, default=900.0, help="seconds to /readyz")
    parser.add_argument(
        "--profile", type=float, default=0.0, help="py-spy the worker for S seconds during (a)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="the service's worker processes (--workers)"
    )
    args = parser.parse_args()

    import serving

    source = Path(serving.__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(source), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    log(
        f"{platform.node()}: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"Python {platform.python_version()}; service from {source} ({commit or 'no git'}); "
        f"wrk: {shutil.which('wrk') or 'not installed'}"
    )
    started = time.perf_counter()
    procs = Processes()
    results: list[dict] = []
    try:
        with stop_on_sigterm():
            results = run(args, procs)
    except KeyboardInterrupt:
        log("interrupted: stopping the server and generators")
        raise SystemExit(130) from None
    except BenchmarkError as err:
        log(f"stopped: {err}")
        raise SystemExit(2) from None
    finally:
        procs.stop_all()
    print()
    print(markdown(results))
    log(f"total {time.perf_counter() - started:.0f} s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
