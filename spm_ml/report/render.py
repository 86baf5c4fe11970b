"""The manager's page as one self-contained HTML file: Jinja2 with autoescape on (every
value from the data is escaped), the CSS and SVG charts inlined, nothing fetched."""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from spm_ml.report import charts
from spm_ml.report.outputs import BatchOutputs
from spm_ml.report.page import ManagerPage, manager_page

TEMPLATE = "manager.html.j2"


def pct(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}%}"


def money_full(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.0f}"


def date_utc(value) -> str:
    """A date as ``2024-11-15 UTC`` (times inside spm-ml are naive UTC)."""
    if value is None or value is pd.NaT:
        return "n/a"
    return f"{pd.Timestamp(value):%Y-%m-%d} UTC"


def datetime_utc(value) -> str:
    if value is None:
        return "n/a"
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_convert("UTC") if stamp.tzinfo else stamp
    return f"{stamp:%Y-%m-%d %H:%M} UTC"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("spm_ml.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {
        "pct": pct,
        "money": money_full,
        "short_money": charts.money,
        "date_utc": date_utc,
        "datetime_utc": datetime_utc,
    }
    return env


def render_page(page: ManagerPage) -> str:
    """The HTML of one manager's page."""
    fans = [
        charts.fan_chart(row, page.period, date_utc(page.as_of), row["id"]) for row in page.forecast
    ]
    intervals = charts.interval_chart(page.reps_at_risk) if page.reps_at_risk else None
    reliability = {
        card["family"]: charts.reliability_chart(
            card["reliability"], f"{card['title']} v{card['version']}: held-out calibration"
        )
        for card in page.models
        if card.get("reliability")
    }
    return (
        environment()
        .get_template(TEMPLATE)
        .render(page=page, fans=fans, intervals=intervals, reliability=reliability)
    )


def render_manager(outputs: BatchOutputs, manager_id: str) -> str:
    """The page of ``manager_id`` from one batch run (:func:`manager_page`)."""
    return render_page(manager_page(outputs, manager_id))


def write_page(html: str, path: Path) -> Path:
    """Write ``html`` to ``path`` through a temporary file renamed into place, so a reader
    never opens half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(html)
    os.replace(temporary, path)
    return path


def write_all(outputs: BatchOutputs, folder: Path) -> dict[str, Path]:
    """Every manager's page, ``folder/manager-ID.html``; the paths by manager id."""
    return {
        manager: write_page(render_manager(outputs, manager), folder / f"manager-{manager}.html")
        for manager in outputs.managers()
    }
