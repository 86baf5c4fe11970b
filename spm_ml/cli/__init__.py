"""The ``spm-ml`` command line: thin commands over the library's functions."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from spm_ml.cli import (
    _common,
    alerts,
    batch,
    data,
    forecast,
    models,
    report,
    run,
    sentiment,
    tokens,
)
from spm_ml.cli._common import configure_logging, exit_on_sigterm

app = typer.Typer(
    name="spm-ml",
    help="Calibrated, explained ML insights for Sales Performance Management.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
train_app = typer.Typer(help="Train a model.", no_args_is_help=True)
sentiment_app = typer.Typer(help="Email sentiment scoring.", no_args_is_help=True)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    _common.COMMAND_STARTED = time.perf_counter()  # a --time-budget counts from here
    configure_logging(verbose)


app.command("generate")(data.generate)
app.command("validate")(data.validate)
app.command("quickstart")(run.quickstart)
app.command("serve")(run.serve)
app.command("promote")(models.promote_command)
app.command("warnings")(alerts.warnings_command)
app.command("batch")(batch.batch_command)
app.command("forecast")(forecast.forecast_command)
app.command("backtest")(forecast.backtest_command)
app.command("report")(report.report_command)
train_app.command("deal-win")(models.train_deal_win_command)
train_app.command("attrition")(models.train_attrition_command)
train_app.command("quota-risk")(models.train_quota_risk_command)
sentiment.register(train_app, sentiment_app)
tokens.register(app)
app.add_typer(train_app, name="train")
app.add_typer(sentiment_app, name="sentiment")


def main() -> None:
    exit_on_sigterm()  # here, not in a callback: tests drive ``app`` inside their own process
    app()
