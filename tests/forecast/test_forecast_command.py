"""`spm-ml forecast` from a quickstart's champions: JSON, files, seeds and a what-if."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from spm_ml.cli import app

runner = CliRunner()
pytestmark = pytest.mark.slow


def forecast(workdir, out, *extra: str) -> dict:
    args = ["forecast", "--workdir", str(workdir), "--period", "2024Q4"]
    args += ["--as-of", "2024-11-15", "--sims", "400", "--format", "json", "--out", str(out)]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_forecast_command_is_reproducible_and_answers_what_ifs(trained_workdir, tmp_path):
    first = forecast(trained_workdir, tmp_path / "a")
    again = forecast(trained_workdir, tmp_path / "b")
    assert first == again
    assert first["period"] == "2024Q4" and first["deal_model"]["version"]
    levels = {row["level"] for row in first["rows"]}
    assert levels == {"rep", "team", "company"}
    company = next(r for r in first["rows"] if r["level"] == "company")
    assert company["total_p10"] <= company["total_p50"] <= company["total_p90"]
    assert company["closed_won"] > 0 and company["quota"] > 0
    for name in ("forecast.csv", "forecast_deals.csv", "forecast.json", "forecast_fan.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0

    import pandas as pd

    deals = pd.read_csv(tmp_path / "a" / "forecast_deals.csv")
    biggest = deals.assign(v=deals["amount"] * deals["p_close_in_period"]).nlargest(1, "v")
    deal_id = biggest["deal_id"].iloc[0]
    without = forecast(trained_workdir, tmp_path / "c", "--exclude-deal", deal_id)
    assert without["excluded_deals"] == [deal_id]
    lost = next(r for r in without["rows"] if r["level"] == "company")
    assert lost["expected"] < company["expected"]
    assert lost["closed_won"] == company["closed_won"]
    other_seed = forecast(trained_workdir, tmp_path / "d", "--seed", "1")
    assert other_seed["rows"] != first["rows"]


def test_a_closed_period_without_as_of_is_refused(trained_workdir):
    result = runner.invoke(
        app, ["forecast", "--workdir", str(trained_workdir), "--period", "2024Q2"]
    )
    assert result.exit_code == 2
    assert "facts" in result.output
