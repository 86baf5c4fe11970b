"""``spm-ml batch --engine spark``: the open deals' chunks scored on Apache Spark.

The job itself is :func:`spm_ml.batch.job.run_batch` whichever the engine: the driver
validates the source, loads the champions, builds the organisation's context once, scores
the reps, draws the forecast and writes every chunk through the same sink, manifest and
resume logic.  Spark does the per-chunk work, and only that:

* each pending chunk of open-deal snapshots (the pandas engine's chunks, same size, same
  numbers) is one partition of a small DataFrame, sent with its deals' own rows (deal,
  history, activities, emails: :meth:`~spm_ml.scoring.DealScorer.chunk_rows`; 24-45 MB
  pickled for 5,000 of the benchmark's deals);
* ``mapInPandas`` calls :func:`~spm_ml.batch.deal_chunks.score_deal_chunk` (the pandas
  engine's function, so the rows are the same rows) on each, with the driver's
  :class:`~spm_ml.scoring.DealScorer` without the per-deal tables (the champion model and
  the organisation's indexes: :meth:`~spm_ml.scoring.DealScorer.for_workers`) sent once as
  a broadcast variable and unpickled once per Python worker, put over the chunk's rows.
  The whole scorer pickled to 1 GB per 100,000 open deals; a worker now holds the
  organisation's indexes and one chunk;
* a chunk comes back as the pickled pandas frame ``score_deal_chunk`` returned (exact
  dtypes, no Spark type conversion), and the driver writes it atomically as it arrives.

Chunks run in waves of twice the cluster's parallelism: a wave is one Spark job whose tasks
Spark spreads over the executors; the driver holds at most a wave's rows, and a killed job
loses at most a wave (``--resume`` skips what was written, as with pandas).  A pandas run
and a Spark run of the same job have the same fingerprint, so either resumes the other.

The Monte Carlo forecast stays on the driver: :func:`~spm_ml.forecast.monte_carlo.draw_pipeline`
reads one stream of uniforms for all deals in order and team and company ranges sum the
reps' draws draw by draw, so draws split by partition would be other numbers.  It takes
seconds; the deal chunks are the work.

A cluster needs Java 17 on every node, the same Python (3.11) on driver and workers, and the
``spm-ml`` wheel with its ``[spark]`` extra installed in the workers' Python
(``spark.pyspark.python`` or ``PYSPARK_PYTHON``); the MLflow store is read by the driver
only.  In local mode the workers run this very interpreter.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from pickle import HIGHEST_PROTOCOL as HIGHEST
from typing import TYPE_CHECKING

import pandas as pd

from spm_ml.batch.deal_chunks import score_deal_chunk
from spm_ml.batch.sinks import ChunkRecord, Sink
from spm_ml.errors import SpmMlError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spm_ml.scoring import DealScorer

logger = logging.getLogger(__name__)

RESULT_SCHEMA = "chunk long, rows binary, failed string, error string, seconds double"
"""One row per chunk: its pickled rows, the deals that failed (JSON), or the error that
failed the whole chunk (the pandas engine's :class:`SpmMlError`), and its seconds."""
WAVE_PER_CORE = 2
INSTALL = "pip install 'spm-ml[spark]'"
LOCAL_DRIVER_MEMORY = "4g"
"""The JVM heap of a local-mode session this engine starts (``SPARK_DRIVER_MEMORY``
overrides it; a cluster's driver and executors take their own settings)."""


def require_pyspark() -> None:
    """Fail early, before any work, when the ``[spark]`` extra is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError as err:
        raise SpmMlError(
            f"--engine spark needs pyspark ({INSTALL}) and Java 17; "
            "--engine pandas (the default) needs neither"
        ) from err


@contextlib.contextmanager
def spark_deal_scoring(
    master: str | None = None, *, top_k: int
) -> Iterator[Callable[..., list[ChunkRecord]]]:
    """A function scoring the deal chunks on Spark (:func:`score_deals_spark`'s signature
    without the session), valid inside the ``with``.  Uses the active SparkSession if there
    is one (a notebook, the tests); else starts one on ``master`` (default: ``spark-submit``'s
    ``--master``, or ``local[*]``, this machine's cores) and stops it on leaving."""
    spark, started = _session(master)
    try:
        yield lambda *args: score_deals_spark(spark, *args, top_k=top_k)
    finally:
        if started:
            spark.stop()


def score_deals_spark(
    spark: SparkSession,
    scorer: DealScorer,
    model_version: str,
    chunks: list[pd.DataFrame],
    sink: Sink,
    done: dict[tuple[str, int], ChunkRecord],
    progress: Callable[[str, int, int], None],
    *,
    top_k: int,
) -> list[ChunkRecord]:
    """Score and write each chunk not ``done`` yet, on Spark; their records (the pandas
    engine's :func:`~spm_ml.batch.job.score_deals`, chunk for chunk)."""
    pending = [i for i in range(len(chunks)) if ("deal_scores", i) not in done]
    finished = len(chunks) - len(pending)
    progress("deal chunks", finished, len(chunks))
    if not pending:
        return []
    context = spark.sparkContext
    started = time.perf_counter()
    # the model and the organisation's indexes; each chunk travels with its own rows
    shared = context.broadcast(scorer.for_workers())
    logger.info("scorer broadcast to the executors in %.1f s", time.perf_counter() - started)
    score = _partition_scorer(shared, top_k, model_version)
    wave = max(1, WAVE_PER_CORE * context.defaultParallelism)
    records = []
    try:
        for first in range(0, len(pending), wave):
            numbers = pending[first : first + wave]
            payloads = [
                (i, pickle.dumps((chunks[i], scorer.chunk_rows(chunks[i])), HIGHEST))
                for i in numbers
            ]
            # one chunk per partition: Spark balances the chunks over the executors' cores
            frame = spark.createDataFrame(
                context.parallelize(payloads, len(payloads)), "chunk long, snapshots binary"
            )
            for result in frame.mapInPandas(score, RESULT_SCHEMA).collect():
                if result["error"] is not None:
                    raise SpmMlError(result["error"])
                rows = pickle.loads(result["rows"])
                failed = json.loads(result["failed"])
                record = ChunkRecord(
                    "deal_scores", result["chunk"], len(rows), failed, result["seconds"]
                )
                sink.write_chunk(record, rows)
                records.append(record)
                finished += 1
                progress("deal chunks", finished, len(chunks))
    finally:
        shared.destroy()
    return records


def _partition_scorer(shared, top_k: int, model_version: str):
    """The ``mapInPandas`` function: each chunk of the partition through
    :func:`score_deal_chunk` with the broadcast scorer (unpickled once per worker)."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for chunk, payload in zip(batch["chunk"], batch["snapshots"], strict=True):
                started = time.perf_counter()
                rows, failed, error = None, [], None
                try:
                    snapshots, own_rows = pickle.loads(payload)
                    scored, failed = score_deal_chunk(
                        shared.value.over(own_rows),
                        snapshots,
                        top_k=top_k,
                        model_version=model_version,
                    )
                    rows = pickle.dumps(scored, pickle.HIGHEST_PROTOCOL)
                except SpmMlError as err:  # the whole chunk failed: the job stops, as in pandas
                    error = str(err)
                yield pd.DataFrame(
                    {
                        "chunk": [int(chunk)],
                        "rows": [rows],
                        "failed": [json.dumps(failed)],
                        "error": [error],
                        "seconds": [round(time.perf_counter() - started, 3)],
                    }
                )

    return score


def _session(master: str | None) -> tuple[SparkSession, bool]:
    """The active SparkSession (``False``: not ours to stop), or a new one on ``master``."""
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if master and master != running:
            logger.warning("a SparkSession on %s is running: using it, not %s", running, master)
        return active, False
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = "local[*]"  # not under spark-submit, which says where to run
    # the job draws its own progress bars
    builder = SparkSession.builder.appName("spm-ml batch").config(
        "spark.ui.showConsoleProgress", "false"
    )
    if master:
        builder = builder.master(master)
    if master and master.startswith("local"):
        if not _python_configured():
            # local workers run this interpreter (the one with spm-ml), not whatever
            # python3 is first on the PATH
            builder = builder.config("spark.pyspark.python", sys.executable)
        if not os.environ.get("SPARK_DRIVER_MEMORY"):
            # in local mode the driver's JVM is the executor too: every wave's chunks (tens
            # of MB each) pass through its heap; Spark's 1 GB default ran out at a million
            builder = builder.config("spark.driver.memory", LOCAL_DRIVER_MEMORY)
    try:
        return builder.getOrCreate(), True
    except Exception as err:  # Py4J's own errors: Java missing or the master unreachable
        raise SpmMlError(
            f"could not start Spark on {master or 'its default master'}: {err}. "
            "--engine spark needs Java 17 (JAVA_HOME or java on the PATH) and, for a "
            "cluster, a reachable --spark-master URL; --engine pandas needs neither"
        ) from err


def _python_configured() -> bool:
    return bool(os.environ.get("PYSPARK_PYTHON"))
