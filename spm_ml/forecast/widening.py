"""Back-tested interval widening: the forecast's 80% range made as wide as its own track
record says it should be.

The Monte Carlo draws treat deals as independent given their probabilities and the learned
rates as known, so a team's or the company's range is about as narrow as hundreds of coin
flips make it.  What moves a whole period (the deal models' calibration drifting, a slip
rate that was not the last quarter's) is only partly in the draws: on the simulated
organisations the company's mid-period range held 2-3 of 7 actuals (docs/benchmarks.md).

The correction is learned from the back-test, never from the period being forecast: for a
level (rep, team, company) and a point of the period (25/50/75% elapsed), each replay of a
period closed by ``as_of`` says how much wider its range had to be to hold what was booked:
with ``error = log(actual / p50)`` and ``side`` the log distance from the P50 to the range's
end on the actual's side, it needed ``sqrt(max(error^2 - side^2, 0)) / 1.2816`` more log
spread.  The widening ``sigma`` is the 80% quantile of those needs, so that 80% of the past
replays would have held their actual (a split-conformal rule: no shape assumed for the
errors, heavy-tailed rep errors included).  The range is then widened on each side in
quadrature (``log p50 - log p10`` becomes ``sqrt(that^2 + (1.2816 sigma)^2)``); the P50 is
not moved (shifting it by the mean past error was tried and made the P50 worse on one of
three simulated organisations: a few periods do not pin down a bias).

Fewer than :data:`MIN_PERIODS` earlier periods: no widening (``sigma`` is NaN), said in the
output.  Rows that booked nothing, or whose P10 is 0, carry no log error and are left out
of the learning (a rep's range is widened by what reps with bookings teach).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

Z80 = 1.2815515655446004
"""The standard normal's 90% quantile: an 80% range is +-Z80 standard deviations."""
TARGET_COVERAGE = 0.8
"""The share of past replays a widened range would have held."""
MIN_PERIODS = 3
"""Earlier periods needed before a spread is learned from them."""
FRACTION_TOLERANCE = 0.13
"""A past replay teaches a forecast made at a point of the period within this much of its
own (25/50/75% replays for a forecast at 40% elapsed: the 50% ones)."""


def widening_sigma(
    rows: pd.DataFrame,
    *,
    level: str,
    fraction: float,
    before: pd.Timestamp,
    min_periods: int = MIN_PERIODS,
) -> tuple[float, int]:
    """The extra log spread for a forecast of ``level`` at ``fraction`` elapsed, learned
    from back-test ``rows`` of periods closed by ``before``; and how many periods taught it.

    ``rows`` are :func:`~spm_ml.forecast.backtest.backtest` rows (``level``, ``fraction``,
    ``period_close`` or ``period_start`` + the next period, ``p10``, ``p50``, ``p90``,
    ``actual``).  NaN with fewer than ``min_periods`` periods.
    """
    if rows.empty:
        return float("nan"), 0
    fractions = rows["fraction"].to_numpy(dtype=np.float64)
    nearest = fractions[np.abs(fractions - fraction).argmin()]
    usable = (
        (rows["level"] == level).to_numpy()
        & (np.abs(fractions - nearest) < 1e-9)
        & (np.abs(nearest - fraction) <= FRACTION_TOLERANCE)
        & (_period_close(rows) <= before)
        & (rows["actual"] > 0).to_numpy()
        & (rows["p10"] > 0).to_numpy()
    )
    taught = rows[usable]
    periods = int(taught["period"].nunique())
    if periods < min_periods:
        return float("nan"), periods
    error = np.log(taught["actual"].to_numpy() / taught["p50"].to_numpy())
    # the side of the range the actual fell on, in log distance from the P50
    side = np.where(
        error < 0,
        np.log(taught["p50"].to_numpy()) - np.log(taught["p10"].to_numpy()),
        np.log(taught["p90"].to_numpy()) - np.log(taught["p50"].to_numpy()),
    )
    # the widening each past replay needed to hold its actual (0 if it did)
    needed = np.sqrt(np.maximum(error**2 - side**2, 0.0)) / Z80
    return float(np.quantile(needed, TARGET_COVERAGE)), periods


def widening_at(
    rows: pd.DataFrame, as_of: pd.Timestamp, fraction: float, levels: tuple[str, ...]
) -> dict[str, tuple[float, int]]:
    """:func:`widening_sigma` for each of ``levels``, for a forecast made at ``as_of``."""
    return {
        level: widening_sigma(rows, level=level, fraction=fraction, before=as_of)
        for level in levels
    }


def widen(
    p10: np.ndarray, p50: np.ndarray, p90: np.ndarray, sigma: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(p10, p90)`` widened by ``sigma`` in log space on each side (NaN: unchanged)."""
    p10, p50, p90 = (np.asarray(a, dtype=np.float64) for a in (p10, p50, p90))
    sigma = np.nan_to_num(np.asarray(sigma, dtype=np.float64), nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.log(p50) - np.log(p10)
        high = np.log(p90) - np.log(p50)
        new_low = p50 * np.exp(-np.sqrt(low**2 + (Z80 * sigma) ** 2))
        new_high = p50 * np.exp(np.sqrt(high**2 + (Z80 * sigma) ** 2))
    positive = (p10 > 0) & (p50 > 0)
    return np.where(positive, new_low, p10), np.where(p50 > 0, new_high, p90)


def rolling_widened(rows: pd.DataFrame, min_periods: int = MIN_PERIODS) -> pd.DataFrame:
    """Back-test ``rows`` with ``p10_widened``, ``p90_widened`` and ``widening_sigma``: each
    replay widened by what the replays of periods closed before its own ``as_of`` taught,
    exactly as a forecast made then would have been."""
    out = rows.copy()
    out["widening_sigma"] = np.nan
    for (level, fraction, as_of), group in rows.groupby(["level", "fraction", "as_of"]):
        sigma, _ = widening_sigma(
            rows, level=level, fraction=fraction, before=pd.Timestamp(as_of),
            min_periods=min_periods,
        )  # fmt: skip
        out.loc[group.index, "widening_sigma"] = sigma
    low, high = widen(out["p10"], out["p50"], out["p90"], out["widening_sigma"])
    out["p10_widened"], out["p90_widened"] = low, high
    return out


def _period_close(rows: pd.DataFrame) -> np.ndarray:
    """When each row's period closed: ``period_close`` if the rows carry it, else the day
    after ``period_end``, else the start of the next period of the rows."""
    if "period_close" in rows:
        return pd.to_datetime(rows["period_close"]).to_numpy()
    if "period_end" in rows:
        return (pd.to_datetime(rows["period_end"]) + pd.Timedelta(days=1)).to_numpy()
    starts = np.sort(pd.to_datetime(rows["period_start"]).unique())
    start = pd.to_datetime(rows["period_start"]).to_numpy()
    position = np.searchsorted(starts, start, side="right")
    later = np.append(starts, np.datetime64("NaT"))[position]
    # the last period's close is unknown from starts alone: never "closed before" anything
    return np.where(pd.isna(later), np.datetime64("2262-01-01"), later).astype("datetime64[ns]")
