"""``spm-ml report``: the manager's page, one self-contained HTML file per manager, from a
batch run's outputs (``spm-ml batch --out FOLDER``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spm_ml.cli._common import console, exits_on_error
from spm_ml.errors import SpmMlError


@exits_on_error
def report_command(
    from_: Annotated[
        Path,
        typer.Option(
            "--from",
            help="The batch run's folder (spm-ml batch --out FOLDER): deal_scores, "
            "rep_risk, forecast and manifest.json.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(help="The page (FILE.html) with --manager; a folder with --all-managers."),
    ],
    manager: Annotated[
        str | None, typer.Option(help="The manager's rep id (their reps' manager_id).")
    ] = None,
    all_managers: Annotated[
        bool, typer.Option("--all-managers", help="One page per manager: OUT/manager-ID.html.")
    ] = False,
) -> None:
    """Write the manager's pre-call page: the team's forecast against quota, reps at quota
    risk, top performers at attrition risk, deals at risk and the models behind them, as of
    the batch's date. The file opens offline in any browser (everything inlined)."""
    from spm_ml.report import read_batch_outputs, render_manager, write_all, write_page

    if (manager is None) == (not all_managers):
        raise SpmMlError("pass either --manager ID or --all-managers (one of them)")
    outputs = read_batch_outputs(from_)
    if manager is not None:
        path = write_page(render_manager(outputs, manager), out)
        console.print(f"manager {manager}'s page (as of {outputs.as_of:%Y-%m-%d}): {path}")
        return
    paths = write_all(outputs, out)
    console.print(
        f"{len(paths)} manager page(s) (as of {outputs.as_of:%Y-%m-%d}) in {out}: "
        + ", ".join(p.name for p in paths.values())
    )
