"""``spm-ml generate`` and ``spm-ml validate``: making and checking a sales organisation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from spm_ml.cli._common import EXIT_BAD_INPUT, console, err_console, exits_on_error, progress_bar
from spm_ml.data.problems import Problem, errors_only, problems_frame

SHOWN_PER_CHECK = 100


@exits_on_error
def generate(
    out: Annotated[Path, typer.Option(help="Folder to write the nine tables into.")],
    reps: Annotated[int, typer.Option(min=2, help="Number of sales reps (managers extra).")] = 50,
    months: Annotated[int, typer.Option(min=1, help="Months of history.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 0,
    format: Annotated[str, typer.Option(help="parquet or csv.")] = "parquet",
    with_truth: Annotated[
        bool, typer.Option(help="Also write the latent ground truth to OUT/_truth/.")
    ] = False,
) -> None:
    """Write a simulated sales organisation (all nine contract tables) to OUT."""
    from spm_ml.data.io import write_tables
    from spm_ml.data.simulate import SimulationConfig, simulate

    started = time.perf_counter()
    with progress_bar() as progress:
        org = simulate(SimulationConfig(n_reps=reps, months=months, seed=seed), progress=progress)
    written = write_tables(org.tables, out, format=format)
    if with_truth:
        truth_dir = out / "_truth"
        truth_dir.mkdir(parents=True, exist_ok=True)
        for name, frame in org.truth.items():
            frame.to_parquet(truth_dir / f"{name}.parquet", index=False)
    elapsed = time.perf_counter() - started
    summary = ", ".join(f"{name} {len(frame):,}" for name, frame in org.tables.items())
    console.print(f"wrote {len(written)} tables to {out} in {elapsed:.1f} s: {summary}")


@exits_on_error
def validate(
    source: Annotated[
        str, typer.Argument(help="Folder of CSV/Parquet files, SQLAlchemy URL, or ADAPTER:PATH.")
    ],
    as_of: Annotated[
        str | None,
        typer.Option(help="The data's extraction time; nothing may be dated after it."),
    ] = None,
    all: Annotated[bool, typer.Option("--all", help="Print every problem, however many.")] = False,
    problems_out: Annotated[
        Path | None, typer.Option(help="Also write every problem to this CSV file.")
    ] = None,
) -> None:
    """Check SOURCE against the data contract; exit 2 listing every problem if it breaks it."""
    from spm_ml.data.io import check_source
    from spm_ml.data.quality import quality_report

    tables, problems = check_source(source, as_of=None if as_of is None else pd.Timestamp(as_of))
    if problems_out is not None:
        problems_frame(problems).to_csv(problems_out, index=False)
    if problems:
        print_problems(problems, show_all=all)
    errors = errors_only(problems)
    if errors or tables is None:
        err_console.print(
            f"[bold red]{len(errors):,} error(s)[/]: {source} does not meet the data contract"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    report = quality_report(tables)
    view = Table(title=f"data quality: {source} (as of {tables.extracted_at})")
    for column in report.columns:
        view.add_column(column, justify="right" if column == "rows" else "left")
    for row in report.itertuples(index=False):
        view.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row])
    console.print(view)
    console.print(f"[green]valid[/]: {source} meets the data contract")


def print_problems(problems: list[Problem], *, show_all: bool) -> None:
    """One line per problem, ``severity table | row | column | kind: message``: easy to grep."""
    shown: dict[tuple[str, str, str], int] = {}
    hidden = 0
    for p in problems:
        check = (p.table, p.column, p.kind)
        shown[check] = shown.get(check, 0) + 1
        if not show_all and shown[check] > SHOWN_PER_CHECK:
            hidden += 1
            continue
        colour = "red" if p.severity == "error" else "yellow"
        err_console.print(f"[{colour}]{p.severity:<7}[/] {p}", highlight=False, markup=True)
    if hidden:
        err_console.print(
            f"{hidden:,} more problems not shown; use --all or --problems-out FILE to see them"
        )
