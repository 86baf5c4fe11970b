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

import copy
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from spm_ml.forecast.rates import PeriodRates


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

    Deal ``i`` always reads row ``i`` of one stream of uniforms (``default_rng(seed)``'s,
    row-major over deals x draws), so a deal given ``p_close_won = 0`` (a what-if without
    it) leaves every other deal's draws exactly as they were.  The uniforms are drawn a
    block of deals at a time into one buffer and read by a compiled kernel; from
    :data:`PARALLEL_CELLS` cells, whole snapshots are spread over the cores, each part
    reading the stream from its own first deal's row (its generator advanced there), so
    the numbers do not depend on the number of parts.
    """
    deal_snapshot = np.asarray(deal_snapshot, dtype=np.int64)
    if len(deal_snapshot) and np.any(np.diff(deal_snapshot) < 0):
        raise ValueError("deal rows must be sorted by snapshot")
    rng = np.random.default_rng(seed)
    pipeline = np.zeros((n_snapshots, n_draws))
    bounds = np.searchsorted(deal_snapshot, np.arange(n_snapshots + 1))
    p = np.ascontiguousarray(p_close_won, dtype=np.float64)
    value = np.ascontiguousarray(value_share, dtype=np.float64)
    shocked = draw_factor is not None
    factor = np.ascontiguousarray(draw_factor if shocked else np.ones(n_draws), dtype=np.float64)
    cells = int(bounds[-1] - bounds[0]) * n_draws
    parts = _snapshot_parts(bounds, max(1, min(os.cpu_count() or 1, cells // PARALLEL_CELLS)))
    block = max(1, BLOCK_CELLS // max(n_draws, 1))

    def run(part: tuple[int, int]) -> None:
        first, stop = part
        lo, hi = int(bounds[first]), int(bounds[stop])
        generator = np.random.Generator(copy.deepcopy(rng.bit_generator))
        generator.bit_generator.advance((lo - int(bounds[0])) * n_draws)
        widest = int(np.diff(bounds[first : stop + 1]).max(initial=0))
        booked = np.empty((widest, n_draws))
        uniforms = np.empty(min(block, hi - lo) * n_draws)
        for start in range(lo, hi, block):
            rows = min(block, hi - start)
            drawn = uniforms[: rows * n_draws]
            generator.random(out=drawn)
            deals = (start, rows, deal_snapshot, bounds)
            _book_deals(drawn, *deals, p, value, factor, shocked, booked, pipeline)

    if len(parts) == 1:
        run(parts[0])
    else:
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(run, parts))
    return pipeline


PARALLEL_CELLS = 4_000_000
"""Deal rows x draws from which :func:`draw_pipeline` spreads the draws over the cores
(fewer: the calling thread alone, as a request's few deals want)."""
BLOCK_CELLS = 1_000_000
"""Uniforms drawn at once per part (8 MB)."""


def _snapshot_parts(bounds: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """``parts`` ranges of whole snapshots ``[first, stop)`` holding about as many deal rows."""
    n = len(bounds) - 1
    targets = bounds[0] + (bounds[-1] - bounds[0]) * np.arange(1, parts) / parts
    cuts = np.unique(np.clip(np.searchsorted(bounds, targets), 0, n))
    edges = [0, *[int(c) for c in cuts if 0 < c < n], n]
    return list(zip(edges[:-1], edges[1:], strict=True))


@numba.njit(cache=True, nogil=True)
def _book_deals(
    uniforms, start, rows, deal_snapshot, bounds, p, value, factor, shocked, booked, pipeline
):  # pragma: no cover
    """Deals ``start`` to ``start + rows`` (``uniforms``: their rows of the stream): each
    closes won in draw ``j`` when its uniform is below its probability (times ``factor[j]``,
    at most 1, when ``shocked``), booking its value in ``booked[j, its place in its
    snapshot, j]``; a snapshot's last deal adds the snapshot's sum to ``pipeline``, summed as
    numpy's ``add.reduceat`` over deal rows sums (the first row plus the pairwise sum of
    the rest), so the floats are numpy's ``(u < p) * value`` summed per snapshot.  Rows are
    written and summed whole (every draw at once): a column at a time strode a page per
    value at a million deals."""
    n_draws = pipeline.shape[1]
    total = np.empty(n_draws)
    partial = np.empty((8, n_draws))
    lefts = np.empty((64, n_draws))
    for row in range(rows):
        deal = start + row
        snapshot = deal_snapshot[deal]
        place = deal - bounds[snapshot]
        chance, worth = p[deal], value[deal]
        offset = row * n_draws
        for j in range(n_draws):
            q = chance
            if shocked:
                q = chance * factor[j]
                if q > 1.0:
                    q = 1.0
            won = 1.0 if uniforms[offset + j] < q else 0.0
            booked[place, j] = won * worth
        if deal == bounds[snapshot + 1] - 1:
            _pairwise_rows(booked, 1, place, total, partial, lefts)
            for j in range(n_draws):
                pipeline[snapshot, j] += booked[0, j] + total[j]


@numba.njit(cache=True, nogil=True)
def _pairwise_rows(rows, start, n, out, partial, lefts):  # pragma: no cover
    """``out[j]``: numpy's pairwise summation of ``rows[start:start + n, j]``
    (``pairwise_sum_DOUBLE``: blocks of 8 partial sums up to 128 values, halves above), for
    every column at once; the recursion unrolled on a stack (numba's cache mishandles
    recursive functions).  ``partial`` (8 rows) and ``lefts`` (64) are scratch."""
    if n <= PAIRWISE_BLOCK:
        _pairwise_block(rows, start, n, out, partial)
        return
    starts = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    phases = np.zeros(64, dtype=np.int64)
    depth, starts[0], sizes[0] = 0, start, n
    while depth >= 0:
        size = sizes[depth]
        if size <= PAIRWISE_BLOCK:
            _pairwise_block(rows, starts[depth], size, out, partial)
            depth -= 1
            continue
        half = size // 2
        half -= half % 8
        if phases[depth] == 0:  # the first half
            phases[depth] = 1
            starts[depth + 1], sizes[depth + 1], phases[depth + 1] = starts[depth], half, 0
            depth += 1
        elif phases[depth] == 1:  # the first half's sum is in `out`: the second half
            lefts[depth, :] = out
            phases[depth] = 2
            starts[depth + 1], sizes[depth + 1] = starts[depth] + half, size - half
            phases[depth + 1] = 0
            depth += 1
        else:
            out[:] = lefts[depth] + out
            depth -= 1


PAIRWISE_BLOCK = 128
"""numpy's ``PW_BLOCKSIZE``: runs up to this long are summed in 8 partial sums."""


@numba.njit(cache=True, nogil=True)
def _pairwise_block(rows, start, n, out, partial):  # pragma: no cover
    if n < 8:
        out[:] = 0.0
        for i in range(start, start + n):
            out += rows[i]
        return
    for k in range(8):
        partial[k, :] = rows[start + k]
    i = 8
    while i < n - (n % 8):
        for k in range(8):
            partial[k, :] += rows[start + i + k]
        i += 8
    out[:] = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + (
        (partial[4] + partial[5]) + (partial[6] + partial[7])
    )
    while i < n:
        out += rows[start + i]
        i += 1


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
