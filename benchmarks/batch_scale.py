"""1,000,000 open deals scored, explained (top 3 drivers) and forecast: the batch at scale.

Issue 17 ("Speed") asks that on a 2-core machine the pandas engine score, explain and
forecast a million open deals in under 2 minutes end to end, with the explained scoring at
least half the throughput of bare LightGBM ``predict`` + ``pred_contrib`` on the same matrix
in the same run.

The input.  Simulating a million open deals is far too slow, so the quickstart's
organisation (``spm-ml quickstart --workdir DIR``: 50 reps, 24 months, email tone scored
and cached) is kept whole, and the deals open at ``--as-of`` are copied until a million are
open: each copy re-keys the deal, its history, its activities and its emails
(``<id>~<copy>``); reps and accounts are shared.  Every copy of a deal therefore has the
features of its original except the owner's open-deal count, which grows with the copies
(the rep and account track records are the organisation's real ones).  Copied emails get the
cached tone of their original (``--batch``: written to the work folder's score cache under
their new ids), as a weekly run finds last week's emails already scored.

Steps timed (seconds, median of ``--repeats``), with the deal-win champion of ``--workdir``:

* ``context``: :class:`~spm_ml.features.context.DealContext` over the whole organisation;
* ``features``: deal features of the open deals, chunk by chunk as the batch job builds
  them (``--chunk-size``), and per row;
* ``explained``: ``CalibratedGBM.score_and_explain`` (probability + top-3 drivers, the
  batch's and the API's path) on the features; ``reference``: bare ``booster.predict`` +
  ``pred_contrib`` on the same matrix (on ``--reference-rows`` rows, rows/s compared);
* ``batch chunks``: :func:`~spm_ml.batch.deal_chunks.score_deal_chunk` over every chunk
  (features, score, drivers, coaching recommendations, output columns);
* ``spark chunks`` (``--spark-chunks``): the same chunks through ``--engine spark``'s
  deal step (a Spark session on ``--spark-master`` started inside the timing, each chunk
  scored by ``score_deal_chunk`` on a worker from its own rows);
* ``forecast``: the period's bookings forecast (:func:`~spm_ml.forecast.run.forecast_with`),
  its open deals weighted by the ``explained`` step's probabilities, as the batch job has
  them (``--check-forecast``: also with the forecast scoring them itself, same rows asserted;
  ``--forecast-only``: scoring them itself);
* ``--batch``: ``spm-ml batch`` end to end (:func:`~spm_ml.batch.job.run_batch`) from a
  Parquet folder of the large organisation, ``--engine`` pandas and/or spark.

Peak memory is the process's resident high-water mark (``getrusage``) and RSS sampled while
each step runs.

Usage::

    spm-ml quickstart --workdir /tmp/qs
    python benchmarks/batch_scale.py --workdir /tmp/qs [--deals 1000000] [--as-of 2025-11-14]
        [--repeats 3] [--reference-rows 200000] [--batch] [--engine pandas spark]

Run on demand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deal_features_speed import RssSampler, peak_rss_mb  # this folder's script: run from it

from spm_ml import registry, settings
from spm_ml.data.io import load_tables
from spm_ml.data.tables import Tables
from spm_ml.features.deals import deal_features, open_deals_at

PER_DEAL = {"deal_history": None, "activities": "activity_id", "emails": "email_id"}
"""Tables whose rows belong to a deal, and the id column each copy re-keys."""


# --------------------------------------------------------------------------- the input


def suffixed(values: pd.Series, copy: np.ndarray) -> pd.Series:
    """``<value>~<copy>`` for each row (Arrow string kernels: no Python object per row)."""
    text = pa.array(values.to_numpy(dtype=object), type=pa.string())
    digits = pc.cast(pa.array(copy), pa.string())
    return pd.Series(pd.array(pc.binary_join_element_wise(text, digits, "~"), dtype="str"))


def replicated(tables: Tables, as_of: pd.Timestamp, n_open: int) -> Tables:
    """``tables`` with the deals open at ``as_of`` copied (re-keyed) until ``n_open`` are."""
    open_ids = open_deals_at(tables, as_of)["deal_id"].to_numpy(dtype=object)
    extra = max(n_open - len(open_ids), 0)
    # copy c (1, 2, ...) of the j-th open deal, for the first `extra` (copy, deal) pairs
    copy_of = 1 + np.arange(extra) // len(open_ids)
    deal_of = np.arange(extra) % len(open_ids)
    position = pd.Index(open_ids)
    frames = {}
    for name in ("deals", *PER_DEAL):
        frame = getattr(tables, name)
        row_deal = position.get_indexer(frame["deal_id"].to_numpy(dtype=object))
        rows = np.flatnonzero(row_deal >= 0)
        rows = rows[np.argsort(row_deal[rows], kind="stable")]  # by open deal, table order
        counts = np.bincount(row_deal[rows], minlength=len(open_ids))
        starts = np.cumsum(counts) - counts
        # every copy of a deal takes all of that deal's rows
        lengths = counts[deal_of]
        offsets = np.repeat(starts[deal_of] - (np.cumsum(lengths) - lengths), lengths)
        take = rows[offsets + np.arange(int(lengths.sum()))]
        copies = np.repeat(copy_of, lengths)
        copied = frame.take(take).reset_index(drop=True)
        copied["deal_id"] = suffixed(copied["deal_id"], copies)
        if PER_DEAL.get(name):
            copied[PER_DEAL[name]] = suffixed(copied[PER_DEAL[name]], copies)
        merged = pd.concat([frame, copied.astype(frame.dtypes.to_dict())], ignore_index=True)
        merged.attrs = frame.attrs
        frames[name] = merged
    return tables.replace(**frames)


# --------------------------------------------------------------------------- measurement


class Steps:
    """Wall seconds of each named step over the repeats, and the RSS peak while it ran."""

    def __init__(self) -> None:
        self.runs: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.rss: dict[str, float] = {}

    def time(self, name: str, work: Callable[[], object]) -> object:
        with RssSampler() as sampler:
            started, cpu = time.perf_counter(), time.process_time()
            result = work()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        self.runs.setdefault(name, []).append(seconds)
        self.cpu.setdefault(name, []).append(cpu)
        self.rss[name] = max(self.rss.get(name, 0.0), sampler.peak / 2**20)
        print(
            f"#   {name}: {seconds:.2f} s, CPU {cpu:.2f} s "
            f"(RSS peak {sampler.peak / 2**20:,.0f} MB)",
            flush=True,
        )
        return result

    def median(self, name: str) -> float:
        return statistics.median(self.runs[name])


def chunked(snapshots: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """The batch job's chunks: open deals sorted by id, ``size`` at a time."""
    ordered = snapshots.sort_values("deal_id", kind="stable")
    return [ordered.iloc[i : i + size] for i in range(0, len(ordered), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--as-of", default="2025-11-14")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--reference-rows", type=int, default=200_000)
    parser.add_argument("--skip-chunks", action="store_true", help="no score_deal_chunk step")
    parser.add_argument("--skip-forecast", action="store_true", help="no forecast step")
    parser.add_argument(
        "--forecast-only", action="store_true", help="context and forecast only (memory)"
    )
    parser.add_argument(
        "--check-forecast",
        action="store_true",
        help="also forecast with the deals scored inside the forecast, and assert the same rows",
    )
    parser.add_argument("--batch", action="store_true", help="also run spm-ml batch end to end")
    parser.add_argument("--engine", nargs="+", default=["pandas"], choices=["pandas", "spark"])
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument(
        "--spark-chunks",
        action="store_true",
        help="also score every chunk through the Spark engine (the batch's --engine spark step)",
    )
    parser.add_argument("--limit", type=float, default=120.0, help="target seconds")
    args = parser.parse_args()

    from spm_ml.batch.deal_chunks import score_deal_chunk
    from spm_ml.forecast.periods import periods_of
    from spm_ml.forecast.run import forecast_with, scorer_of
    from spm_ml.models.deal_win import feature_config_of
    from spm_ml.scoring import DealScorer
    from spm_ml.training.deal_win import prepare_tables

    as_of = pd.Timestamp(args.as_of)
    registry.use_local_store(args.workdir)
    loaded = registry.load_model("deal-win", alias=registry.CHAMPION)
    model = loaded.model
    config = feature_config_of(loaded.record)
    source = load_tables(settings.data_source(args.workdir))
    prepared, _ = prepare_tables(source, config, args.workdir)  # tone from the cache
    started = time.perf_counter()
    big = replicated(prepared, as_of, args.deals)
    snapshots = open_deals_at(big, as_of)
    print(
        f"# {len(snapshots):,} open deals at {as_of:%Y-%m-%d}; "
        + ", ".join(f"{name} {len(frame):,}" for name, frame in big.items())
        + f"; built in {time.perf_counter() - started:.1f} s; {os.cpu_count()} cores",
        flush=True,
    )
    period = next(p for p in periods_of(big) if p.start <= as_of < p.close)
    chunks = chunked(snapshots, args.chunk_size)
    steps = Steps()
    results: dict = {}
    for repeat in range(args.repeats):
        print(f"# repeat {repeat + 1}", flush=True)
        model.__dict__.pop("_tree_shap", None)  # the explainer's tables: built in the run
        scorer = steps.time("context", lambda: DealScorer.for_model(loaded, big))
        if args.forecast_only:
            champion = scorer_of(loaded, big, scorer.context)
            forecast = steps.time("forecast", lambda c=champion: forecast_with(c, period, as_of))
            results["forecast_rows"] = len(forecast.summary())
            del champion, forecast, scorer
            continue
        features = steps.time(
            "features",
            lambda scorer=scorer: pd.concat(
                [deal_features(big, c, config, scorer.context) for c in chunks],
                ignore_index=True,
            ),
        )
        steps.time("explainer tables", model._explainer)
        scored = steps.time("explained", lambda f=features: model.score_and_explain(f, 3))
        # what the forecast weights the pipeline with: the scores just made, by deal
        deal_scores = pd.Series(scored[0], index=features["deal_id"].to_numpy())
        matrix = model._matrix(features.iloc[: args.reference_rows])
        booster, n_iter = model.booster_, model.best_iteration_

        def bare(matrix=matrix, booster=booster, n_iter=n_iter) -> None:
            booster.predict(matrix, raw_score=True, num_iteration=n_iter)
            booster.predict(matrix, pred_contrib=True, num_iteration=n_iter)

        steps.time("reference", bare)
        if repeat == 0:  # the fast explainer gives pred_contrib's numbers on this matrix
            ours = model._contributions(matrix)
            theirs = booster.predict(matrix, pred_contrib=True, num_iteration=n_iter)
            results["max_abs_shap_difference"] = float(np.abs(ours - theirs).max())
        del scored, matrix
        if not args.skip_chunks:
            steps.time(
                "batch chunks",
                lambda scorer=scorer: [
                    score_deal_chunk(
                        scorer.over(scorer.chunk_rows(c)), c, top_k=3, model_version=loaded.version
                    )
                    for c in chunks
                ],
            )
        if args.spark_chunks:
            steps.time(
                "spark chunks",
                lambda scorer=scorer: spark_chunks(scorer, chunks, loaded.version, args),
            )
            if repeat == 0:
                results["spark_pickled_mb"] = spark_payloads(scorer, chunks)
        del features
        if not args.skip_forecast:
            champion = scorer_of(loaded, big, scorer.context)
            forecast = steps.time(
                "forecast",
                lambda c=champion, s=deal_scores: forecast_with(c, period, as_of, deal_scores=s),
            )
            results["forecast_rows"] = len(forecast.summary())
            if args.check_forecast and repeat == 0:  # the same numbers as scoring inside
                alone = steps.time(
                    "forecast, scoring inside", lambda c=champion: forecast_with(c, period, as_of)
                )
                pd.testing.assert_frame_equal(forecast.summary(), alone.summary(), check_exact=True)
                results["forecast_same_as_scoring_inside"] = True
                del alone
            del champion, forecast
        del scorer, deal_scores

    n = len(snapshots)
    if args.forecast_only:
        print(json.dumps({"open_deals": n, "steps_runs_s": steps.runs, "rss_mb": steps.rss}))
        return
    ref_rows = min(args.reference_rows, n)
    explained_rate = n / steps.median("explained")
    reference_rate = ref_rows / steps.median("reference")
    core = ("context", "features", "explainer tables", "explained", "forecast")
    core = [name for name in core if name in steps.runs]
    end_to_end = sum(steps.median(s) for s in core)
    print(f"# {n:,} open deals; chunks of {args.chunk_size:,}; {args.repeats} repeat(s)")
    print("| step | median s | runs (s) | process CPU s (median) | RSS peak MB |")
    print("| --- | ---: | --- | ---: | ---: |")
    for name, runs in steps.runs.items():
        listed = ", ".join(f"{r:.2f}" for r in runs)
        cpu = statistics.median(steps.cpu[name])
        print(
            f"| {name} | {statistics.median(runs):.2f} | {listed} | {cpu:.2f} | "
            f"{steps.rss[name]:,.0f} |"
        )
    print(f"| **{' + '.join(core)}** | **{end_to_end:.2f}** | limit {args.limit:g} s | | |")
    print(f"# features: {steps.median('features') / n * 1e6:.1f} µs per open deal")
    print(
        f"# explained path {explained_rate:,.0f} rows/s; bare predict + pred_contrib "
        f"{reference_rate:,.0f} rows/s on {ref_rows:,} rows; ratio "
        f"{explained_rate / reference_rate:.2f} (target >= 0.5); largest |SHAP| difference "
        f"{results['max_abs_shap_difference']:.1e}"
    )
    print(f"# process peak RSS {peak_rss_mb():,.0f} MB")
    batch = run_batches(args, replicated(source, as_of, args.deals), as_of) if args.batch else {}
    print(
        json.dumps(
            {
                "open_deals": n,
                "rows": {name: len(frame) for name, frame in big.items()},
                "steps_median_s": {k: round(steps.median(k), 3) for k in steps.runs},
                "steps_runs_s": {k: [round(r, 3) for r in v] for k, v in steps.runs.items()},
                "steps_cpu_s": {k: [round(r, 3) for r in v] for k, v in steps.cpu.items()},
                "rss_peak_mb": {k: round(v) for k, v in steps.rss.items()},
                "end_to_end_s": round(end_to_end, 2),
                "features_us_per_deal": round(steps.median("features") / n * 1e6, 1),
                "explained_rows_per_s": round(explained_rate),
                "reference_rows_per_s": round(reference_rate),
                "throughput_ratio": round(explained_rate / reference_rate, 3),
                "peak_rss_process_mb": round(peak_rss_mb()),
                "batch": batch,
                **results,
            }
        )
    )


def spark_chunks(scorer, chunks: list, model_version: str, args: argparse.Namespace) -> int:
    """Every chunk through ``--engine spark``'s deal step (the session started inside the
    timing, as the job starts it), written to a sink that only counts the rows."""
    from spm_ml.batch.spark_engine import spark_deal_scoring

    class Counting:
        rows = 0

        def write_chunk(self, record, frame) -> None:
            self.rows += len(frame)

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    sink = Counting()
    with spark_deal_scoring(args.spark_master, top_k=3) as score:
        score(scorer, model_version, chunks, sink, {}, lambda *a: None)
    assert sink.rows == sum(len(c) for c in chunks), "every deal scored once"
    return sink.rows


def spark_payloads(scorer, chunks: list) -> dict:
    """What the Spark engine ships, pickled (MB): the broadcast scorer, and the median and
    largest chunk of the first ten with its rows (untimed)."""
    import pickle

    sizes = [
        len(pickle.dumps((c, scorer.chunk_rows(c)), pickle.HIGHEST_PROTOCOL)) / 1e6
        for c in chunks[:10]
    ]
    workers = len(pickle.dumps(scorer.for_workers(), pickle.HIGHEST_PROTOCOL)) / 1e6
    return {
        "broadcast": round(workers, 1),
        "chunk_median": round(statistics.median(sizes), 1),
        "chunk_max": round(max(sizes), 1),
    }


def run_batches(args: argparse.Namespace, big: Tables, as_of: pd.Timestamp) -> dict:
    """``spm-ml batch`` on the large organisation ``big`` (as the source holds it: email
    text included), each engine in its own process, from a Parquet folder; copied emails'
    tone is put in a copy of the work folder's score cache under their new ids (same text,
    same model: a weekly run finds last week's emails scored)."""
    import subprocess

    from spm_ml.data.io import write_tables
    from spm_ml.nlp.signals import CACHE_COLUMNS

    root = Path(tempfile.mkdtemp(prefix="batch-scale-"))
    out: dict = {}
    try:
        work = root / "work"
        shutil.copytree(args.workdir, work, ignore=shutil.ignore_patterns("data", "outputs"))
        cache_path = settings.email_scores_path(work)
        cache = pd.read_parquet(cache_path)
        emails = big.emails[["email_id"]].copy()
        emails["original"] = emails["email_id"].str.split("~").str[0]
        copied = emails[emails["email_id"] != emails["original"]]
        extra = cache.merge(copied, left_on="email_id", right_on="original", suffixes=("_", ""))
        extra = extra[list(CACHE_COLUMNS)]
        pd.concat([cache, extra], ignore_index=True).to_parquet(cache_path, index=False)
        data = root / "data"
        write_tables(big, data, format="parquet")
        for engine in args.engine:
            command = [
                sys.executable, "-m", "spm_ml.cli", "batch", "--data", str(data),
                "--workdir", str(work), "--out", str(root / f"out-{engine}"),
                "--as-of", f"{as_of:%Y-%m-%d}", "--engine", engine,
                "--chunk-size", str(args.chunk_size),
            ]  # fmt: skip
            if engine == "spark":
                command += ["--spark-master", args.spark_master]
            env = os.environ | {"SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")}
            started = time.perf_counter()
            done = subprocess.run(
                ["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True
            )
            wall = time.perf_counter() - started
            peak = [ln for ln in done.stderr.splitlines() if "Maximum resident" in ln]
            manifest_path = root / f"out-{engine}" / "manifest.json"
            manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
            out[engine] = {
                "exit": done.returncode,
                "wall_s": round(wall, 1),
                "peak_rss_mb": round(int(peak[0].split()[-1]) / 1024) if peak else None,
                "timings_s": manifest.get("timings_s"),
                "rows": manifest.get("rows"),
            }
            if done.returncode:
                out[engine]["stderr"] = done.stderr[-2000:]
            print(f"# spm-ml batch --engine {engine}: {json.dumps(out[engine])}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
