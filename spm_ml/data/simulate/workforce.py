"""The people: org chart, latent rep state, its monthly drift, attrition and backfill hires.

Causal story (people side)
--------------------------
* Every AE has a latent **skill** (rises during the first year, then drifts slowly) and
  **engagement** (mean-reverting towards a target).  Every manager has a fixed latent
  **quality**.
* The engagement target rises with manager quality and recent attainment and falls after a
  quota hike and when the rep is **underpaid** for their attainment (market pay for a rep's
  trailing attainment minus their pay level).  People leave managers: bad managers lower
  engagement, and also raise the hazard directly.
* The monthly **voluntary attrition** hazard is a logistic function of low engagement, bad
  manager, underpay, a recent hike, low attainment, tenure past 18 months (poaching) and a
  recent change of manager.  A rep who decides to leave goes ``notice_days`` later and checks
  out meanwhile (engagement drops; activity follows engagement, so they slow down).
  **Involuntary** exits follow two full quarters in a row below the performance threshold.
* Leavers are **backfilled** into the same seat (team, territory) 3-10 weeks later, so
  headcount stays about ``n_reps``.  Team managers leave and are replaced, and reps are
  sometimes moved between teams (:mod:`~spm_ml.data.simulate.careers`); directors and the
  VP do not leave.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from spm_ml.data.simulate import catalog, pay
from spm_ml.data.simulate.clock import MINUTES_PER_DAY
from spm_ml.data.simulate.config import SimulationConfig

logger = logging.getLogger(__name__)

NEVER = np.iinfo(np.int64).max // 4
AE, MANAGER = 0, 1
FOCUS_LABELS = ("SMB", "Mid-Market", "Enterprise")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Seats:
    """AE seats: a team, a region, a segment focus and a territory with its potential."""

    team: np.ndarray
    region: np.ndarray
    focus: np.ndarray
    potential: np.ndarray
    """True territory potential (multiplies pipeline creation)."""
    potential_estimate: np.ndarray
    """What the quota-setter believes the potential is."""
    team_names: list[str]
    team_region: np.ndarray
    team_manager: np.ndarray
    """Current manager of each team (the regional director while a manager is being replaced)."""
    occupant: np.ndarray
    """Person currently (or last) in the seat."""


@dataclass
class People:
    """Everyone who ever worked in the organisation, as growable column arrays."""

    n: int = 0
    cols: dict[str, np.ndarray] = field(default_factory=dict)

    SPEC = {
        "role": np.int8,
        "manager": np.int64,
        "team": np.int64,
        "region": np.int64,
        "seat": np.int64,
        "hire": np.int64,
        "exit": np.int64,
        "exit_reason": np.int8,
        "skill": np.float64,
        "engagement": np.float64,
        "pay_level": np.float64,
        "quality": np.float64,
        "first": np.int64,
        "last": np.int64,
        "hike_mult": np.float64,
        "hike_until": np.int64,
        "last_att": np.float64,
        "prev_att": np.float64,
        "att_ema": np.float64,
        "on_plan": np.bool_,
        "last_review": np.int64,
        "mgr_since": np.int64,
        "resigning": np.bool_,
        "decided": np.int64,
    }

    def __post_init__(self) -> None:
        for name, dtype in self.SPEC.items():
            self.cols[name] = np.zeros(64, dtype=dtype)

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("cols")
        if cols is not None and name in cols:
            return cols[name][: self.__dict__["n"]]
        raise AttributeError(name)

    def add(self, k: int, **values: np.ndarray | float | int) -> np.ndarray:
        """Append ``k`` people; unspecified columns get neutral defaults.  Returns their ids."""
        need = self.n + k
        cap = len(self.cols["role"])
        if need > cap:
            new_cap = max(need, 2 * cap)
            for name, arr in self.cols.items():
                grown = np.zeros(new_cap, dtype=arr.dtype)
                grown[:cap] = arr
                self.cols[name] = grown
        idx = np.arange(self.n, need)
        defaults = {
            "manager": -1,
            "team": -1,
            "region": -1,
            "seat": -1,
            "exit": NEVER,
            "hike_mult": 1.0,
            "hike_until": -NEVER,
            "mgr_since": -NEVER,
            "decided": NEVER,
            "last_att": np.nan,
            "prev_att": np.nan,
            "att_ema": 1.0,
        }
        for name in self.SPEC:
            value = values.get(name, defaults.get(name, 0))
            self.cols[name][idx] = value
        self.n = need
        return idx


def build_org(config: SimulationConfig, rng: np.random.Generator) -> tuple[People, Seats, int]:
    """Create the VP, regional directors, team managers and the initial AEs.

    Returns the people, the seats and the number of regions used.  Initial AEs were hired
    before the simulation starts (tenure drawn from a gamma distribution), so tenure and
    skill are mixed from day one.
    """
    n_teams = math.ceil(config.n_reps / config.reps_per_manager)
    n_regions = min(config.max_regions, n_teams, len(catalog.REGIONS))
    focus_of_team = _allocate(config.deals.team_focus_shares, n_teams)
    rng.shuffle(focus_of_team)
    team_region = np.arange(n_teams) % n_regions
    counters: dict[tuple[int, int], int] = {}
    team_names = []
    for t in range(n_teams):
        key = (int(team_region[t]), int(focus_of_team[t]))
        counters[key] = counters.get(key, 0) + 1
        team_names.append(f"{catalog.REGIONS[key[0]]} {FOCUS_LABELS[key[1]]} {counters[key]}")

    people = People()

    def names(k: int) -> dict[str, np.ndarray]:
        return {
            "first": rng.integers(len(catalog.FIRST_NAMES), size=k),
            "last": rng.integers(len(catalog.LAST_NAMES), size=k),
        }

    vp = people.add(
        1,
        role=MANAGER,
        hire=-2191 * MINUTES_PER_DAY,
        quality=0.5,
        team=-1,
        region=-1,
        **names(1),
    )[0]
    directors = people.add(
        n_regions,
        role=MANAGER,
        manager=vp,
        region=np.arange(n_regions),
        team=-1,
        hire=-rng.integers(3 * 365, 8 * 365, n_regions) * MINUTES_PER_DAY,
        quality=rng.normal(0.3, 0.5, n_regions),
        **names(n_regions),
    )
    managers = people.add(
        n_teams,
        role=MANAGER,
        manager=directors[team_region],
        region=team_region,
        team=np.arange(n_teams),
        hire=-rng.integers(550, 7 * 365, n_teams) * MINUTES_PER_DAY,
        quality=rng.normal(0.0, 1.0, n_teams),
        **names(n_teams),
    )

    seat_team = np.arange(config.n_reps) % n_teams
    potential = np.exp(rng.normal(0.0, config.pay.territory_sd, config.n_reps))
    estimate = potential * np.exp(rng.normal(0.0, config.pay.territory_estimate_sd, config.n_reps))
    seats = Seats(
        team=seat_team,
        region=team_region[seat_team],
        focus=focus_of_team[seat_team],
        potential=potential,
        potential_estimate=estimate,
        team_names=team_names,
        team_region=team_region,
        team_manager=managers,
        occupant=np.full(config.n_reps, -1, dtype=np.int64),
    )
    k = config.n_reps
    mean_tenure = config.people.initial_tenure_mean_years
    tenure_years = rng.gamma(2.0, mean_tenure / 2.0, size=k)
    tenure_months = tenure_years * 12
    skill = rng.normal(-0.25, 0.35, k) + np.minimum(tenure_months, 12) * (
        config.people.skill_ramp_per_month
    )
    hired = -(np.ceil(tenure_years * 365.25) + 1).astype(np.int64) * MINUTES_PER_DAY
    review = int(config.pay.review_months * 30.44 * MINUTES_PER_DAY)
    ids = people.add(
        k,
        role=AE,
        manager=managers[seat_team],
        team=seat_team,
        region=seats.region,
        seat=np.arange(k),
        hire=hired,
        last_review=hired + (-hired // review) * review,
        skill=skill,
        engagement=rng.normal(0.0, 0.6, k),
        pay_level=_pay_levels(k, config, rng),
        **names(k),
    )
    seats.occupant[:] = ids
    return people, seats, n_regions


def _allocate(shares: tuple[float, ...], n: int) -> np.ndarray:
    """Largest-remainder allocation of ``n`` items to categories with the given shares."""
    raw = np.asarray(shares) / np.sum(shares) * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts))[: n - counts.sum()]:
        counts[i] += 1
    return np.repeat(np.arange(len(shares)), counts)


def _pay_levels(k: int, config: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    level = rng.normal(1.0, config.people.pay_level_sd, k)
    underpaid = rng.random(k) < config.people.underpaid_share
    return np.where(underpaid, level * 0.85, level)


def hire(
    people: People,
    seats: Seats,
    seat: np.ndarray,
    minute: np.ndarray,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Hire new AEs into ``seat`` at ``minute``: low skill that ramps, honeymoon engagement."""
    k = len(seat)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    ids = people.add(
        k,
        role=AE,
        manager=seats.team_manager[seats.team[seat]],
        team=seats.team[seat],
        region=seats.region[seat],
        seat=seat,
        hire=minute,
        skill=rng.normal(-0.25, 0.35, k),
        engagement=rng.normal(0.3, 0.45, k),
        pay_level=_pay_levels(k, config, rng) * pay.market_index(minute, config.pay),
        last_review=minute,
        first=rng.integers(len(catalog.FIRST_NAMES), size=k),
        last=rng.integers(len(catalog.LAST_NAMES), size=k),
    )
    seats.occupant[seat] = ids
    return ids


