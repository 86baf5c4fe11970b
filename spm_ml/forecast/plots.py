"""The forecast's fan chart and the back-test's intervals against what was booked (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.forecast.bookings import COMPANY, BookingForecast

FAN_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def fan_chart(forecast: BookingForecast, path: Path) -> Path:
    """The company's bookings over the period: closed won day by day up to ``as_of``, then
    the fan of the drawn period-end totals (P10-P90, P25-P75, P50), with the quota.

    Between ``as_of`` and the close the fan grows linearly from booked to date to the drawn
    totals: the draws are of the period's end; the path between is drawn as a straight
    line, a reading aid, not a forecast of the timing.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    period, as_of = forecast.period, forecast.as_of
    _, draws = forecast.draws(COMPANY)
    total = draws["total"][0]
    booked = float(draws["booked"][0, 0])
    won = forecast.inputs.bookings
    closed = won.deals["closed_at"]
    in_period = ((closed >= period.start) & (closed < as_of)).to_numpy()
    times = closed[in_period].to_numpy()
    order = np.argsort(times)
    steps = np.cumsum(won.amounts[in_period][order])
    q = dict(zip(FAN_QUANTILES, np.quantile(total, FAN_QUANTILES), strict=True))
    when = pd.to_datetime([as_of, period.close])

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.step(
        np.concatenate([[np.datetime64(period.start)], times[order], [np.datetime64(as_of)]]),
        np.concatenate([[0.0], steps, [booked]]),
        where="post",
        color="black",
        label="closed won",
    )
    ax.fill_between(
        when, [booked, q[0.1]], [booked, q[0.9]], alpha=0.2, color="C0", label="P10-P90"
    )
    ax.fill_between(
        when, [booked, q[0.25]], [booked, q[0.75]], alpha=0.35, color="C0", label="P25-P75"
    )
    ax.plot(when, [booked, q[0.5]], color="C0", label=f"P50 {q[0.5]:,.0f}")
    quota = forecast.quota(COMPANY, np.array([COMPANY]))[0]
    if np.isfinite(quota):
        ax.axhline(quota, color="C3", linestyle="--", label=f"quota {quota:,.0f}")
    ax.axvline(as_of, color="grey", linewidth=0.8)
    ax.set_title(f"Bookings {period.label}, forecast as of {as_of:%Y-%m-%d}")
    ax.set_ylabel("bookings")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def backtest_chart(rows: pd.DataFrame, path: Path, level: str = COMPANY) -> Path:
    """Per period (x) and point elapsed (panels): the 80% interval and P50 replayed then,
    against the actual bookings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rows[rows["level"] == level]
    fractions = sorted(rows["fraction"].unique())
    fig, axes = plt.subplots(1, len(fractions), figsize=(4 * len(fractions), 4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, fraction in zip(axes, fractions, strict=True):
        at = rows[rows["fraction"] == fraction].sort_values("period_start")
        x = np.arange(len(at))
        inside = (at["actual"] >= at["p10"]) & (at["actual"] <= at["p90"])
        ax.vlines(x, at["p10"], at["p90"], color="C0", linewidth=6, alpha=0.35, label="P10-P90")
        ax.plot(x, at["p50"], "o", color="C0", label="P50")
        ax.plot(x, at["actual"], "x", color="black", markersize=8, label="actual")
        ax.plot(x, at["stage_weighted"], "_", color="C1", markersize=12, label="stage-weighted")
        ax.plot(x, at["run_rate"], "_", color="C2", markersize=12, label="run-rate")
        ax.set_xticks(x, at["period"], rotation=45)
        ax.set_title(f"{fraction:.0%} elapsed: {inside.mean():.0%} inside")
    axes[0].set_ylabel(f"bookings ({level})")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
