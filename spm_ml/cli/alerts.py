"""``spm-ml warnings``: early warnings per manager, as a terminal table or JSON."""

from __future__ import annotations

import json
from typing import Annotated

import pandas as pd
import typer

from spm_ml import settings
from spm_ml.cli._common import AsOfOption, ScoredDataOption, as_of_date, console, exits_on_error
from spm_ml.cli.models import WorkdirOption


@exits_on_error
def warnings_command(
    data: ScoredDataOption = None,
    as_of: AsOfOption = None,
    manager: Annotated[
        str | None, typer.Option(help="Only this manager's reps (a reps.rep_id).")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="table (for people) or json (for tools).")
    ] = "table",
    show_all: Annotated[
        bool, typer.Option("--all", help="List every rep scored, not only those warned.")
    ] = False,
    coaching: Annotated[
        bool,
        typer.Option(
            "--coaching",
            help="Also each listed rep's pipeline gap to 80% P(attain) and the open deals "
            "whose win would lift it most (model estimates).",
        ),
    ] = False,
    workdir: WorkdirOption = None,
) -> None:
    """Reps likely to miss quota this period, per manager: probability, expected attainment
    with its 80% interval, drivers in plain words, and the date the warning has held since.
    Scored by the quota-risk and deal-win champions of the work folder's MLflow store."""
    from spm_ml.data.io import load_tables
    from spm_ml.early_warnings import attrition_warnings, quota_warnings
    from spm_ml.errors import ModelNotFoundError, SpmMlError

    if output_format not in ("table", "json"):
        raise SpmMlError(f"--format must be table or json, not {output_format!r}")
    when = as_of_date(as_of)
    work = settings.workdir(workdir)
    tables = load_tables(data or settings.data_source(work))
    quota = quota_warnings(tables, work, as_of=when, manager=manager)
    try:
        attrition = attrition_warnings(tables, work, as_of=when, manager=manager)
        missing = None
    except ModelNotFoundError as err:  # quota risk alone is still worth reading
        attrition, missing = pd.DataFrame(), str(err)
    frames = [f for f in (quota, attrition) if not f.empty]
    scored = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    shown = scored if show_all or scored.empty else scored[scored["warned"]]
    advice = {}
    if coaching and not shown.empty:
        from spm_ml.coaching.reps import coach_reps

        reps = shown.loc[shown["kind"] == "quota_risk", "rep_id"].tolist()
        advice = {c.rep_id: c for c in coach_reps(tables, work, rep_ids=reps, as_of=when)}
    if output_format == "json":
        records = _records(shown)
        for record in records:
            if record["kind"] == "quota_risk" and record["rep_id"] in advice:
                record["coaching"] = advice[record["rep_id"]].as_dict()
        typer.echo(json.dumps(records, indent=2))
        return
    if missing:
        console.print(f"[yellow]no attrition warnings:[/] {missing}")
    _print_tables(shown, quota, attrition)
    if advice:
        _print_coaching(list(advice.values()))


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-able rows: dates as ISO text (UTC, as the data's times are), floats rounded."""
    out = []
    for row in frame.to_dict("records"):
        record = {}
        for key, value in row.items():
            if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
                value = None
            elif isinstance(value, pd.Timestamp):
                value = value.isoformat()
            elif isinstance(value, float):
                value = round(value, 4)
            elif hasattr(value, "item"):
                value = value.item()
            record[key] = value
        out.append(record)
    return out


def _print_tables(shown: pd.DataFrame, quota: pd.DataFrame, attrition: pd.DataFrame) -> None:
    from rich.table import Table

    if quota.empty:
        console.print(
            "no rep has a quota period open at that date (a period that has ended is a fact, "
            "not a forecast): no quota-risk warnings; pass --as-of a date inside a period"
        )
    else:
        console.print(
            f"quota risk as of {quota['as_of'].iat[0]:%Y-%m-%d %H:%M} UTC ({len(quota)} reps "
            f"scored, {int(quota['warned'].sum())} warned; model v"
            f"{quota['model_version'].iat[0]}, served by {quota['estimator'].iat[0]})"
        )
    if not attrition.empty:
        console.print(
            f"attrition risk as of {attrition['as_of'].iat[0]:%Y-%m-%d %H:%M} UTC "
            f"({len(attrition)} top performers scored, {int(attrition['warned'].sum())} warned: "
            f"top performers among the riskiest tenth; model v"
            f"{attrition['model_version'].iat[0]})"
        )
    if shown.empty:
        return
    for manager, group in shown.groupby("manager_id", dropna=False, sort=True):
        table = Table(title=f"manager {manager}", title_justify="left")
        for column in (
            "rep",
            "warning",
            "P",
            "expected attainment (80% range)",
            "since",
            "drivers",
        ):
            table.add_column(column, overflow="fold")
        for row in group.itertuples(index=False):
            since = "-" if pd.isna(row.warning_since) else f"{row.warning_since:%Y-%m-%d}"
            attainment = (
                "-"
                if pd.isna(row.expected_attainment)
                else f"{row.expected_attainment:.0%} ({row.attainment_p10:.0%}-"
                f"{row.attainment_p90:.0%}); {row.days_left:.0f} days left"
            )
            table.add_row(
                f"{row.rep_name} ({row.rep_id})",
                "misses quota" if row.kind == "quota_risk" else "leaves (90 days)",
                f"{row.probability:.0%}",
                attainment,
                since,
                "; ".join(row.drivers),
            )
        console.print(table)
    console.print(
        "[dim]A probability is the share of reps in this situation who missed quota (or left) "
        "in the past; drivers are what moved the model's score, not proven causes. The "
        "attrition model cannot know offers from elsewhere, personal reasons or what a "
        "manager heard in a one-to-one.[/]"
    )


def _print_coaching(coached: list) -> None:
    """Per rep: the pipeline gap and the deals worth rescuing, in sentences."""
    for c in coached:
        if c.pipeline_gap is None:
            console.print(f"[bold]{c.rep_id}[/]: {c.status}")
            continue
        console.print(
            f"[bold]{c.rep_id}[/] (P(attain) {c.p_attain:.0%}): {c.pipeline_gap.sentence}"
        )
        for deal in c.deals_to_rescue:
            console.print(f"  - {deal.sentence}")
    if coached:
        console.print(
            f"[dim]{coached[0].caveat} A gap adds qualified-stage deals of the rep's median "
            "open size, won and timed like the rep's (or, with too few, the organisation's) "
            "open qualified deals, until the served P(attain) reaches 80% (`--format json` "
            "states each rep's terms).[/]"
        )