def underpay_gap(people: People, idx: np.ndarray, market_index: float = 1.0) -> np.ndarray:
    """How far below market a rep is paid, as a share of market pay for their attainment.

    Market pay rises with trailing attainment: a strong rep paid at an average level is
    underpaid; a weak rep paid at an average level is not.  It also rises with time
    (``market_index``, see :func:`~spm_ml.data.simulate.pay.market_index`): without raises a
    rep drifts into underpay.
    """
    att = np.clip(people.att_ema[idx], 0.5, 1.6)
    market = (1.0 + 0.35 * (att - 1.0)) * market_index
    return np.maximum(0.0, market - people.pay_level[idx]) / market


def drift_and_attrition(
    people: People,
    idx: np.ndarray,
    month_start: int,
    month_end: int,
    config: SimulationConfig,
    rng: np.random.Generator,
    month_starts: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One month of latent drift for AEs ``idx`` and their exit draws.

    Updates skill and engagement in place.  A rep who decides to leave this month gets an
    ``exit`` (voluntary) ``notice_days`` later and checks out (engagement drops by
    ``engagement_when_leaving`` and stays down until the exit); a rep let go leaves within
    the month.  Returns the month's latent state (for ``truth['rep_months']``).
    ``month_starts`` keeps a notice period from ending exactly at a month start.
    """
    k = config.people
    n = len(idx)
    tenure_months = (month_start - people.hire[idx]) / (30.44 * MINUTES_PER_DAY)
    ramping = tenure_months < 12
    people.cols["skill"][idx] += rng.normal(0.0, k.skill_drift_sd, n) + np.where(
        ramping, k.skill_ramp_per_month, 0.0
    )
    mgr_quality = people.quality[people.manager[idx]]
    hiked = people.hike_until[idx] > month_start
    market = float(pay.market_index(month_start, config.pay))
    gap = underpay_gap(people, idx, market)
    last_att = np.nan_to_num(people.last_att[idx], nan=1.0)
    changed = (month_start - people.mgr_since[idx]) < k.manager_change_months * 30.44 * (
        MINUTES_PER_DAY
    )
    resigning = people.resigning[idx]
    target = (
        k.engagement_from_manager * mgr_quality
        + k.engagement_from_hike * hiked
        + k.engagement_from_underpay * gap
        + k.engagement_from_attainment * np.clip(last_att - 1.0, -0.6, 0.6)
        + k.engagement_when_leaving * resigning
    )
    eng = people.engagement[idx]
    eng = (
        k.engagement_persistence * eng
        + (1 - k.engagement_persistence) * target
        + rng.normal(0.0, k.engagement_noise_sd, n)
    )
    logit = (
        k.attrition_base_logit
        + k.attrition_from_engagement * eng
        + k.attrition_from_manager * mgr_quality
        + k.attrition_from_underpay * gap
        + k.attrition_from_hike * hiked
        + k.attrition_from_low_attainment * (last_att < 0.7)
        + k.attrition_from_tenure * (tenure_months > 18)
        + k.attrition_from_manager_change * changed
    )
    hazard = np.where(resigning, 0.0, _sigmoid(logit))
    # people hired during this month cannot leave before they start
    start = np.maximum(people.hire[idx], month_start)
    free = (start < month_end) & ~resigning
    leaves = (rng.random(n) < hazard) & free
    fired = people.on_plan[idx] & free & ~leaves
    fired &= rng.random(n) < k.involuntary_probability
    # exits (like hires) happen at midnight, so "employed on day d" is unambiguous
    decided = start + (rng.random(n) * (month_end - start)).astype(np.int64)
    decided = (decided // MINUTES_PER_DAY) * MINUTES_PER_DAY
    # never at the very start of the month: the rep's quota row for a quarter that starts then
    # has already been opened, and an exit at that instant would leave it empty
    decided = np.maximum(decided, start + MINUTES_PER_DAY)
    lo, hi = k.notice_days
    notice = rng.integers(lo, hi + 1, n) * MINUTES_PER_DAY
    exit_time = np.where(leaves, decided + notice, decided)
    if month_starts is not None:
        # an exit exactly at a month start would fall between two months' exit handling
        exit_time += np.isin(exit_time, month_starts) * MINUTES_PER_DAY
    valid = exit_time > people.hire[idx]
    leaves &= valid
    fired &= valid
    gone = leaves | fired
    people.cols["exit"][idx[gone]] = exit_time[gone]
    people.cols["exit_reason"][idx[leaves]] = 1
    people.cols["exit_reason"][idx[fired]] = 2
    people.cols["resigning"][idx[leaves]] = True
    people.cols["decided"][idx[leaves]] = decided[leaves]
    people.cols["on_plan"][idx] = False
    # the month's engagement is the one before any decision; who decides checks out from the
    # decision (activity.py reads ``decided``) and carries the drop into the next months
    people.cols["engagement"][idx] = eng + k.engagement_when_leaving * leaves
    return {
        "skill": people.skill[idx].copy(),
        "engagement": eng.copy(),
        "manager": people.manager[idx].copy(),
        "manager_quality": mgr_quality,
        "manager_changed": changed,
        "underpay_gap": gap,
        "pay_level": people.pay_level[idx].copy(),
        "recent_hike": hiked,
        "attrition_hazard": hazard,
        "resigning": resigning.copy(),
        "tenure_months": tenure_months,
    }
