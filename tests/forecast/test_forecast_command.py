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
    assert first["backtested_range"] is None  # no back-test in the work folder


def test_a_back_test_widens_the_range_it_says_how(trained_workdir, tmp_path):
    """Back-test rows of this organisation (made up here: every past company P50 missed by
    20%) widen the company's range; the P50 stays, the low end stays above what is won."""
    import numpy as np
    import pandas as pd

    plain = forecast(trained_workdir, tmp_path / "a")
    company = next(r for r in plain["rows"] if r["level"] == "company")
    reps = [r["id"] for r in plain["rows"] if r["level"] == "rep"]
    starts = pd.date_range("2023-07-01", periods=5, freq="QS")
    rows = pd.DataFrame(
        [
            {
                "level": level, "id": unit, "period": f"{s:%Y}Q{s.quarter}",
                "period_start": s, "period_close": s + pd.DateOffset(months=3),
                "fraction": 0.5, "as_of": s + pd.Timedelta(days=45),
                "p10": 95.0, "p50": 100.0, "p90": 105.0, "actual": 120.0,
            }
            for s in starts
            for level, unit in [("company", "company"), *(("rep", r) for r in reps)]
        ]
    )  # fmt: skip
    path = tmp_path / "backtest.csv"
    rows.to_csv(path, index=False)
    widened = forecast(trained_workdir, tmp_path / "b", "--backtest", str(path))
    sigma = widened["backtested_range"]["company"]["sigma"]
    expected = np.sqrt(np.log(1.2) ** 2 - np.log(1.05) ** 2) / 1.2816
    assert sigma == pytest.approx(expected, abs=1e-4)
    assert widened["backtested_range"]["company"]["periods"] == 5
    assert widened["backtested_range"]["team"]["sigma"] is None  # no team rows: not widened
    again = next(r for r in widened["rows"] if r["level"] == "company")
    assert again["total_p50"] == company["total_p50"]
    assert company["closed_won"] <= again["backtested_p10"] < company["total_p10"]
    assert again["backtested_p90"] > company["total_p90"]


def test_a_closed_period_without_as_of_is_refused(trained_workdir):
    result = runner.invoke(
        app, ["forecast", "--workdir", str(trained_workdir), "--period", "2024Q2"]
    )
    assert result.exit_code == 2
    assert "facts" in result.output
