"""``spm-ml token create|revoke|list``: the API's tokens, stored hashed in the work folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spm_ml import settings
from spm_ml.cli._common import console, err_console, exits_on_error
from spm_ml.errors import SpmMlError
from spm_ml.tokens import ROLES, TokenError, TokenStore

WorkdirOption = Annotated[
    Path | None,
    typer.Option(help="The service's work folder (default $SPM_ML_WORKDIR, ./spm-ml-quickstart)."),
]


def register(app: typer.Typer) -> None:
    """Add the ``token`` command group to the root app."""
    token_app = typer.Typer(
        help="API tokens: create (shown once, stored hashed), revoke, list.",
        no_args_is_help=True,
    )
    token_app.command("create")(create_command)
    token_app.command("revoke")(revoke_command)
    token_app.command("list")(list_command)
    app.add_typer(token_app, name="token")


@exits_on_error
def create_command(
    name: Annotated[
        str, typer.Option(help="Unique name; the request log shows it, never the token.")
    ],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    manager_id: Annotated[
        str | None,
        typer.Option(
            help="Managers only: their rep_id; they see the attrition risk of the reps "
            "whose reps.manager_id it is."
        ),
    ] = None,
    workdir: WorkdirOption = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Source whose reps --manager-id is checked against (default $SPM_ML_DATA "
            "or WORKDIR/data; a folder is checked, other sources are not)."
        ),
    ] = None,
) -> None:
    """Create a token and print it once: only its SHA-256 is kept."""
    work = settings.workdir(workdir)
    if role == "manager" and manager_id:
        check_manager(data or settings.data_source(work), manager_id.strip())
    store = TokenStore(settings.tokens_path(work))
    token = store.create(name, role, manager_id=manager_id)
    err_console.print(
        f"[yellow]Token {name!r} ({role}) created in {store.path}: copy it now, it will not "
        "be shown again.[/]",
        highlight=False,
    )
    print(token)  # plain stdout, alone on its line, for `TOKEN=$(spm-ml token create ...)`


@exits_on_error
def revoke_command(
    name: Annotated[str, typer.Argument(help="Name of the token to revoke.")],
    workdir: WorkdirOption = None,
) -> None:
    """Revoke a token: the running service refuses it from its next request."""
    store = TokenStore(settings.tokens_path(settings.workdir(workdir)))
    record = store.revoke(name)
    console.print(f"token {name!r} ({record.role}) revoked at {record.revoked_at}")


@exits_on_error
def list_command(
    workdir: WorkdirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per token.")] = False,
) -> None:
    """List the tokens: name, role, manager id, dates (never a token nor its hash)."""
    store = TokenStore(settings.tokens_path(settings.workdir(workdir)))
    rows = store.list()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"no tokens in {store.path}: create one with `spm-ml token create`")
        return
    from rich.table import Table

    columns = ("name", "role", "manager_id", "created_at", "revoked_at")
    table = Table(*columns)
    for row in rows:
        table.add_row(*(row[column] or "" for column in columns))
    console.print(table)


def check_manager(source: str, manager_id: str) -> None:
    """Refuse a ``--manager-id`` that no rep reports to, when ``source`` is a folder.

    Only the ``manager_id`` column of ``reps`` is read (cheap at any size); SQL and adapter
    sources are not checked, as reading them could cost more than the check is worth.
    """
    import pandas as pd

    folder = Path(source)
    files = [folder / f"reps.{ext}" for ext in ("parquet", "csv")]
    present = [path for path in files if path.is_file()]
    if "://" in source or not present:
        return
    path = present[0]
    try:
        if path.suffix == ".parquet":
            managers = pd.read_parquet(path, columns=["manager_id"])["manager_id"]
        else:
            managers = pd.read_csv(path, usecols=["manager_id"], dtype=str)["manager_id"]
    except (ValueError, KeyError, OSError) as err:
        raise SpmMlError(f"could not read reps.manager_id from {path}: {err}") from err
    if manager_id not in set(managers.dropna().astype(str)):
        raise TokenError(
            f"--manager-id {manager_id!r}: no rep in {path} reports to it (reps.manager_id); "
            "check the id, or pass --data for another source"
        )
