"""Careers after the hire: pay reviews, managers who leave and are replaced, reassignments.

Causal story
------------
* **Pay reviews.**  Each AE's pay is reviewed about once a year, at the first quarter start
  after the anniversary of their hire or last review.  The raise grows with trailing
  attainment (a merit raise at 100%, more above, nothing below ``no_raise_below``) and
  sometimes also closes part of the rep's underpay gap (a market correction).  Market pay
  grows every year, so a rep who gets no raise drifts into underpay, and a strong rep whose
  raises lag their attainment stays underpaid: both feed the engagement target and the exit
  hazard (:mod:`~spm_ml.data.simulate.workforce`).  The raise changes ``base_pay`` from the
  quarter it takes effect.
* **Manager exits.**  A team manager leaves with a yearly hazard; their reps report to the
  regional director until the replacement (a new person with a new latent quality) arrives
  weeks later.  Engagement follows the quality of whoever manages the rep at the time, and a
  change of manager raises the exit hazard for a few months (disruption).
* **Reassignments.**  Now and then an AE and their seat (territory, focus) move to another
  team of the same region, under its manager.

Every change of manager or team is logged as ``(person, time, field, old, new)``; assembly
writes it to the ``rep_history`` table.  Changes apply to employed reps only, at midnight,
strictly after the hire and before the exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spm_ml.data.simulate import catalog, pay
from spm_ml.data.simulate.clock import MINUTES_PER_DAY
from spm_ml.data.simulate.config import SimulationConfig
from spm_ml.data.simulate.workforce import AE, MANAGER, People, Seats, underpay_gap

FIELD_MANAGER, FIELD_TEAM = 0, 1
MONTH = 30.44 * MINUTES_PER_DAY


def pay_reviews(
    people: People,
    employed: np.ndarray,
    t0: int,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Review the pay of the AEs in ``employed`` who are due at quarter start ``t0``.

    Raises ``pay_level`` in place and returns one row per review (raise 0 included), for
    ``truth["raises"]``.
    """
    k = config.pay
    period = k.review_months * MONTH
    # due: the first quarter start at least ~a year after the hire or the last review
    due = employed[(t0 - people.last_review[employed]) >= period - 0.5 * MONTH]
    n = len(due)
    market = pay.market_index(np.array([t0]), k)[0]
    att = people.att_ema[due]
    gap = underpay_gap(people, due, market)
    pct = k.merit_raise + k.merit_per_attainment * (np.clip(att, 0.5, 1.6) - 1.0)
    pct = pct + rng.normal(0.0, k.raise_sd, n)
    pct = np.where(att < k.no_raise_below, 0.0, np.clip(pct, 0.0, k.raise_cap))
    corrected = (gap > 0) & (rng.random(n) < k.market_correction_probability)
    pct = pct + np.where(corrected, k.market_correction_share * gap, 0.0)
    before = people.pay_level[due].copy()
    people.cols["pay_level"][due] = before * (1.0 + pct)
    people.cols["last_review"][due] = t0
    return {
        "rep": due,
        "time": np.full(n, t0, dtype=np.int64),
        "pay_level_before": before,
        "pay_level_after": people.pay_level[due].copy(),
        "raise_pct": pct,
        "trailing_attainment": att,
        "underpay_gap_before": gap,
        "market_correction": corrected,
    }


