"""Interventions: replay a simulated deal's future with one extra action, same random state.

The simulated organisation knows its causal drivers, so advice can be tested on it: take an
open deal, add one action at a date (an extra meeting, a demo, a call, one more buyer contact
engaged, an outbound email) and run the deal's future again.  :func:`replay_outcomes` returns,
for each :class:`Intervention`, the outcome without it (which is the organisation's own) and
with it.

Common random numbers
---------------------
A cohort's deals share one generator, drawn vector-wise step by step, so simply re-running a
cohort with one deal changed would not give that deal the same luck: as soon as the changed
deal draws a different number of values (a Poisson count at a new rate consumes a different
amount of the stream; a deal that lives one step longer takes one more value of every draw),
every later draw of the cohort shifts, and the "with" future is an independent sample rather
than the same future with one thing changed.  The difference of two independent Bernoulli
outcomes per deal would bury effects of a few points under +-6 points of noise on 500 deals.

Instead, each deal keeps its own random numbers.  The engine tells us (``on_cohort``) the
generator's state before each cohort; the cohort is run again from that state, drawing exactly
as the organisation did, while a recorder keeps the values drawn for the deals of interest, by
*site* (what the value is for: the loss draw, the health noise, the meeting count...) and step.
The deals are then run again alone (vectorised over all replays, each a row of its own: rows
never share a value, so they cannot disturb each other), each draw taking:

* the recorded value when the deal drew one at that site and step (uniforms and normals are
  reused as they are);
* for a Poisson count whose rate changed (the deal's health moved), the count at the new rate
  from the same quantile: a uniform ``u`` is placed in the recorded count's CDF interval at the
  old rate and inverted at the new rate (a monotone coupling: the same count when the rate is
  unchanged, a count at least as high when the rate rose);
* a fresh value when the baseline drew none there (the deal lives longer, slips where it did
  not): a hash of (seed, deal, site, step), so every replay of one deal shares these too.

A replay without intervention therefore reproduces the organisation exactly (tested deal by
deal), and the replays of one deal with different actions share all their luck: their outcomes
differ only where the action changed the course of the deal.

Outcomes are the deal lifecycle's (``won`` and the close time it drew); a close moved by
quarter-end timing (``pulled_in`` / ``pushed_out`` in the truth) is not re-simulated.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from spm_ml.data.simulate import engine, lifecycle
from spm_ml.data.simulate.clock import MINUTES_PER_DAY
from spm_ml.data.simulate.config import SimulationConfig

logger = logging.getLogger(__name__)

Action = Literal["meeting", "demo", "call", "contact", "outbound_email"]
ACTIONS: dict[str, int] = {
    "meeting": lifecycle.ACT_MEETING,
    "demo": lifecycle.ACT_DEMO,
    "call": lifecycle.ACT_CALL,
    "contact": lifecycle.ACT_CONTACT,
    "outbound_email": lifecycle.ACT_EMAIL,
}
"""Action name -> the simulator's code (see :class:`~.lifecycle.Nudges` for what each does)."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Intervention:
    """One extra ``action`` on deal ``deal_id`` (a simulated deal id) in its step containing
    ``at``; it has no effect unless the deal is open at ``at``."""

    deal_id: str
    at: pd.Timestamp
    action: Action


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Recorder(lifecycle.Draws):
    """Draws as the organisation did, keeping the values of the watched deals."""

    def __init__(self, rng: np.random.Generator, n: int, watch: np.ndarray, steps: int) -> None:
        super().__init__(rng)
        self.slot = np.full(n, -1, dtype=np.int64)
        self.slot[watch] = np.arange(len(watch))
        self.shape = (len(watch), steps + 1)
        self.values: dict[str, np.ndarray] = {}
        self.rates: dict[str, np.ndarray] = {}

    def _keep(self, site: str, k: int, rows: np.ndarray, values: np.ndarray, lam=None):
        slot = self.slot[rows]
        ok = slot >= 0
        if ok.any():
            store = self.values.setdefault(site, np.full(self.shape, np.nan))
            store[slot[ok], k + 1] = values[ok]
            if lam is not None:
                rates = self.rates.setdefault(site, np.full(self.shape, np.nan))
                rates[slot[ok], k + 1] = lam[ok]
        return values

    def random(self, site, k, rows):
        return self._keep(site, k, rows, super().random(site, k, rows))

    def normal(self, site, k, rows, loc, scale):
        return self._keep(site, k, rows, super().normal(site, k, rows, loc, scale))

    def uniform(self, site, k, rows, low, high):
        return self._keep(site, k, rows, super().uniform(site, k, rows, low, high))

    def integers(self, site, k, rows, low, high):
        return self._keep(site, k, rows, super().integers(site, k, rows, low, high))

    def poisson(self, site, k, rows, lam):
        lam = np.asarray(lam, dtype=float)
        return self._keep(site, k, rows, super().poisson(site, k, rows, lam), lam)


