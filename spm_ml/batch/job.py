"""The pre-call batch job: every open deal and every rep scored as of one date, in chunks
that survive a kill, written to a folder or a database with a manifest.

``spm-ml batch`` calls :func:`run_batch`, which

1. validates the source (the data contract, as ``spm-ml validate`` does) and stops with
   :class:`~spm_ml.errors.SchemaError` before anything is written;
2. loads the ``champion`` of each family from the work folder's MLflow store (deal win is
   required; a missing quota-risk or attrition champion leaves its columns empty, said in
   the manifest);
3. scores open deals chunk by chunk through :class:`~spm_ml.scoring.DealScorer` (the API's
   scorer) and the reps through the early warnings' functions: one scoring path; with
   ``engine="spark"`` the same chunks go through the same function on Apache Spark
   (:mod:`spm_ml.batch.spark_engine`), everything else staying as it is;
4. draws the bookings forecast of the period open at the as-of (``spm-ml forecast``'s
   function, :mod:`spm_ml.forecast`, with the deal model this job scores with): P10/P50/P90
   per rep, team and company in the ``forecast`` table;
5. writes each chunk atomically (:mod:`spm_ml.batch.sinks`), so a killed job re-run with
   ``resume`` skips what was written and ends with exactly the rows of an uninterrupted
   run; then publishes all of it at once with ``manifest.json`` (as-of, models and
   versions, input digests, row counts, failed ids, timings).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from spm_ml import registry, settings
from spm_ml.batch.deal_chunks import conform, score_deal_chunk
from spm_ml.batch.page_facts import backtest_record, model_facts, period_facts
from spm_ml.batch.rep_coaching import COACHING_COLUMNS, rep_coaching_rows
from spm_ml.batch.rep_risk import REP_COLUMNS, rep_risk_rows
from spm_ml.batch.sinks import ChunkRecord, JobState, Sink, open_sink
from spm_ml.data.problems import errors_only
from spm_ml.data.tables import Tables
from spm_ml.errors import ModelNotFoundError, SchemaError, SpmMlError

if TYPE_CHECKING:
    from spm_ml.scoring import DealScorer

logger = logging.getLogger(__name__)

FAMILIES = ("deal-win", "quota-risk", "attrition")
DEFAULT_CHUNK_SIZE = 5000
"""Open deals per chunk: a few seconds of work each, so a kill loses little."""
TOP_K = 3
ENGINES = ("pandas", "spark")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BatchOptions:
    """What to score, as of when, with which models, and where the rows go."""

    source: str
    target: str
    workdir: Path
    as_of: pd.Timestamp | None = None
    """Default: the data's extraction time."""
    resume: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE
    tracking_uri: str | None = None
    """An MLflow tracking server the user named (``$MLFLOW_TRACKING_URI``); else the work
    folder's store."""
    engine: str = "pandas"
    spark_master: str | None = None
    """``--engine spark``: where Spark runs (:mod:`spm_ml.batch.spark_engine`)."""


@dataclass
class BatchResult:
    manifest: dict
    target: str


