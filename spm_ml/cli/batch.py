"""``spm-ml batch``: the pre-call run, every open deal and rep scored into files or a database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spm_ml import settings
from spm_ml.cli._common import (
    AsOfOption,
    ScoredDataOption,
    as_of_date,
    console,
    err_console,
    exits_on_error,
    progress_bar,
)
from spm_ml.cli.models import WorkdirOption


@exits_on_error
def batch_command(
    out: Annotated[
        str,
        typer.Option(
            help="A folder (Parquet files and manifest.json) or a SQLAlchemy URL "
            "(tables keyed by as_of and id; postgresql://user@host:port/db works as typed)."
        ),
    ],
    data: ScoredDataOption = None,
    as_of: AsOfOption = None,
    workdir: WorkdirOption = None,
    engine: Annotated[
        str,
        typer.Option(
            help="pandas (this machine), or spark: the deal chunks scored on Apache Spark "
            "(pip install 'spm-ml\\[spark]', Java 17); the same rows either way."
        ),
    ] = "pandas",
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="--engine spark: the cluster's master URL (spark://host:7077, yarn, "
            "k8s://...); default spark-submit's --master, or local[*] (this machine's cores)."
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(help="Continue an interrupted run of the same job: skip written chunks."),
    ] = False,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Open deals per chunk (each written atomically).")
    ] = 5000,
) -> None:
    """Score every open deal (win probability, top drivers, email tone) and every rep (quota
    miss with expected attainment and its 80% interval, attrition risk of top performers) as
    of one date with the champion models, in resumable chunks; write them to --out."""
    from spm_ml.batch.job import BatchOptions, run_batch
    from spm_ml.cli.data import print_problems
    from spm_ml.errors import SchemaError

    # read before anything points MLflow somewhere (which rewrites the variable)
    tracking_uri = settings.users_tracking_uri()
    work = settings.workdir(workdir)
    options = BatchOptions(
        source=data or settings.data_source(work),
        target=out,
        workdir=work,
        as_of=as_of_date(as_of),
        resume=resume,
        chunk_size=chunk_size,
        tracking_uri=tracking_uri,
        engine=engine,
        spark_master=spark_master,
    )
    try:
        with progress_bar() as progress:
            result = run_batch(options, progress)
    except SchemaError as err:
        print_problems(err.problems, show_all=False)
        raise
    manifest = result.manifest
    failed = sum(len(ids) for ids in manifest["failed"].values())
    models = ", ".join(
        f"{name} v{m['version']}" if "version" in m else f"{name} (none)"
        for name, m in manifest["models"].items()
    )
    rows = ", ".join(f"{table} {n:,}" for table, n in manifest["rows"].items())
    console.print(
        f"scored as of {manifest['as_of']} with {models}: {rows} "
        f"({manifest['chunks']['resumed']} chunk(s) resumed) in "
        f"{manifest['timings_s']['total']:.1f} s -> {result.target}"
    )
    if "quota_risk" in manifest["reps"]:
        console.print(f"[yellow]quota risk:[/] {manifest['reps']['quota_risk']}")
    console.print(f"[yellow]forecast:[/] {manifest['forecast']}")
    if failed:
        err_console.print(
            f"[yellow]{failed} deal(s) could not be scored[/]; their ids and errors are in the "
            "manifest's 'failed' list"
        )
    if not _is_url(out):
        console.print(f"manifest: {Path(out) / 'manifest.json'}")
    else:
        console.print("manifest: the batch_runs table, row as_of = " + manifest["as_of"])


def _is_url(target: str) -> bool:
    from spm_ml.data.io import is_sql_url

    return is_sql_url(target)
