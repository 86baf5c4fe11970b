"""The manager's page from the quickstart's batch run, read as HTML (no browser): each
section lists what the batch outputs say it must, every value is escaped, the file needs
nothing from the network, and the command's errors name what is wrong."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd
import pytest
from report_expected import (
    expected_attrition,
    expected_deals,
    expected_reps,
    expected_teams,
)
from typer.testing import CliRunner

from spm_ml.cli import app
from spm_ml.report import (
    BatchOutputs,
    ReportError,
    manager_page,
    read_batch_outputs,
    render_manager,
    render_page,
)

pytestmark = pytest.mark.slow  # the session's trained work folder (a small quickstart)


class Rows(HTMLParser):
    """``data-rep-id`` / ``data-deal-id`` of each table's rows, by table class; external
    references of any kind."""

    def __init__(self) -> None:
        super().__init__()
        self.table: str | None = None
        self.rows: dict[str, list[str]] = {}
        self.external: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "table":
            self.table = attrs.get("class")
        if tag == "tr" and self.table:
            key = attrs.get("data-rep-id") or attrs.get("data-deal-id")
            if key:
                self.rows.setdefault(self.table, []).append(key)
        for name in ("src", "href"):
            if attrs.get(name):
                self.external.append(attrs[name])


def parsed(html: str) -> Rows:
    rows = Rows()
    rows.feed(html)
    return rows


def test_each_section_lists_the_batch_outputs_reps_and_deals(outputs, manager):
    html = render_manager(outputs, manager)
    rows = parsed(html)
    assert rows.rows.get("reps", []) == expected_reps(outputs, manager)
    assert expected_reps(outputs, manager), "the fixture's manager has reps at quota risk"
    assert rows.rows.get("attrition", []) == expected_attrition(outputs, manager)
    assert rows.rows.get("deals", []) == expected_deals(outputs, manager)
    for team in expected_teams(outputs, manager):
        assert f"<h3>{team}</h3>" in html
    assert f"As of <strong>{outputs.as_of:%Y-%m-%d} UTC</strong>" in html


def test_every_manager_gets_a_page_from_the_command(outputs, batch_dir, tmp_path):
    out = tmp_path / "pages"
    result = CliRunner().invoke(
        app, ["report", "--from", str(batch_dir), "--all-managers", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        f"manager-{m}.html" for m in outputs.managers()
    ]


def test_the_page_is_self_contained(outputs, manager):
    html = render_manager(outputs, manager)
    rows = parsed(html)
    assert rows.external == []  # no link, script, image or font to fetch
    assert not {"script", "link", "img", "iframe"} & rows.tags
    assert "url(" not in html and "@import" not in html
    addresses = re.findall(r"""https?://[^\s"'<>]*""", html)
    assert addresses == ["http://www.w3.org/2000/svg"] * html.count("<svg")


def test_every_chart_has_a_text_alternative(outputs, manager):
    html = render_manager(outputs, manager)
    charts = re.findall(r"<svg[^>]*>.*?</svg>", html, flags=re.S)
    assert charts
    for chart in charts:
        assert 'role="img"' in chart and "<title" in chart and "<desc" in chart


def test_values_are_escaped(outputs, manager):
    reps = outputs.reps.copy()
    mine = reps.index[reps["manager_id"] == manager]
    reps.loc[mine, "rep_name"] = "<script>alert(1)</script>"
    deals = outputs.deals.copy()
    deals["recommendation"] = '<img src=x onerror="alert(2)">'
    hostile = BatchOutputs(outputs.folder, outputs.manifest, deals, reps, outputs.forecast)
    html = render_page(manager_page(hostile, manager))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_unknown_manager_exits_2_naming_it_and_valid_ones(outputs, batch_dir, tmp_path):
    with pytest.raises(ReportError, match="manager 'NOPE' has no reps"):
        manager_page(outputs, "NOPE")
    result = CliRunner().invoke(
        app,
        ["report", "--from", str(batch_dir), "--manager", "NOPE", "--out", str(tmp_path / "x")],
    )
    assert result.exit_code == 2
    assert "NOPE" in result.output and outputs.managers()[0] in result.output
    assert not (tmp_path / "x").exists()


def test_no_batch_run_exits_2_saying_what_to_run(tmp_path):
    result = CliRunner().invoke(
        app, ["report", "--from", str(tmp_path), "--manager", "M", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "spm-ml batch" in result.output


def test_the_page_states_models_dates_and_backtest(outputs, manager):
    page = manager_page(outputs, manager)
    assert {card["family"] for card in page.models} == set(outputs.manifest["models"])
    trained = [card for card in page.models if not card["missing"]]
    assert trained and all(card["trained_at"] for card in trained)
    assert all(card["reliability"] for card in trained)  # trained with the bins logged
    assert page.backtest_line  # a record, or why there is none
    assert page.as_of == pd.Timestamp(outputs.manifest["as_of"])


def test_a_run_written_before_the_pages_columns_is_refused_saying_so(batch_dir, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(batch_dir, old)
    deals = pd.read_parquet(old / "deal_scores.parquet").drop(columns=["probability_before"])
    deals.to_parquet(old / "deal_scores.parquet", index=False)
    with pytest.raises(ReportError, match="no probability_before.*spm-ml batch"):
        read_batch_outputs(old)