def run_batch(options: BatchOptions, progress: Progress | None = None) -> BatchResult:
    """Run the batch job (see the module docstring) and return its manifest."""
    from spm_ml.features.deals import open_deals_at
    from spm_ml.models.deal_win import feature_config_of
    from spm_ml.scoring import DealScorer
    from spm_ml.training.deal_win import prepare_tables
    from spm_ml.training.family import table_digests

    progress = progress or (lambda stage, done, total: None)
    clock = _Clock()
    if options.engine not in ENGINES:
        raise SpmMlError(f"--engine must be one of {', '.join(ENGINES)}, not {options.engine!r}")
    if options.spark_master and options.engine != "spark":
        raise SpmMlError("--spark-master is for --engine spark; add --engine spark or drop it")
    if options.engine == "spark":
        from spm_ml.batch.spark_engine import require_pyspark

        require_pyspark()
    if options.chunk_size < 1:
        raise SpmMlError(f"--chunk-size must be at least 1, not {options.chunk_size}")
    tables, warnings = validated_source(options.source)
    as_of = batch_as_of(tables, options.as_of)
    clock.lap("validate")

    sink = open_sink(options.target)
    sink.check()
    models, missing = load_champions(options.workdir, options.tracking_uri)
    clock.lap("load models")

    deal_model = models["deal-win"]
    prepared, _ = prepare_tables(
        tables, feature_config_of(deal_model.record), options.workdir, progress
    )
    scorer = DealScorer.for_model(deal_model, prepared)
    clock.lap("email sentiment and context")

    open_deals = open_deals_at(prepared, as_of).sort_values("deal_id", kind="stable")
    chunks = [
        open_deals.iloc[i : i + options.chunk_size]
        for i in range(0, max(len(open_deals), 1), options.chunk_size)
    ]
    per_table = table_digests(tables)  # the job's identity and the manifest's, hashed once
    state = job_state(tables, as_of, models, options.chunk_size, per_table)
    done = sink.start(state, options.resume)
    records = list(done.values())
    if done:
        logger.info("resuming: %d chunk(s) already written to %s", len(done), sink.description)

    seen = ScoresSeen(sink)
    with deal_engine(options) as score_chunks:
        if options.engine == "spark":
            clock.lap("spark start")
        records += score_chunks(scorer, deal_model.version, chunks, seen, done, progress)
        clock.lap("deal scores")
    deal_scores = seen.scores()
    records += score_reps(
        tables, as_of, models, scorer, options.workdir, sink, done, deal_scores=deal_scores
    )
    progress("rep risk", 1, 1)
    clock.lap("rep risk")

    forecast_records, forecast_status = period_forecast(
        prepared, as_of, deal_model, scorer, sink, done, deal_scores
    )
    records += forecast_records
    clock.lap("forecast")
    page = page_manifest(prepared, as_of, models, options.workdir)
    clock.lap("page facts")
    manifest = build_manifest(
        options,
        sink,
        state=state,
        tables=tables,
        models=models,
        missing=missing,
        records=records,
        resumed=len(done),
        open_deals=len(open_deals),
        validation_warnings=len(warnings),
        forecast=forecast_status,
        page=page,
        timings=clock.rounded(),
        table_digests=per_table,
    )
    sink.commit(records, manifest)
    clock.lap("publish")
    manifest["timings_s"] = clock.rounded()  # the publish step too (the stored one lacks it)
    return BatchResult(manifest, sink.description)


