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

from spm_ml.forecast.rates import PeriodRates

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
    pipeline = draw_pipeline(deal_snapshot, p_close_won, value_share, n, n_draws, seed=seed)
    totals = np.asarray(booked_share, dtype=np.float64)[:, None] + new_deal_draws + pipeline
    return summarise(totals, threshold)


def summarise(totals: np.ndarray, threshold: float) -> AttainmentDraws:
    """P(below ``threshold``), mean and 10/50/90% quantiles of each row of draws."""
    p10, p50, p90 = np.quantile(totals, [0.1, 0.5, 0.9], axis=1)
    return AttainmentDraws(
        p_miss=(totals < threshold).mean(axis=1),
        expected=totals.mean(axis=1),
        p10=p10,
        p50=p50,
        p90=p90,
    )


def draw_pipeline(
    deal_snapshot: np.ndarray,
    p_close_won: np.ndarray,
    value_share: np.ndarray,
    n_snapshots: int,
    n_draws: int,
    *,
    seed: int = 0,
    draw_factor: np.ndarray | None = None,
) -> np.ndarray:
    """``(n_snapshots, n_draws)``: what each snapshot's open deals book in each draw.

    ``draw_factor`` (``(n_draws,)``, optional) multiplies every deal's probability in a
    draw: a shock common to all deals of that future (a good or a bad quarter), so sums
    over many deals spread as wide as past periods did, not as narrow as independent
    coin flips.

    Deal ``i`` always reads row ``i`` of one stream of uniforms (chunks only split the
    stream), so a deal given ``p_close_won = 0`` (a what-if without it) leaves every other
    deal's draws exactly as they were.
    """
    deal_snapshot = np.asarray(deal_snapshot, dtype=np.int64)
    if len(deal_snapshot) and np.any(np.diff(deal_snapshot) < 0):
        raise ValueError("deal rows must be sorted by snapshot")
    rng = np.random.default_rng(seed)
    pipeline = np.zeros((n_snapshots, n_draws))
    bounds = np.searchsorted(deal_snapshot, np.arange(n_snapshots + 1))
    per_chunk = max(1, CHUNK_CELLS // n_draws)
    start = 0
    while start < n_snapshots:
        # whole snapshots per chunk, about per_chunk deal rows
        stop = int(np.searchsorted(bounds, bounds[start] + per_chunk, side="right")) - 1
        stop = min(max(stop, start + 1), n_snapshots)
        lo, hi = bounds[start], bounds[stop]
        if hi > lo:
            p = p_close_won[lo:hi, None]
            if draw_factor is not None:
                p = np.minimum(p * draw_factor[None, :], 1.0)
            wins = rng.random((hi - lo, n_draws)) < p
            booked = wins * value_share[lo:hi, None]
            owners, first = np.unique(deal_snapshot[lo:hi], return_index=True)
            pipeline[owners] += np.add.reduceat(booked, first, axis=0)
        start = stop
    return pipeline


@dataclass(frozen=True)
class SnapshotDraws:
    """Each snapshot's drawn bookings by its period's end, in units of its scale (its quota
    for quota risk), split by where they come from; draw ``j`` of every snapshot is one
    joint future, so sums over snapshots draw by draw are draws of the sum."""

    booked: np.ndarray
    """``(n,)``: booked to date (closed won before ``as_of``): a fact, the same in every draw."""
    pipeline: np.ndarray
    """``(n, n_draws)``: from deals open at ``as_of``."""
    new: np.ndarray
    """``(n, n_draws)``: from deals not created yet."""

    def totals(self) -> np.ndarray:
        """``(n, n_draws)``: bookings by the period's end."""
        return self.booked[:, None] + self.new + self.pipeline

    def attainment(self, threshold: float) -> AttainmentDraws:
        """The quota-risk summary (scale = quota)."""
        return summarise(self.totals(), threshold)


def draw_snapshots(
    deals: pd.DataFrame,
    booked: np.ndarray,
    scale: np.ndarray,
    fractions: np.ndarray,
    teams: np.ndarray,
    rates: PeriodRates,
    *,
    draws: int,
    seed: int,
    excluded: frozenset[str] = frozenset(),
    pipeline_factor: np.ndarray | None = None,
    new_factor: np.ndarray | None = None,
) -> SnapshotDraws:
    """Draw the bookings of snapshots by their period's end: the one Monte Carlo of quota
    risk (scale = quota) and of the bookings forecast (which multiplies back to money).

    ``deals``: the snapshots' open deals, sorted by ``snapshot`` (position), with
    ``deal_id``, ``stage``, ``amount``, ``p_win``, ``days_left``, ``days_to_expected_close``.
    ``booked``: per snapshot, bookings to date in units of ``scale``.  A deal in
    ``excluded`` never closes (a what-if); every other draw stays as it was.
    ``pipeline_factor`` and ``new_factor`` (``(draws,)``, optional): per-draw shocks
    common to every snapshot, on the open deals' probabilities and on the new-deal
    bookings (:func:`draw_pipeline`).
    """
    position = deals["snapshot"].to_numpy(dtype=np.int64)
    p_win = np.nan_to_num(deals["p_win"].to_numpy(dtype=np.float64))
    p_close = p_win * rates.p_in_period(deals)
    if excluded:
        p_close = np.where(deals["deal_id"].isin(excluded).to_numpy(), 0.0, p_close)
    stages = deals["stage"].to_numpy(dtype=object)
    value = np.nan_to_num(deals["amount"].to_numpy(dtype=np.float64)) * rates.amount_change(stages)
    rng = np.random.default_rng(seed)
    new = rates.new_deal_draws(np.asarray(fractions), draws, rng, teams)
    if new_factor is not None:
        new = new * new_factor[None, :]
    scale = np.asarray(scale, dtype=np.float64)
    pipeline = draw_pipeline(
        position,
        p_close,
        value / scale[position],
        len(scale),
        draws,
        seed=seed,
        draw_factor=pipeline_factor,
    )
    return SnapshotDraws(np.asarray(booked, dtype=np.float64), pipeline, new)


def sum_by(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of draws summed per group, draw by draw: ``(labels, (n_groups, n_draws))``.

    A quantile of the sum is not the sum of quantiles (two reps at P10 together is rarer
    than 10%), so a team's or the company's interval is read from these summed draws.
    """
    labels, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    out = np.zeros((len(labels), values.shape[1]))
    np.add.at(out, codes, values)
    return labels, out
