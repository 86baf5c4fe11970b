"""What every command shares: the consoles, logging set-up and the error-to-exit-code rule."""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from spm_ml.errors import SpmMlError

COMMAND_STARTED: float | None = None
"""``time.perf_counter()`` when the running command started (set by the root callback)."""

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2
"""Exit status for input the user can fix (bad data, unknown model, unreachable source)."""

ScoredDataOption = Annotated[
    str | None,
    typer.Option("--data", help="Organisation to score: folder, SQL URL or ADAPTER:PATH."),
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Score as of this date (default: the data's extraction time)."),
]


def as_of_date(text: str | None):
    """``--as-of`` as a timestamp (``None`` stays ``None``: the data's extraction time)."""
    import pandas as pd

    if text is None:
        return None
    try:
        return pd.Timestamp(text)
    except ValueError as err:
        raise SpmMlError(f"--as-of {text!r} is not a date (use YYYY-MM-DD)") from err


def exits_on_error(command: F) -> F:
    """Turn :class:`SpmMlError` into a one-line message and exit status 2, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SpmMlError as err:
            # the message is text, not markup: "spm-ml[spark]" must print as typed
            err_console.print(
                f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(EXIT_BAD_INPUT) from err

    return wrapper  # type: ignore[return-value]


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind the command like Ctrl-C does, instead of killing it on the spot.

    With the default action the process vanishes without running ``finally`` blocks, so
    worker pools (the sentiment scorer's forked spaCy workers, several hundred MB each) are
    never stopped.  Raising :class:`SystemExit` (status 143, the shell's 128 + SIGTERM) runs
    every cleanup on the way out; a second SIGTERM during that cleanup kills at once.
    """

    def _exit(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def configure_logging(verbose: bool) -> None:
    """Library modules only create loggers; the CLI decides what reaches the terminal."""
    from rich.logging import RichHandler

    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console)], force=True
    )
    import os
    import warnings

    # MLflow configures its own loggers when first imported; this tells it our level.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "ERROR")
    if not verbose:
        warnings.filterwarnings("ignore", module=r"(mlflow|shap|lightgbm|sklearn)(\..*)?")
    for noisy in ("alembic", "mlflow", "urllib3", "git"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.ERROR)


class _BudgetColumn(ProgressColumn):
    """``elapsed 37 s, 83 s left of 120 s``: the run's clock against its time budget (a
    finished stage keeps the time it finished at)."""

    def __init__(self, deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def render(self, task) -> Text:
        elapsed = task.fields.get("finished_at", self.deadline.elapsed())
        if self.deadline.seconds is None:
            return Text(f"elapsed {elapsed:3.0f} s", "cyan")
        left = max(0.0, self.deadline.seconds - elapsed)
        text = f"elapsed {elapsed:3.0f} s, {left:3.0f} s left of {self.deadline.seconds:.0f} s"
        return Text(text, "cyan")


@contextmanager
def progress_bar(deadline=None) -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(stage, done, total)`` callback drawing one rich bar per stage.

    With a ``deadline`` (:class:`~spm_ml.models.learner_search.Deadline`), each bar shows
    the run's elapsed time and the time left of its budget instead of the stage's own
    elapsed time and an estimate."""
    timing = (
        [TimeElapsedColumn(), TimeRemainingColumn()]
        if deadline is None
        else [_BudgetColumn(deadline)]
    )
    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        *timing,
        console=err_console,
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)
            if deadline is not None and done >= total:
                bar.update(tasks[stage], finished_at=deadline.elapsed())

        yield update