class ScoresSeen:
    """``sink`` (written through unchanged), keeping the probability of each deal-score row
    that passes: the forecast weights the same open deals with them instead of featurising
    and scoring them again (a million deals' features cost a minute).  Chunks written by an
    earlier run (``--resume``) do not pass: the forecast scores those deals itself, with the
    same model and the same numbers."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._parts: list[pd.DataFrame] = []

    def __getattr__(self, name: str):
        return getattr(self.sink, name)

    def write_chunk(self, record: ChunkRecord, rows: pd.DataFrame) -> None:
        if record.table == "deal_scores" and len(rows):
            self._parts.append(rows[["deal_id", "probability"]])
        self.sink.write_chunk(record, rows)

    def scores(self) -> pd.Series | None:
        """Probability by ``deal_id`` of every deal scored in this run (None: none was)."""
        if not self._parts:
            return None
        rows = pd.concat(self._parts, ignore_index=True)
        return pd.Series(
            rows["probability"].to_numpy(dtype=np.float64),
            index=rows["deal_id"].to_numpy(dtype=object),
        )


def deal_engine(options: BatchOptions) -> AbstractContextManager[Callable[..., list[ChunkRecord]]]:
    """What scores the deal chunks: :func:`score_deals` here, or the same chunks through the
    same function on Spark (:mod:`spm_ml.batch.spark_engine`); the rest of the job is one."""
    if options.engine == "spark":
        from spm_ml.batch.spark_engine import spark_deal_scoring

        return spark_deal_scoring(options.spark_master, top_k=TOP_K)
    return nullcontext(score_deals)


def score_deals(
    scorer: DealScorer,
    model_version: str,
    chunks: list[pd.DataFrame],
    sink: Sink,
    done: dict[tuple[str, int], ChunkRecord],
    progress: Progress,
) -> list[ChunkRecord]:
    """Score and write each chunk of open deals not ``done`` yet; their records."""
    records = []
    for i, snapshots in enumerate(chunks):
        if ("deal_scores", i) not in done:
            started = time.perf_counter()
            # the chunk scored from its own rows (as a Spark worker scores it): what it reads
            # of the deals and their history costs the chunk's size, not the organisation's
            own = scorer.over(scorer.chunk_rows(snapshots))
            rows, failed = score_deal_chunk(
                own, snapshots, top_k=TOP_K, model_version=model_version
            )
            seconds = round(time.perf_counter() - started, 3)
            record = ChunkRecord("deal_scores", i, len(rows), failed, seconds)
            sink.write_chunk(record, rows)
            records.append(record)
        progress("deal chunks", i + 1, len(chunks))
    return records


def score_reps(
    tables: Tables,
    as_of: pd.Timestamp,
    models: dict,
    scorer: DealScorer,
    workdir: Path,
    sink: Sink,
    done: dict[tuple[str, int], ChunkRecord],
    deal_scores: pd.Series | None = None,
) -> list[ChunkRecord]:
    """Score and write the reps (one chunk: a few hundred rows) unless ``done``; their
    pipelines weighted by ``deal_scores`` (this run's deal scores, by ``deal_id``) where
    those have them."""
    if ("rep_risk", 0) in done:
        return []
    started = time.perf_counter()
    context = scorer.context
    rows = rep_risk_rows(tables, as_of, models, context, workdir, deal_scores=deal_scores)
    coaching = rep_coaching_rows(tables, as_of, models, context, workdir, deal_scores)
    rows = conform(rows.merge(coaching, on="rep_id", how="left"), REP_COLUMNS | COACHING_COLUMNS)
    facts = {
        "quota_scored": int(rows["p_miss"].notna().sum()),
        "attrition_scored": int(rows["attrition_probability"].notna().sum()),
    }
    seconds = round(time.perf_counter() - started, 3)
    record = ChunkRecord("rep_risk", 0, len(rows), [], seconds, facts)
    sink.write_chunk(record, rows)
    return [record]


def validated_source(source: str):
    """The source's tables, validated against the data contract (``spm-ml validate``'s
    checks); :class:`SchemaError` listing every error otherwise.  Returns the tables and
    the warnings (reported, the data is still used)."""
    from spm_ml.data.io import check_source

    tables, problems = check_source(source)
    errors = errors_only(problems)
    if errors or tables is None:
        first = f"; first: {errors[0]}" if errors else ""
        raise SchemaError(
            f"{source}: {len(errors)} problem(s) break the data contract{first}; "
            "nothing was written",
            problems,
        )
    return tables, [p for p in problems if p.severity != "error"]


def batch_as_of(tables: Tables, as_of: pd.Timestamp | None) -> pd.Timestamp:
    """``as_of``, or the data's extraction time; never after it (the data cannot tell)."""
    from spm_ml.features.snapshots import extraction_time

    extracted = extraction_time(tables)
    if as_of is None:
        return extracted
    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is not None:  # the data's times are naive UTC
        as_of = as_of.tz_convert("UTC").tz_localize(None)
    if as_of > extracted:
        raise SpmMlError(
            f"--as-of {as_of.isoformat()} is after the data's extraction ({extracted.isoformat()}):"
            " nothing after it is known; pass an earlier date or newer data"
        )
    return as_of