@dataclass
class ManagerChanges:
    """Manager exits, backfills and reassignments, and the log of every change they cause."""

    config: SimulationConfig
    rng: np.random.Generator
    pending: list[tuple[int, int, int]] = field(default_factory=list)
    """Replacements on their way: ``(arrival minute, team, new manager)``."""
    log: dict[str, list[int]] = field(
        default_factory=lambda: {k: [] for k in ("person", "time", "field", "old", "new")}
    )
    manager_exits: list[tuple[int, int, int]] = field(default_factory=list)
    """``(manager, exit minute, replacement)`` for the truth."""

    def month(self, people: People, seats: Seats, t0: int, t1: int) -> None:
        """Draw and apply the month's manager exits, arrivals and reassignments, in time order."""
        k = self.config.people
        events: list[tuple[int, int, int]] = []  # (time, kind, subject)
        managers = np.unique(seats.team_manager)
        managers = managers[(people.team[managers] >= 0) & (people.exit[managers] > t0)]
        monthly = 1.0 - (1.0 - k.manager_exit_per_year) ** (1.0 / 12.0)
        for m in managers[self.rng.random(len(managers)) < monthly]:
            time = _day_in(max(int(people.hire[m]), t0), t1, self.rng)
            if time is not None:
                events.append((time, 0, int(m)))
        aes = np.flatnonzero((people.role == AE) & (people.hire < t1) & (people.exit > t0))
        monthly = 1.0 - (1.0 - k.reassignment_per_year) ** (1.0 / 12.0)
        for r in aes[self.rng.random(len(aes)) < monthly]:
            time = _day_in(max(int(people.hire[r]), t0), t1, self.rng)
            if time is not None:
                events.append((time, 2, int(r)))
        for arrival, team, _new in self.pending:
            if arrival < t1:
                events.append((arrival, 1, team))
        events.sort()
        for time, kind, subject in events:
            if kind == 0:
                self._manager_leaves(people, seats, subject, time)
            elif kind == 1:
                self._manager_arrives(people, seats, subject, time)
            else:
                self._reassign(people, seats, subject, time)
        # a replacement due within the month of its predecessor's exit (only with short
        # backfill settings) arrives after the month's other changes
        for arrival, team, _new in sorted(self.pending):
            if arrival < t1:
                self._manager_arrives(people, seats, team, arrival)

    def _manager_leaves(self, people: People, seats: Seats, m: int, time: int) -> None:
        if time <= people.hire[m]:
            return
        team = int(people.team[m])
        director = int(people.manager[m])
        people.cols["exit"][m] = time
        people.cols["exit_reason"][m] = 1 if self.rng.random() < 0.75 else 2
        seats.team_manager[team] = director
        self._set_manager(people, np.flatnonzero(people.manager == m), director, time)
        lo, hi = self.config.people.manager_backfill_days
        arrival = time + int(self.rng.integers(lo, hi + 1)) * MINUTES_PER_DAY
        new = people.add(
            1,
            role=MANAGER,
            manager=director,
            region=people.region[m],
            team=team,
            hire=arrival,
            quality=self.rng.normal(0.0, 1.0),
            first=self.rng.integers(len(catalog.FIRST_NAMES)),
            last=self.rng.integers(len(catalog.LAST_NAMES)),
        )[0]
        self.pending.append((arrival, team, int(new)))
        self.manager_exits.append((m, time, int(new)))

    def _manager_arrives(self, people: People, seats: Seats, team: int, time: int) -> None:
        (new,) = [n for a, t, n in self.pending if t == team and a == time]
        self.pending = [p for p in self.pending if p[2] != new]
        director = int(people.manager[new])
        seats.team_manager[team] = new
        reps = np.flatnonzero(
            (people.role == AE) & (people.team == team) & (people.manager == director)
        )
        self._set_manager(people, reps, new, time)

    def _reassign(self, people: People, seats: Seats, r: int, time: int) -> None:
        if not (people.hire[r] < time < people.exit[r]):
            return
        seat = int(people.seat[r])
        here = int(people.team[r])
        others = np.flatnonzero(
            (seats.team_region == people.region[r]) & (np.arange(len(seats.team_region)) != here)
        )
        if len(others) == 0:
            return
        team = int(others[self.rng.integers(len(others))])
        seats.team[seat] = team
        self._log(np.array([r]), time, FIELD_TEAM, np.array([here]), team)
        people.cols["team"][r] = team
        self._set_manager(people, np.array([r]), int(seats.team_manager[team]), time)

    def _set_manager(self, people: People, reps: np.ndarray, new: int, time: int) -> None:
        """Give ``reps`` manager ``new`` from ``time``; log it for those employed then."""
        reps = reps[(people.exit[reps] > time) & (people.manager[reps] != new)]
        employed = reps[people.hire[reps] < time]
        self._log(employed, time, FIELD_MANAGER, people.manager[employed], new)
        people.cols["manager"][reps] = new
        people.cols["mgr_since"][employed] = time

    def _log(self, reps: np.ndarray, time: int, kind: int, old: np.ndarray, new: int) -> None:
        n = len(reps)
        self.log["person"] += [int(r) for r in reps]
        self.log["time"] += [time] * n
        self.log["field"] += [kind] * n
        self.log["old"] += [int(o) for o in old]
        self.log["new"] += [new] * n

    def changes(self) -> dict[str, np.ndarray]:
        """The log as arrays, in time order (ties keep the order they happened in)."""
        out = {k: np.asarray(v, dtype=np.int64) for k, v in self.log.items()}
        order = np.argsort(out["time"], kind="stable")
        return {k: v[order] for k, v in out.items()}


def _day_in(start: int, stop: int, rng: np.random.Generator) -> int | None:
    """A random midnight strictly after ``start`` and before ``stop`` (``None`` if none)."""
    first = start // MINUTES_PER_DAY + 1
    last = (stop - 1) // MINUTES_PER_DAY
    if last < first:
        return None
    return int(rng.integers(first, last + 1)) * MINUTES_PER_DAY
