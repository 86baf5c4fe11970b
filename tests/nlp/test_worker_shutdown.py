"""Scoring workers stop with their parent: SIGTERM, SIGKILL or an interrupted batch loop.

Each forked worker holds a copy of the model (about 725 MB with spaCy loaded); before this
was fixed, ``kill <pid>`` of ``spm-ml sentiment score`` or ``spm-ml quickstart`` left two of
them running for good.  The CLI tests run the real command on a table large enough to keep
its workers busy for minutes, and watch the process tree with psutil.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from spm_ml.nlp.corpus import training_sentences

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked (POSIX)")


def _emails(n: int, seed: int = 0) -> list[str]:
    """``n`` emails of eight shipped sentences each (about 100 words)."""
    texts, _ = training_sentences()
    rng = random.Random(seed)
    return [" ".join(rng.sample(texts, 8)) for _ in range(n)]


@pytest.fixture(scope="module")
def big_table(tmp_path_factory) -> Path:
    # ~30 s of work for two workers even on a quiet machine: still running when signalled.
    path = tmp_path_factory.mktemp("shutdown") / "emails.parquet"
    pd.DataFrame({"text": _emails(30_000)}).to_parquet(path, index=False)
    return path


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie waiting for a reaper no longer holds memory)."""
    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_until_gone(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while (alive := _alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def _start_scoring(table: Path, tmp_path: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """``spm-ml sentiment score`` with two workers; returns once both workers are scoring."""
    log = (tmp_path / "stderr.txt").open("wb")
    command = [sys.executable, "-m", "spm_ml.cli", "sentiment", "score"]
    command += ["--table", str(table), "--text-col", "text", "--out", str(tmp_path / "out.csv")]
    command += ["--n-process", "2", "--batch-size", "64", "--no-progress"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 240
    while len(workers := parent.children(recursive=True)) < 2:
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.2)
    time.sleep(1.0)  # well into their first batches
    assert proc.poll() is None, "finished before it could be stopped: use a bigger table"
    workers = parent.children(recursive=True)
    assert len(workers) == 2 and all(w.cpu_times().user > 0 for w in workers)
    return proc, workers


@pytest.mark.slow
def test_sigterm_to_the_cli_stops_its_workers(default_model, big_table, tmp_path):
    proc, workers = _start_scoring(big_table, tmp_path)
    proc.send_signal(signal.SIGTERM)  # the parent only, as `kill <pid>` does
    assert proc.wait(timeout=15) == 128 + signal.SIGTERM
    assert _wait_until_gone(workers, 5) == []
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_workers_die_with_a_killed_parent(default_model, big_table, tmp_path):
    """SIGKILL leaves the parent no chance to clean up: the kernel stops the workers."""
    proc, workers = _start_scoring(big_table, tmp_path)
    proc.kill()
    proc.wait(timeout=15)
    assert _wait_until_gone(workers, 5) == []


def test_sigterm_in_process_stops_busy_workers_at_once(default_model):
    """In process, as quickstart and ``train deal-win`` score emails: with the CLI's SIGTERM
    handler, a SIGTERM mid-batch stops the workers without letting them finish the batch."""
    from spm_ml.cli._common import exit_on_sigterm

    me = psutil.Process()
    before = set(me.children(recursive=True))
    workers: list[psutil.Process] = []
    sent: list[float] = []
    done: list[int] = []

    def terminate() -> None:
        workers.extend(set(me.children(recursive=True)) - before)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    exit_on_sigterm()
    timer = threading.Timer(1.5, terminate)
    try:
        timer.start()
        # Two batches of 15,000 emails: several seconds each even for a fast model (about
        # 1,300-2,500 emails/s per process), so both are mid-way at 1.5 s.
        with pytest.raises(SystemExit):
            default_model.score_batches(
                _emails(30_000), batch_size=15_000, n_process=2, on_batch=done.append
            )
        stopped = time.monotonic()
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert done == [], "a batch finished before the signal: use bigger batches"
    assert len(workers) == 2
    assert _alive(workers) == []  # gone when score_batches returns, not merely later
    assert stopped - sent[0] < 1.0  # not after the running batches