def load_champions(
    workdir: Path, tracking_uri: str | None = None
) -> tuple[dict[str, registry.LoadedModel | None], dict[str, str]]:
    """Each family's champion (``None`` where there is none, with why); deal win is
    required, since every other score reads its pipeline probabilities."""
    uri = tracking_uri or settings.tracking_uri(workdir)
    if settings.is_local_store(uri, workdir) and not (workdir / "mlflow.db").exists():
        raise ModelNotFoundError(
            f"no MLflow store in {workdir} (no mlflow.db): train the models first "
            "(spm-ml quickstart --workdir DIR) or pass --workdir"
        )
    registry.use_local_store(workdir, tracking_uri)
    models: dict[str, registry.LoadedModel | None] = {}
    missing: dict[str, str] = {}
    for family in FAMILIES:
        try:
            models[family] = registry.load_model(family)
        except ModelNotFoundError as err:
            if family == "deal-win":
                raise
            models[family], missing[family] = None, str(err)
    return models, missing


def job_state(
    tables: Tables,
    as_of: pd.Timestamp,
    models: dict,
    chunk_size: int,
    per_table: dict[str, str] | None = None,
) -> JobState:
    """The job's identity: the same inputs, models, chunking and code resume each other.
    ``per_table``: the tables' digests (:func:`~spm_ml.training.family.table_digests`),
    when the caller keeps them for the manifest."""
    from spm_ml import __version__
    from spm_ml.models.record import digest
    from spm_ml.training.family import tables_digest

    parts = {
        "as_of": as_of.isoformat(),
        "inputs": tables_digest(tables, per_table),
        "models": {f: None if m is None else m.version for f, m in models.items()},
        "chunk_size": chunk_size,
        "top_k": TOP_K,
        "code": registry.git_commit() or __version__,
    }
    return JobState(as_of, digest(parts), parts)


def period_forecast(
    prepared: Tables,
    as_of: pd.Timestamp,
    deal_model,
    scorer: DealScorer,
    sink: Sink,
    done: dict[tuple[str, int], ChunkRecord],
    deal_scores: pd.Series | None = None,
) -> tuple[list[ChunkRecord], str]:
    """Write the ``forecast`` table: P10/P50/P90 of the bookings of the period open at
    ``as_of``, per rep, team and company (``spm-ml forecast``'s draws, with the deal model
    this job scores with, and the probabilities it wrote, ``deal_scores``, where it has
    them); its records and a one-line status for the manifest."""
    from spm_ml.forecast.periods import periods_of
    from spm_ml.forecast.run import forecast_with, scorer_of

    open_now = [p for p in periods_of(prepared) if p.start <= as_of < p.close]
    if not open_now:
        return [], (
            f"not written: no period is open at {as_of:%Y-%m-%d} (the periods of the quota "
            "table, or calendar quarters without one)"
        )
    period = open_now[-1]
    if ("forecast", 0) in done:
        return [], f"written: {period.label}"
    started = time.perf_counter()
    champion = scorer_of(deal_model, prepared, scorer.context)
    summary = forecast_with(champion, period, as_of, deal_scores=deal_scores).summary()
    rows = summary.assign(
        forecast_id=summary["level"] + ":" + summary["id"].astype(str),
        as_of=as_of,
        period=period.label,
        fraction_elapsed=round(period.fraction(as_of), 4),
    )
    rows = rows[["forecast_id", *[c for c in rows.columns if c != "forecast_id"]]]
    seconds = round(time.perf_counter() - started, 3)
    record = ChunkRecord("forecast", 0, len(rows), [], seconds, {"period": period.label})
    sink.write_chunk(record, rows.reset_index(drop=True))
    return [record], f"written: {period.label}"


