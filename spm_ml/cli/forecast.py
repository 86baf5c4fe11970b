"""``spm-ml forecast`` and ``spm-ml backtest``: the period's bookings range, and how well
such ranges covered what was booked in the past."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from spm_ml import settings
from spm_ml.cli._common import as_of_date, console, exits_on_error, progress_bar
from spm_ml.cli.models import WorkdirOption
from spm_ml.errors import SpmMlError

DataOption = Annotated[
    str | None,
    typer.Option(
        help="Organisation: folder, SQL URL or ADAPTER:PATH (default: the work folder's)."
    ),
]
SimsOption = Annotated[int, typer.Option(min=100, help="Monte Carlo draws.")]
SeedOption = Annotated[int, typer.Option(help="Random seed: the same seed gives the same output.")]


@exits_on_error
def forecast_command(
    period: Annotated[
        str, typer.Option(help="Period to forecast: 2026Q1, 2026-01, 2026 or a date inside one.")
    ],
    data: DataOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Forecast as of this date (default: the data's extraction time)."),
    ] = None,
    sims: SimsOption = 2000,
    seed: SeedOption = 0,
    exclude_deal: Annotated[
        list[str] | None,
        typer.Option(help="What-if: this open deal is lost (repeat for several)."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="table (for people) or json (for tools).")
    ] = "table",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for forecast.csv/.json and the fan chart (default: "
            "WORKDIR/outputs/forecast-PERIOD)."
        ),
    ] = None,
    backtest: Annotated[
        Path | None,
        typer.Option(
            help="Back-test rows (spm-ml backtest's backtest.csv) that widen each level's "
            "range by its record (default: WORKDIR/outputs/backtest.csv, when present)."
        ),
    ] = None,
    workdir: WorkdirOption = None,
) -> None:
    """P10/P50/P90 of the period's bookings per rep, team and company, against quota, split
    into closed won to date, open pipeline and deals not yet created; open deals weighted
    by the deal-win champion of the work folder's MLflow store.  After ``spm-ml backtest``
    each range is also given as wide as the back-test says it must be."""
    from spm_ml.data.io import load_tables
    from spm_ml.forecast.bookings import ForecastConfig
    from spm_ml.forecast.run import forecast_document, run_forecast, write_forecast

    if output_format not in ("table", "json"):
        raise SpmMlError(f"--format must be table or json, not {output_format!r}")
    work = settings.workdir(workdir)
    tables = load_tables(data or settings.data_source(work))
    forecast, version = run_forecast(
        tables,
        work,
        period,
        as_of=as_of_date(as_of),
        config=ForecastConfig(sims=sims, seed=seed),
        exclude=tuple(exclude_deal or ()),
        backtest_rows=backtest or work / "outputs" / "backtest.csv",
    )
    document = forecast_document(forecast, version)
    folder = out or work / "outputs" / f"forecast-{forecast.period.label.replace('..', '_')}"
    paths = write_forecast(forecast, document, folder)
    if output_format == "json":
        typer.echo(json.dumps(document, indent=2))
        return
    _print_forecast(forecast, version, paths)


def _money(value: float) -> str:
    """Money in a narrow column: 740k, 6.67M (the CSV and JSON keep every digit)."""
    if pd.isna(value):
        return "-"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}"


def _print_forecast(forecast, version: str, paths: dict[str, Path]) -> None:
    from rich.table import Table

    summary = forecast.summary()
    console.print(
        f"bookings {forecast.period.label} as of {forecast.as_of:%Y-%m-%d %H:%M} UTC "
        f"({forecast.period.fraction(forecast.as_of):.0%} elapsed; {forecast.config.sims:,} "
        f"draws, seed {forecast.config.seed}; deal-win v{version})"
        + (f"; without deals {', '.join(forecast.excluded)}" if forecast.excluded else "")
    )
    table = Table(title_justify="left")
    table.add_column("level", min_width=7)
    table.add_column("id", min_width=12)
    backtested = "backtested_p10" in summary
    columns = ["quota", "won", "open", "new", "P10", "P50", "P90", "P>=q"]
    for column in columns + (["back-tested 80%"] if backtested else []):
        table.add_column(column, justify="right")
    order = {"company": 0, "team": 1, "rep": 2}
    summary = summary.sort_values(
        ["level", "id"], key=lambda s: s.map(order) if s.name == "level" else s
    )
    for row in summary.itertuples(index=False):
        table.add_row(
            row.level,
            str(row.id),
            _money(row.quota),
            _money(row.closed_won),
            _money(row.open_p50),
            _money(row.new_p50),
            _money(row.total_p10),
            _money(row.total_p50),
            _money(row.total_p90),
            "-" if pd.isna(row.p_reach_quota) else f"{row.p_reach_quota:.0%}",
            *([_backtested(row)] if backtested else []),
        )
    console.print(table)
    console.print(
        "[dim]won: closed won to date (a fact); open, new: P50 of the open pipeline's and of "
        "not-yet-created deals' bookings; P10/P50/P90: worst / likely / best case of the "
        "total; P>=q: chance of reaching quota. A team's or the company's range is read from "
        "the reps' draws summed draw by draw, not from sums of the reps' quantiles.[/]"
    )
    if backtested:
        console.print(
            "[dim]back-tested 80%: the P10-P90 range widened until it would have held 80% of "
            "the actuals of the past periods replayed blind at this point of the period "
            "(spm-ml backtest); '-' where fewer than 3 past periods say how wide.[/]"
        )
    for name, path in paths.items():
        console.print(f"{name}: {path}")


def _backtested(row) -> str:
    if pd.isna(row.backtested_sigma):
        return "-"
    return f"{_money(row.backtested_p10)}-{_money(row.backtested_p90)}"


@exits_on_error
def backtest_command(
    data: DataOption = None,
    metrics_json: Annotated[
        Path | None, typer.Option(help="Write the metrics document (stable keys) here.")
    ] = None,
    sims: SimsOption = 2000,
    seed: SeedOption = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for backtest.csv and backtest.png (default WORKDIR/outputs)."),
    ] = None,
    workdir: WorkdirOption = None,
) -> None:
    """Replay every past period's forecast at 25/50/75% elapsed with only the data and deal
    models of then, against what was booked: 80% interval coverage, P50 MAPE and bias,
    CRPS, beside a stage-weighted pipeline and a run-rate computed in the same run."""
    from spm_ml.data.io import load_tables
    from spm_ml.forecast.backtest import BacktestConfig
    from spm_ml.forecast.bookings import ForecastConfig
    from spm_ml.forecast.run import run_backtest, write_backtest

    work = settings.workdir(workdir)
    tables = load_tables(data or settings.data_source(work))
    config = BacktestConfig(forecast=ForecastConfig(sims=sims, seed=seed))
    with progress_bar() as progress:
        result = run_backtest(tables, work, config=config, progress=progress)
    document = result.metrics()
    paths = write_backtest(result, out or work / "outputs")
    if metrics_json is not None:
        metrics_json.parent.mkdir(parents=True, exist_ok=True)
        metrics_json.write_text(json.dumps(document, indent=2))
        paths["metrics"] = metrics_json
    _print_backtest(document, paths)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _print_backtest(document: dict, paths: dict[str, Path]) -> None:
    from rich.table import Table

    console.print(
        f"back-test over {len(document['periods'])} periods ({', '.join(document['periods'])})"
        + (f"; {len(document['skipped'])} points skipped" if document["skipped"] else "")
    )
    table = Table(title_justify="left")
    for column in ("level", "at", "n", "cover80", "MAPE", "bias", "CRPS/y", "stageMAPE", "rrMAPE"):
        table.add_column(column, justify="left" if column == "level" else "right")
    for level, block in document["by_level"].items():
        for elapsed, scores in block["by_elapsed"].items():
            refs = scores["references"]
            table.add_row(
                level,
                f"{float(elapsed):.0%}",
                str(scores["n"]),
                _percent(scores["coverage_80"]),
                _percent(scores["p50_mape"]),
                _percent(scores["p50_bias"]),
                _percent(scores["crps_relative"]),
                _percent(refs["stage_weighted"]["p50_mape"]),
                _percent(refs["run_rate"]["p50_mape"]),
            )
    console.print(table)
    console.print(
        "[dim]at: share of the period elapsed; cover80: actuals inside P10-P90; MAPE, bias: "
        "of P50 against the actual; CRPS/y: CRPS over the actual; stageMAPE, rrMAPE: the "
        "stage-weighted pipeline's and the run-rate's MAPE on the same rows.[/]"
    )
    for skipped in document["skipped"]:
        console.print(
            f"[dim]skipped {skipped['period']} at {skipped['fraction']:.0%}: {skipped['reason']}[/]"
        )
    for name, path in paths.items():
        console.print(f"{name}: {path}")