class _Replayer(lifecycle.Draws):
    """Each row's own recorded draws; coupled or hashed fresh values where they run out."""

    def __init__(
        self,
        values: dict[str, np.ndarray],
        rates: dict[str, np.ndarray],
        key: np.ndarray,
        salt: int,
    ) -> None:
        super().__init__(np.random.default_rng(0))  # never drawn from
        self.values, self.rates = values, rates
        self.key = _splitmix(np.uint64(salt & 0xFFFFFFFFFFFFFFFF) ^ key.astype(np.uint64))

    def _fresh(self, site: str, k: int, rows: np.ndarray) -> np.ndarray:
        site_id = np.uint64(zlib.crc32(site.encode()))
        x = _splitmix(self.key[rows] ^ (site_id << np.uint64(20)) ^ np.uint64(k + 1))
        return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53

    def _take(self, site: str, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        store = self.values.get(site)
        if store is None:
            return np.full(len(rows), np.nan), np.ones(len(rows), dtype=bool)
        v = store[rows, k + 1]
        return v, np.isnan(v)

    def _uniforms(self, site, k, rows, fresh_to) -> np.ndarray:
        v, miss = self._take(site, k, rows)
        if miss.any():
            v = v.copy()
            v[miss] = fresh_to(self._fresh(site, k, rows[miss]))
        return v

    def random(self, site, k, rows):
        return self._uniforms(site, k, rows, lambda u: u)

    def normal(self, site, k, rows, loc, scale):
        return self._uniforms(site, k, rows, lambda u: loc + scale * special.ndtri(u))

    def uniform(self, site, k, rows, low, high):
        return self._uniforms(site, k, rows, lambda u: low + (high - low) * u)

    def integers(self, site, k, rows, low, high):
        v = self._uniforms(site, k, rows, lambda u: low + np.floor(u * (high - low)))
        return v.astype(np.int64)

    def poisson(self, site, k, rows, lam):
        lam = np.asarray(lam, dtype=float)
        count, miss = self._take(site, k, rows)
        out = np.zeros(len(rows), dtype=np.int64)
        rates = self.rates.get(site)
        old = rates[rows, k + 1] if rates is not None else np.full(len(rows), np.nan)
        same = ~miss & (old == lam)
        out[same] = count[same]
        moved = ~miss & ~same
        u = np.empty(len(rows))
        if moved.any():
            # the recorded count's quantile at the old rate, carried to the new rate
            c, lo_rate = count[moved], old[moved]
            lo = stats.poisson.cdf(c - 1, lo_rate)
            hi = stats.poisson.cdf(c, lo_rate)
            u[moved] = lo + self._fresh(site, k, rows[moved]) * (hi - lo)
        if miss.any():
            u[miss] = self._fresh(site, k, rows[miss])
        new = moved | miss
        if new.any():
            q = np.clip(u[new], 1e-300, 1.0 - 1e-15)
            rate = lam[new]
            drawn = np.where(rate > 0, stats.poisson.ppf(q, np.maximum(rate, 1e-300)), 0.0)
            out[new] = drawn.astype(np.int64)
        return out


@dataclass
class _Cohorts:
    """What the engine showed us: each cohort's first deal, inputs and generator state."""

    offsets: list[int]
    cohorts: list[lifecycle.DealCohort]
    states: list[dict]

    def add(self, offset: int, cohort: lifecycle.DealCohort, state: dict) -> None:
        self.offsets.append(offset)
        self.cohorts.append(cohort)
        self.states.append(state)


def _deal_index(deal_id: str) -> int:
    if not (deal_id.startswith("D") and deal_id[1:].isdigit()):
        raise ValueError(f"{deal_id!r} is not a simulated deal id (D followed by digits)")
    return int(deal_id[1:])


def replay_outcomes(
    config: SimulationConfig,
    interventions: Sequence[Intervention],
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Outcome of each intervention's deal without and with it, from the same random state.

    Parameters
    ----------
    config
        The configuration that simulated the organisation (``simulate(config)``).
    interventions
        Deals, dates and actions; each is replayed in isolation.
    progress
        Optional ``progress(stage, done, total)``: ``"simulate"`` (months of the engine run
        that recovers the cohorts) then ``"replay"`` (cohorts recorded).

    Returns
    -------
    pandas.DataFrame
        One row per intervention, in order: ``deal_id``, ``action``, ``at``, ``applied`` (the
        deal was open at ``at``; otherwise nothing changes), ``won_baseline``, ``won_with``,
        ``closed_at_baseline``, ``closed_at_with``.

    Examples
    --------
    >>> cfg = SimulationConfig(n_reps=12, months=12, seed=5)  # doctest: +SKIP
    >>> replay_outcomes(  # doctest: +SKIP
    ...     cfg, [Intervention("D0001234", pd.Timestamp("2024-11-02"), "demo")]
    ... )
    """
    unknown = {iv.action for iv in interventions} - set(ACTIONS)
    if unknown:
        raise ValueError(f"unknown actions {sorted(unknown)}; expected one of {list(ACTIONS)}")
    deal = np.array([_deal_index(iv.deal_id) for iv in interventions], dtype=np.int64)
    if len(deal) == 0:
        return _frame(interventions, *(np.zeros(0, bool),) * 3, None, None)
    seen = _Cohorts([], [], [])
    raw = engine.run(config, progress, on_cohort=seen.add)
    if deal.max() >= len(raw.deals):
        raise ValueError(f"D{deal.max():07d} is not a deal of this organisation")
    knobs = config.deals
    in_rate = np.asarray(config.email.inbound_per_week)
    out_rate = np.asarray(config.email.outbound_per_week)

    # 1. record the draws of every deal involved, cohort by cohort, from the saved states
    distinct = np.unique(deal)
    which = np.searchsorted(np.asarray(seen.offsets), distinct, side="right") - 1
    parts: list[tuple[int, np.ndarray, _Recorder]] = []
    inputs: list[lifecycle.DealCohort] = []
    close0, won0 = [], []
    todo = np.unique(which)
    for done, c in enumerate(todo, start=1):
        pos = distinct[which == c] - seen.offsets[c]
        cohort = seen.cohorts[c]
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = seen.states[c]
        rec = _Recorder(rng, len(cohort.segment), pos, knobs.max_steps)
        state = lifecycle.run_steps(cohort, knobs, in_rate, out_rate, rec)
        parts.append((c, pos, rec))
        inputs.append(_rows(cohort, pos))
        close0.append(state.close[pos])
        won0.append(state.won[pos])
        if progress is not None:
            progress("replay", done, len(todo))
    # a site a cohort's watched deals never drew at (no slip at all...) has no values for them
    values = _stack([rec.values for _, _, rec in parts], [rec.shape for _, _, rec in parts])
    rates = _stack([rec.rates for _, _, rec in parts], [rec.shape for _, _, rec in parts])
    base = _concat(inputs)
    close0 = np.concatenate(close0)

    # 2. replay: one row per distinct deal (no intervention), then one per intervention
    src = np.concatenate([np.arange(len(distinct)), np.searchsorted(distinct, deal)])
    n_base = len(distinct)
    clock = raw.clock
    at = np.array([_minutes(iv.at, clock.start) for iv in interventions], dtype=np.int64)
    action = np.array([ACTIONS[iv.action] for iv in interventions], dtype=np.int64)
    cohort = _rows(base, src)
    step_len = lifecycle.deal_step_days(cohort, knobs) * MINUTES_PER_DAY
    created = cohort.created[n_base:]
    applied = (at >= created) & (at < close0[src[n_base:]])
    step = np.full(len(src), -1, dtype=np.int64)
    step[n_base:] = np.where(applied, (at - created) // step_len[n_base:], -1)
    act = np.full(len(src), -1, dtype=np.int64)
    act[n_base:] = action
    draws = _Replayer(
        {s: v[src] for s, v in values.items()},
        {s: v[src] for s, v in rates.items()},
        distinct[src],
        config.seed,
    )
    state = lifecycle.run_steps(
        cohort, knobs, in_rate, out_rate, draws, lifecycle.Nudges(step=step, action=act)
    )
    mismatch = (state.won[:n_base] != np.concatenate(won0)) | (state.close[:n_base] != close0)
    if mismatch.any():
        raise RuntimeError(f"{mismatch.sum()} baseline replays differ from the organisation")
    b = src[n_base:]
    return _frame(
        interventions,
        applied,
        state.won[b],
        state.won[n_base:],
        clock.to_datetime(state.close[b]),
        clock.to_datetime(state.close[n_base:]),
    )


def _minutes(at: pd.Timestamp, start: pd.Timestamp) -> int:
    at = pd.Timestamp(at)
    if at.tzinfo is not None:
        at = at.tz_convert("UTC").tz_localize(None)
    return int((at - start) // pd.Timedelta(minutes=1))


def _rows(cohort: lifecycle.DealCohort, pos: np.ndarray) -> lifecycle.DealCohort:
    return lifecycle.DealCohort(**{f.name: getattr(cohort, f.name)[pos] for f in fields(cohort)})


def _stack(stores: list[dict[str, np.ndarray]], shapes: list[tuple[int, int]]):
    sites = {site for store in stores for site in store}
    return {
        site: np.concatenate(
            [
                store.get(site, np.full(shape, np.nan))
                for store, shape in zip(stores, shapes, strict=True)
            ]
        )
        for site in sites
    }


def _concat(parts: list[lifecycle.DealCohort]) -> lifecycle.DealCohort:
    return lifecycle.DealCohort(
        **{
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in fields(lifecycle.DealCohort)
        }
    )


def _frame(interventions, applied, won_base, won_with, close_base, close_with) -> pd.DataFrame:
    n = len(interventions)
    empty = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    return pd.DataFrame(
        {
            "deal_id": [iv.deal_id for iv in interventions],
            "action": [iv.action for iv in interventions],
            "at": pd.to_datetime([pd.Timestamp(iv.at) for iv in interventions]),
            "applied": np.asarray(applied, dtype=bool),
            "won_baseline": np.asarray(won_base, dtype=bool),
            "won_with": np.asarray(won_with, dtype=bool),
            "closed_at_baseline": empty if close_base is None else close_base,
            "closed_at_with": empty if close_with is None else close_with,
        }
    )