def page_manifest(prepared: Tables, as_of: pd.Timestamp, models: dict, workdir: Path) -> dict:
    """What the manager's page reads from the manifest (:mod:`spm_ml.batch.page_facts`):
    ``model_facts``, ``forecast_period`` (``None`` when no period is open) and
    ``backtest`` (the team ranges' record, from ``WORKDIR/outputs/backtest.csv``)."""
    from spm_ml.forecast.periods import periods_of

    open_now = [p for p in periods_of(prepared) if p.start <= as_of < p.close]
    period = open_now[-1] if open_now else None
    fraction = period.fraction(as_of) if period is not None else None
    return {
        "model_facts": model_facts(models),
        "forecast_period": period_facts(period) if period is not None else None,
        "backtest": backtest_record(workdir / "outputs" / "backtest.csv", as_of, fraction),
    }


def build_manifest(options: BatchOptions, sink: Sink, **facts) -> dict:
    """The run's manifest (``manifest.json`` or a ``batch_runs`` row)."""
    tables: Tables = facts["tables"]
    per_table: dict[str, str] = facts["table_digests"]
    records: list[ChunkRecord] = facts["records"]
    models, missing = facts["models"], facts["missing"]
    state: JobState = facts["state"]
    by_table: dict[str, list[ChunkRecord]] = {}
    for record in sorted(records, key=lambda r: r.key):
        by_table.setdefault(record.table, []).append(record)
    reps = by_table.get("rep_risk", [])
    extracted = tables.extracted_at
    return {
        "as_of": state.as_of.isoformat(),
        "engine": options.engine,
        "source": _redacted(options.source),
        "target": sink.description,
        "finished_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "models": {
            family: (
                {
                    "name": family,
                    "alias": registry.CHAMPION,
                    "version": m.version,
                    "run_id": m.run_id,
                }
                if m is not None
                else {"name": family, "missing": missing[family]}
            )
            for family, m in models.items()
        },
        "inputs": {
            "digest": state.parts["inputs"],
            "extracted_at": extracted and extracted.isoformat(),
            "validation_warnings": facts["validation_warnings"],
            "tables": {
                name: {"rows": len(frame), "digest": per_table[name]}
                for name, frame in tables.items()
            },
        },
        "rows": {table: sum(r.rows for r in chunks) for table, chunks in by_table.items()},
        "open_deals": facts["open_deals"],
        "failed": {
            table: [f for r in chunks for f in r.failed] for table, chunks in by_table.items()
        },
        "chunks": {
            "size": options.chunk_size,
            "written": {table: len(chunks) for table, chunks in by_table.items()},
            "resumed": facts["resumed"],
        },
        "reps": _rep_note(reps),
        "forecast": facts["forecast"],
        **facts["page"],
        "timings_s": facts["timings"],
        "chunk_seconds": {
            table: round(sum(r.seconds for r in chunks), 3) for table, chunks in by_table.items()
        },
        "fingerprint": state.fingerprint,
    }


def _rep_note(reps: list[ChunkRecord]) -> dict:
    """How many reps got each score; why quota risk is empty when no period is open."""
    facts = reps[0].facts if reps else {}
    note = {
        "reps_with_quota_risk": facts.get("quota_scored", 0),
        "top_performers_with_attrition_risk": facts.get("attrition_scored", 0),
    }
    if not note["reps_with_quota_risk"]:
        note["quota_risk"] = (
            "no rep has a quota period open at as_of (a period that has closed is a fact, "
            "not a forecast; the simulated data ends exactly at a quarter's close): rep_risk "
            "rows say so in quota_status; pass --as-of a date inside a period"
        )
    return note


def _redacted(source: str) -> str:
    from spm_ml.data.io import is_sql_url

    if is_sql_url(source):
        from spm_ml.batch.sql_sink import redact

        return redact(source)
    return source


class _Clock:
    """Seconds per step of this process."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._start = self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps.pop("total", None)
        self.laps[name] = now - self._last
        self.laps["total"] = now - self._start
        self._last = now

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.laps.items()}
