"""``spm-ml quickstart`` and ``spm-ml serve``: the main job and the API."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from spm_ml import settings
from spm_ml.cli._common import console, err_console, exits_on_error, progress_bar
from spm_ml.cli.models import print_family_report, print_slices, print_training_summary


@exits_on_error
def quickstart(
    workdir: Annotated[
        Path | None, typer.Option(help="Where everything goes (default ./spm-ml-quickstart).")
    ] = None,
    reps: Annotated[int, typer.Option(min=2, help="Reps in the simulated organisation.")] = 50,
    months: Annotated[int, typer.Option(min=3, help="Months of simulated history.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sentiment: Annotated[
        bool, typer.Option(help="Score email sentiment and use it in the deal model.")
    ] = True,
    backtest: Annotated[
        bool,
        typer.Option(
            help="Back-test the bookings forecast first (spm-ml backtest; 1-3 minutes on the "
            "default organisation), so the example manager page shows the team's record "
            "against past periods; --no-backtest skips it."
        ),
    ] = True,
) -> None:
    """Simulate an organisation, validate it, train and register the deal-win, quota-risk and
    attrition models, score the open deals, run the pre-call batch and write the example
    manager's page."""
    from spm_ml.quickstart import run_quickstart

    work = settings.workdir(workdir)
    with progress_bar() as progress:
        result = run_quickstart(
            work,
            reps=reps,
            months=months,
            seed=seed,
            sentiment=sentiment,
            backtest=backtest,
            progress=progress,
        )
    print_training_summary(result.run.metrics)
    print_slices(result.run.slices)
    for family, run in result.rep_runs.items():
        console.print(f"\n[bold]{family}[/]")
        print_training_summary(run.metrics)
        print_family_report(run.metrics)
    for family, why in result.skipped.items():
        console.print(f"[yellow]{family} not trained:[/] {why}")
    models = "".join(
        f"\n  model:                        {family} version {run.model_version} @{run.alias} "
        f"(run {run.run_id})" + (" [reused]" if run.reused else "")
        for family, run in result.rep_runs.items()
    )
    if result.sentiment_version is not None:
        models += (
            f"\n  model:                        email-sentiment version "
            f"{result.sentiment_version} (the built-in email tone model)"
        )
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    console.print(
        f"\n[bold]Done[/] ({timing}).\n"
        f"  data (9 tables, validated):   {result.data_dir}\n"
        f"  MLflow store:                 {result.tracking_uri}\n"
        f"  model:                        deal-win version {result.run.model_version} "
        f"@{result.run.alias} (run {result.run.run_id})"
        + (" [reused: identical data, configuration and code]" if result.run.reused else "")
        + models
        + "\n"
        f"  deal scores ({result.n_open_deals:,} open deals, scored by version "
        f"{result.scored_by_version}): {result.scores_parquet}\n"
        f"                                {result.scores_csv}\n"
        + (
            f"  pre-call batch (as of {result.batch_as_of:%Y-%m-%d}): {result.batch_dir}\n"
            f"  example manager page ({result.report_manager}): {result.report_page}\n\n"
            f"Manager pages:   spm-ml report --from {result.batch_dir} --all-managers "
            f"--out {work / 'outputs' / 'reports'}\n"
            if result.report_page is not None
            else "\n"
        )
        + f"Start the API:   spm-ml serve --workdir {work}  "
        "(pages: GET /v1/managers/ID/report)\n"
        f"Warnings:        spm-ml warnings --workdir {work} --as-of DATE (inside a quota period)\n"
        f"Browse runs:     mlflow ui --backend-store-uri {result.tracking_uri}"
    )


@exits_on_error
def serve(
    workdir: Annotated[Path | None, typer.Option(help="Work folder with the MLflow store.")] = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes (default $SPM_ML_WORKERS or 1); each holds its own copy "
            "of the model and the organisation's context and uses about one core.",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="The organisation's data source deals and reps are looked up in by id "
            "(default $SPM_ML_DATA or WORKDIR/data).",
        ),
    ] = None,
    report_from: Annotated[
        Path | None,
        typer.Option(
            help="The batch run (spm-ml batch --out DIR) managers' pages are built from, "
            "GET /v1/managers/ID/report (default $SPM_ML_REPORT_FROM or WORKDIR/outputs/batch).",
        ),
    ] = None,
) -> None:
    """Serve the champion models over HTTP (BentoML): deal scores, coaching and what-if,
    rep risk, email sentiment, managers' pages (docs/api.md)."""
    from spm_ml import registry

    work = settings.workdir(workdir)
    registry.use_local_store(work)
    registry.model_uri("deal-win")  # fail here, with a clear message, if nothing is trained
    settings.max_body_bytes()  # and on a bad SPM_ML_MAX_BODY_BYTES, rather than in each worker
    settings.reload_seconds()  # and on a bad SPM_ML_RELOAD_SECONDS
    env = {**os.environ, "SPM_ML_WORKDIR": str(work)}
    if workers is not None:
        env["SPM_ML_WORKERS"] = str(workers)
    if data is not None:
        env["SPM_ML_DATA"] = data
    if report_from is not None:
        env["SPM_ML_REPORT_FROM"] = str(report_from.resolve())
    settings.serving_workers()  # a bad $SPM_ML_WORKERS fails here, not in the server
    _warn_without_tokens(work)
    console.print(f"serving the champion models of {work} on http://{host}:{port}")
    command = server_command(port, host)
    # Replace this process with the server, so signals (Ctrl-C, terminate) reach it directly.
    os.execve(command[0], command, env)


def _warn_without_tokens(work: Path) -> None:
    """Say before start-up that a service without tokens answers 401 to everything."""
    from spm_ml.tokens import TokenStore

    if settings.api_token() or TokenStore(settings.tokens_path(work)).has_active():
        return
    err_console.print(
        "[yellow]no API token yet: every request but /livez, /readyz and /healthz will be "
        f"refused (401). Create one: spm-ml token create --name NAME --role admin "
        f"--workdir {work}[/]",
        highlight=False,
    )


def server_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The ``bentoml serve`` command line for the spm-ml service."""
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:SpmMlService",
        "--port",
        str(port),
        "--host",
        host,
    ]
