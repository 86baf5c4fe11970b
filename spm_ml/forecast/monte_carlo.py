"""Bookings by period end, drawn deal by deal: the quota-risk Monte Carlo.

For one snapshot (a rep's period at ``as_of``), one draw of the period's bookings is

    booked to date
    + sum over the rep's open deals of  [deal closes won in the period] * amount * change
    + bookings from deals not created yet

where each open deal closes won in the period with probability ``p_win * p_in_period``
(its calibrated win probability times the learned probability that a won deal's close does
not slip past the period end, :class:`~spm_ml.forecast.rates.PeriodRates`), ``change`` is
the learned amount change between ``as_of`` and the close, and the not-yet-created bookings
are drawn from what reps booked from new deals in past periods at the same point.
Counting the draws below quota gives P(miss); their quantiles give the attainment interval.
Deals are independent given their probabilities (the rep's skill is already in each
probability); the back-test says how far that holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CHUNK_CELLS = 4_000_000
"""Deal rows x draws held in memory at once (32 MB of float64)."""


@dataclass(frozen=True)
class AttainmentDraws:
    """Summary of the drawn attainment (bookings / quota) of each snapshot."""

    p_miss: np.ndarray
    expected: np.ndarray
    p10: np.ndarray
    p50: np.ndarray
    p90: np.ndarray

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "p_miss": self.p_miss,
                "expected_attainment": self.expected,
                "attainment_p10": self.p10,
                "attainment_p50": self.p50,
                "attainment_p90": self.p90,
            }
        )


def draw_attainment(
    booked_share: np.ndarray,
    deal_snapshot: np.ndarray,
    p_close_won: np.ndarray,
    value_share: np.ndarray,
    new_deal_draws: np.ndarray,
    *,
    threshold: float = 1.0,
    seed: int = 0,
) -> AttainmentDraws:
    """Draw each snapshot's attainment and summarise it.

    Parameters
    ----------
    booked_share:
        Per snapshot, bookings to date as a share of quota.
    deal_snapshot:
        Per open deal, the position of its snapshot (sorted ascending).
    p_close_won:
        Per open deal, the probability that it closes won inside the period.
    value_share:
        Per open deal, what it books if won (amount at close) as a share of quota.
    new_deal_draws:
        ``(n_snapshots, n_draws)``: bookings from deals not created yet, as shares of quota.
    """
    n, n_draws = new_deal_draws.shape
    deal_snapshot = np.asarray(deal_snapshot, dtype=np.int64)
    if len(deal_snapshot) and np.any(np.diff(deal_snapshot) < 0):
        raise ValueError("deal rows must be sorted by snapshot")
    rng = np.random.default_rng(seed)
    totals = np.asarray(booked_share, dtype=np.float64)[:, None] + new_deal_draws
    bounds = np.searchsorted(deal_snapshot, np.arange(n + 1))
    per_chunk = max(1, CHUNK_CELLS // n_draws)
    start = 0
    while start < n:
        # whole snapshots per chunk, about per_chunk deal rows
        stop = int(np.searchsorted(bounds, bounds[start] + per_chunk, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        lo, hi = bounds[start], bounds[stop]
        if hi > lo:
            wins = rng.random((hi - lo, n_draws)) < p_close_won[lo:hi, None]
            booked = wins * value_share[lo:hi, None]
            owners, first = np.unique(deal_snapshot[lo:hi], return_index=True)
            totals[owners] += np.add.reduceat(booked, first, axis=0)
        start = stop
    p10, p50, p90 = np.quantile(totals, [0.1, 0.5, 0.9], axis=1)
    return AttainmentDraws(
        p_miss=(totals < threshold).mean(axis=1),
        expected=totals.mean(axis=1),
        p10=p10,
        p50=p50,
        p90=p90,
    )
