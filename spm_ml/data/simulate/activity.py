"""Rep activity that follows the rep's engagement at the time it happens.

A deal's activities are drawn when the deal is created (:mod:`~spm_ml.data.simulate.lifecycle`),
but whether a rep actually makes a call or sends the follow-up depends on how engaged they
are *then*.  Once the monthly loop has run, every rep-driven activity is kept with
probability ``exp(a * min(engagement - pivot, 0))``, with the engagement of the deal's owner
in the activity's month, checked out from the very day they decided to leave
(``a`` = ``PeopleKnobs.activity_from_engagement``; meetings and demos, which the buyer also
has to want, at half strength; inbound email untouched).  Engaged reps keep everything;
disengaged ones, and above all reps who have decided to leave, visibly slow down in their
last months.

The draw is a hash of the event itself (deal or rep, and minute), not a random stream, so an
outbound email and the ``email`` activity that logs it are kept or dropped together.

Known simplification: the deal's health was simulated with the activity drawn at creation,
so a deal does not suffer from its owner slowing down; only what is logged does.
"""

from __future__ import annotations

import numpy as np

from spm_ml.data.simulate.clock import Clock
from spm_ml.data.simulate.config import PeopleKnobs
from spm_ml.data.simulate.lifecycle import ACT_DEMO, ACT_MEETING

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def engagement_grid(rep_months: dict[str, np.ndarray], n_people: int, n_months: int) -> np.ndarray:
    """Engagement by ``[person, month]`` from the loop's monthly state (0 where not employed)."""
    grid = np.zeros((n_people, n_months))
    grid[rep_months["rep"], rep_months["month"]] = rep_months["engagement"]
    return grid


def engagement_at(
    owner: np.ndarray,
    time: np.ndarray,
    grid: np.ndarray,
    decided: np.ndarray,
    clock: Clock,
    knobs: PeopleKnobs,
) -> np.ndarray:
    """The owner's engagement at ``time``: the month's, checked out from a decision to leave
    taken earlier that month (later months already carry the drop)."""
    month = np.clip(clock.month_of(time), 0, grid.shape[1] - 1)
    when = decided[owner]
    same_month = (time >= when) & (clock.month_of(np.minimum(when, clock.end - 1)) == month)
    return grid[owner, month] + knobs.engagement_when_leaving * same_month


def keep_probability(
    engagement: np.ndarray, strength: np.ndarray | float, knobs: PeopleKnobs
) -> np.ndarray:
    """Share of planned activity a rep with this engagement actually does (1 when engaged)."""
    below = np.minimum(engagement - knobs.activity_pivot, 0.0)
    return np.exp(knobs.activity_from_engagement * strength * below)


def kept(
    owner: np.ndarray,
    time: np.ndarray,
    key: np.ndarray,
    act_type: np.ndarray | None,
    grid: np.ndarray,
    decided: np.ndarray,
    clock: Clock,
    knobs: PeopleKnobs,
    salt: int,
) -> np.ndarray:
    """Which events survive: ``owner`` did it at ``time``; ``key`` (deal or rep) and ``time``
    seed the draw.  ``act_type`` gives meetings and demos half strength (``None``: full)."""
    engagement = engagement_at(owner, time, grid, decided, clock, knobs)
    strength = 1.0
    if act_type is not None:
        strength = np.where((act_type == ACT_MEETING) | (act_type == ACT_DEMO), 0.5, 1.0)
    return _uniform(key, time, salt) < keep_probability(engagement, strength, knobs)


def _uniform(key: np.ndarray, time: np.ndarray, salt: int) -> np.ndarray:
    """A uniform number in [0, 1) per ``(key, time)``: splitmix64 of the pair."""
    with np.errstate(over="ignore"):
        x = (
            np.asarray(key, np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            + np.asarray(time, np.int64).astype(np.uint64)
            + np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
        ) & _MASK64
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)
