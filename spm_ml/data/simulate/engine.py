"""The monthly loop that ties people, pipeline, quotas and pay together.

Each month: (quarter boundary: settle the last quarter - quarter-end deal timing, attainment,
pay, hikes, performance plans - then set the new quotas), drift every active AE's latent
state and draw exits, create the month's deals and simulate each cohort's whole life, hand
leavers' open deals to teammates and schedule backfills.  Deal lives are simulated at
creation from the rep's state at that time; everything downstream (bookings, attainment,
engagement, attrition) reads them, so the causal chain runs one way in time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spm_ml.data.simulate import activity, careers, catalog, lifecycle, pay, workforce
from spm_ml.data.simulate.accounts import AccountPool, make_accounts
from spm_ml.data.simulate.clock import MINUTES_PER_DAY, Clock, make_clock
from spm_ml.data.simulate.config import SimulationConfig
from spm_ml.data.simulate.ownership import OwnerLedger
from spm_ml.data.simulate.quarter_end import bookings, manage_quarter_end
from spm_ml.data.simulate.store import ColumnStore
from spm_ml.data.simulate.workforce import AE, People, Seats

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
CohortHook = Callable[[int, lifecycle.DealCohort, dict], None]
"""``on_cohort(offset, cohort, rng_state)``: called before each cohort's lives are simulated,
with the index of its first deal, its inputs and the deal generator's state (see
:mod:`.intervention`, which replays deals from there)."""
MONTH = 30.44 * MINUTES_PER_DAY

DEAL_SPEC: dict[str, type] = {
    "rep": np.int64,
    "owner": np.int64,
    "account": np.int64,
    "segment": np.int8,
    "product": np.int8,
    "lead_source": np.int8,
    "amount0": np.float64,
    "created": np.int64,
    "start_stage": np.int8,
    "expected0": np.int64,
    "close": np.int64,
    "won": np.bool_,
    "final_amount": np.float64,
    "close_amount": np.float64,
    "last_stage_change": np.int64,
    "health0": np.float64,
    "health_end": np.float64,
    "n_slips": np.int64,
    "skill": np.float64,
    "engagement": np.float64,
    "fit": np.float64,
    "n_contacts": np.int64,
    "pulled": np.bool_,
    "pushed": np.bool_,
}
QUARTER_SPEC: dict[str, type] = {
    "rep": np.int64,
    "quarter": np.int64,
    "quota_full": np.float64,
    "quota": np.float64,
    "base_pay": np.float64,
    "target_incentive": np.float64,
    "employed_share": np.float64,
    "bookings": np.float64,
    "attainment": np.float64,
    "paid_incentive": np.float64,
    "finalized": np.bool_,
    "hiked_after": np.bool_,
    "pay_level": np.float64,
}


@dataclass
class RawOrg:
    """Everything the loop produced, as arrays; ``assemble`` turns it into tables."""

    config: SimulationConfig
    clock: Clock
    people: People
    seats: Seats
    accounts: AccountPool
    deals: ColumnStore
    ledger: OwnerLedger
    quarters: ColumnStore
    events: dict[str, np.ndarray]
    rep_months: dict[str, np.ndarray]
    text_seed: np.random.SeedSequence
    rep_changes: dict[str, np.ndarray] = field(default_factory=dict)
    """Changes of manager and team: ``person``, ``time``, ``field`` (0 manager, 1 team),
    ``old``, ``new`` (people or team numbers), in time order."""
    raises: dict[str, np.ndarray] = field(default_factory=dict)
    """Every pay review (see :func:`~spm_ml.data.simulate.careers.pay_reviews`)."""
    manager_exits: list[tuple[int, int, int]] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)


class _Events:
    """Per-cohort event arrays, concatenated once at the end."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **arrays: np.ndarray) -> None:
        for name, arr in arrays.items():
            self.parts.setdefault(name, []).append(arr)

    def concat(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.parts.items()}


def run(
    config: SimulationConfig,
    progress: Progress | None = None,
    on_cohort: CohortHook | None = None,
) -> RawOrg:
    """Simulate the organisation month by month and return the raw arrays.

    ``on_cohort`` observes each cohort of new deals before it runs (it must not draw from the
    generator it is shown the state of).
    """
    seeds = np.random.SeedSequence(config.seed).spawn(6)
    rng_org, rng_acc, rng_deal, rng_q, _, rng_career = (np.random.default_rng(s) for s in seeds)
    warmup = config.warmup_months
    clock = make_clock(config.start - pd.DateOffset(months=warmup), warmup + config.months)
    people, seats, n_regions = workforce.build_org(config, rng_org)
    accounts = make_accounts(config.n_reps * config.accounts_per_rep, n_regions, rng_acc)
    pools = _flat_pools(accounts, n_regions)
    deals = ColumnStore(DEAL_SPEC)
    ledger = OwnerLedger(deals["rep"])
    quarters = ColumnStore(QUARTER_SPEC)
    events = _Events()
    months = _Events()
    raises = _Events()
    manager_changes = careers.ManagerChanges(config, rng_career)
    quota_quarter = np.full(len(seats.team) * 8 + 64, -1, dtype=np.int64)
    in_rate = np.asarray(config.email.inbound_per_week)
    out_rate = np.asarray(config.email.outbound_per_week)
    monthly_bookings = pay.expected_monthly_bookings(np.arange(3), config.deals)

    def grow_marks() -> None:
        nonlocal quota_quarter
        if people.n > len(quota_quarter):
            grown = np.full(2 * people.n, -1, dtype=np.int64)
            grown[: len(quota_quarter)] = quota_quarter
            quota_quarter = grown

    def open_rows(idx: np.ndarray, q: int) -> None:
        if len(idx) == 0:
            return
        qs, qe = clock.quarter_starts[q], clock.quarter_starts[q + 1]
        seat = people.seat[idx]
        focus = seats.focus[seat]
        tenure_end = (qe - people.hire[idx]) / MONTH
        full = (
            3.0
            * monthly_bookings[focus]
            * seats.potential_estimate[seat]
            * pay.ramp_factor(tenure_end, focus, config.pay)
            * people.hike_mult[idx]
            * config.pay.quota_scale
        )
        share = (qe - np.maximum(people.hire[idx], qs)) / (qe - qs)
        quarters.append(
            rep=idx,
            quarter=np.full(len(idx), q),
            quota_full=full,
            quota=np.round(full * share, -2),
            base_pay=np.zeros(len(idx)),
            target_incentive=np.zeros(len(idx)),
            employed_share=share,
            bookings=np.zeros(len(idx)),
            attainment=np.full(len(idx), np.nan),
            paid_incentive=np.full(len(idx), np.nan),
            finalized=np.zeros(len(idx), bool),
            hiked_after=np.zeros(len(idx), bool),
            pay_level=people.pay_level[idx],
        )
        quota_quarter[idx] = q

    def settle(q: int, final: bool) -> None:
        """Close the books of quarter ``q`` (``final``: the quarter has ended)."""
        qs, qe = clock.quarter_starts[q], clock.quarter_starts[q + 1]
        rows = np.flatnonzero(quarters["quarter"] == q)
        rep = quarters["rep"][rows]
        stop = np.minimum(people.exit[rep], qe)
        share = np.clip((stop - np.maximum(people.hire[rep], qs)) / (qe - qs), 0.0, 1.0)
        quota = np.round(quarters["quota_full"][rows] * share, -2)
        quarters["employed_share"][rows] = share
        quarters["quota"][rows] = quota
        focus = seats.focus[people.seat[rep]]
        base, target = pay.quarterly_pay(focus, people.pay_level[rep], share, config.pay)
        quarters["base_pay"][rows] = base
        quarters["target_incentive"][rows] = target
        quarters["pay_level"][rows] = people.pay_level[rep]
        if not final:
            booked = bookings(deals, ledger, qs, qe, people.n)
            quarters["bookings"][rows] = booked[rep]
            return
        full = share >= 0.999
        employed = people.exit[rep] >= qe
        manage_quarter_end(
            deals, ledger, rep, quota, full, employed, qs, qe, people.n, config.deals, rng_q
        )
        booked = bookings(deals, ledger, qs, qe, people.n)[rep]
        att = booked / np.maximum(quota, 1.0)
        quarters["bookings"][rows] = booked
        quarters["attainment"][rows] = att
        quarters["paid_incentive"][rows] = np.round(target * pay.payout_rate(att, config.pay))
        quarters["finalized"][rows] = True
        # what the quarter does to the people who stay
        k = config.people
        keep = employed & (share >= 0.5)
        r = rep[keep]
        a = att[keep]
        people.cols["prev_att"][r] = people.last_att[r]
        people.cols["last_att"][r] = a
        people.cols["att_ema"][r] = 0.6 * people.att_ema[r] + 0.4 * np.clip(a, 0.0, 2.0)
        hike = (
            full[keep]
            & (a >= config.pay.hike_after)
            & (rng_q.random(len(r)) < config.pay.hike_probability)
        )
        low, high = config.pay.hike_range
        people.cols["hike_mult"][r[hike]] *= 1.0 + rng_q.uniform(low, high, hike.sum())
        people.cols["hike_until"][r[hike]] = qe + int(4 * MONTH)
        quarters["hiked_after"][rows[keep][hike]] = True
        # quota relief after a poor quarter: quotas follow demonstrated capacity both ways
        relief = a < config.pay.relief_below
        people.cols["hike_mult"][r[relief]] = np.maximum(
            0.6, people.hike_mult[r[relief]] * rng_q.uniform(0.85, 0.97, relief.sum())
        )
        tenure = (qe - people.hire[r]) / MONTH
        plan = (
            full[keep]
            & (a < k.involuntary_threshold)
            & (people.prev_att[r] < k.involuntary_threshold)
            & (tenure > 9)
        )
        people.cols["on_plan"][r[plan]] = True

    n_months = clock.months
    for m in range(n_months):
        t0, t1 = int(clock.month_starts[m]), int(clock.month_starts[m + 1])
        q = int(clock.quarter_of(np.array([t0]))[0])
        grow_marks()
        if t0 == clock.quarter_starts[q]:
            if m > 0:
                settle(q - 1, final=True)
            employed = np.flatnonzero(
                (people.role == AE) & (people.hire <= t0) & (people.exit > t0)
            )
            # pay reviews take effect with the new quarter (its compensation row)
            raises.add(**careers.pay_reviews(people, employed, t0, config, rng_career))
            open_rows(employed, q)
        active = np.flatnonzero((people.role == AE) & (people.hire < t1) & (people.exit > t0))
        starters = active[quota_quarter[active] != q]
        open_rows(starters, q)
        state = workforce.drift_and_attrition(
            people, active, t0, t1, config, rng_org, clock.month_starts
        )
        months.add(
            rep=active,
            month=np.full(len(active), m),
            potential=seats.potential[people.seat[active]],
            focus=seats.focus[people.seat[active]],
            **state,
        )
        _create_deals(
            active, t0, t1, people, seats, accounts, pools, config, deals, events,
            in_rate, out_rate, rng_deal, on_cohort,
        )  # fmt: skip
        ledger.set_original(deals["rep"])
        _handle_exits(active, t0, t1, clock.end, people, seats, deals, ledger, config, rng_org)
        manager_changes.month(people, seats, t0, t1)
        if progress is not None:
            progress("simulate", m + 1, n_months)

    last_q = int(clock.quarter_of(np.array([clock.end - 1]))[0])
    settle(last_q, final=clock.quarter_starts[last_q + 1] <= clock.end)
    logger.debug("simulated %d people, %d deals", people.n, len(deals))
    rep_months = months.concat()
    ledger.set_original(deals["rep"])
    grid = activity.engagement_grid(rep_months, people.n, n_months)
    _slow_down(events, ledger, grid, people.decided, clock, config, seeds[5])
    return RawOrg(
        config=config,
        clock=clock,
        people=people,
        seats=seats,
        accounts=accounts,
        deals=deals,
        ledger=ledger,
        quarters=quarters,
        events=events.concat(),
        rep_months=rep_months,
        text_seed=seeds[4],
        rep_changes=manager_changes.changes(),
        raises=raises.concat(),
        manager_exits=manager_changes.manager_exits,
        flags={"regions": n_regions, "origin": int(clock.month_starts[warmup])},
    )


def _flat_pools(accounts: AccountPool, n_regions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accounts grouped by (region, segment): concatenated ids, offsets and sizes."""
    keys = [(r, s) for r in range(n_regions) for s in range(3)]
    sizes = np.array([len(accounts.by_region_segment[k]) for k in keys])
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    flat = np.concatenate([accounts.by_region_segment[k] for k in keys])
    return flat, offsets, sizes


def _draw(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: ``cum`` is (n, k) cumulative probabilities per row."""
    return (u[:, None] > cum[:, :-1]).sum(axis=1)


def _create_deals(
    active: np.ndarray,
    t0: int,
    t1: int,
    people: People,
    seats: Seats,
    accounts: AccountPool,
    pools: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: SimulationConfig,
    deals: ColumnStore,
    events: _Events,
    in_rate: np.ndarray,
    out_rate: np.ndarray,
    rng: np.random.Generator,
    on_cohort: CohortHook | None = None,
) -> None:
    """Create this month's deals for the active AEs and simulate their whole lives."""
    knobs = config.deals
    lo = np.maximum(people.hire[active], t0)
    hi = np.minimum(people.exit[active], t1)
    window = np.maximum(hi - lo, 0)
    seat = people.seat[active]
    focus = seats.focus[seat]
    tenure = (t0 - people.hire[active]) / MONTH
    ramp = np.clip(0.35 + 0.65 * tenure / 3.0, 0.35, 1.0)
    lam = (
        np.asarray(knobs.deals_per_month)[focus]
        * seats.potential[seat]
        * np.exp(0.12 * people.skill[active] + 0.15 * people.engagement[active])
        * ramp
        * window
        / (t1 - t0)
    )
    count = rng.poisson(lam)
    rep = np.repeat(active, count)
    n = len(rep)
    # account-level work (no deal): prospecting calls, emails and tasks
    n_acc = rng.poisson(config.account_level_activities_per_month * window / (t1 - t0))
    arep = np.repeat(active, n_acc)
    if len(arep):
        ai = np.repeat(np.arange(len(active)), n_acc)
        aseg = rng.integers(0, 3, len(arep))
        flat, offsets, sizes = pools
        key = people.region[arep] * 3 + aseg
        account = flat[offsets[key] + (rng.random(len(arep)) * sizes[key]).astype(np.int64)]
        events.add(
            acc_rep=arep,
            acc_account=account,
            acc_time=lo[ai] + (rng.random(len(arep)) * window[ai]).astype(np.int64),
            acc_type=rng.choice(
                [lifecycle.ACT_CALL, lifecycle.ACT_EMAIL, lifecycle.ACT_TASK],
                size=len(arep),
                p=[0.45, 0.35, 0.2],
            ).astype(np.int8),
            acc_contact=rng.integers(0, 3, len(arep)),
        )
    if n == 0:
        return
    i = np.repeat(np.arange(len(active)), count)
    created = lo[i] + (rng.random(n) * window[i]).astype(np.int64)
    mix = np.cumsum(np.asarray(knobs.segment_mix)[focus[i]], axis=1)
    seg = _draw(mix, rng.random(n))
    flat, offsets, sizes = pools
    key = people.region[rep] * 3 + seg
    account = flat[offsets[key] + (rng.random(n) * sizes[key]).astype(np.int64)]
    product = _draw(np.cumsum(np.asarray(catalog.PRODUCT_BY_SEGMENT)[seg], axis=1), rng.random(n))
    source = rng.choice(len(catalog.LEAD_SOURCES), size=n, p=[0.35, 0.35, 0.15, 0.15])
    employees = accounts.employees[account].astype(float)
    seg_mid = np.array([60.0, 800.0, 9000.0])[seg]
    amount = (
        np.asarray(knobs.amount_median)[seg]
        * np.asarray(catalog.PRODUCT_PRICE)[product]
        * (employees / seg_mid) ** 0.15
        * np.exp(rng.normal(0.0, 1.0, n) * np.asarray(knobs.amount_sigma)[seg])
    )
    amount = np.maximum(500.0, np.round(amount, -2))
    fit = (
        accounts.fit[account]
        + np.asarray(catalog.PRODUCT_FIT)[seg, product]
        + np.asarray(catalog.LEAD_SOURCE_FIT)[seg, source]
        + np.asarray(catalog.INDUSTRY_PRODUCT_FIT)[accounts.industry[account], product]
    )
    c_lo = np.array([c[0] for c in knobs.contacts])[seg]
    c_hi = np.array([c[1] for c in knobs.contacts])[seg]
    n_contacts = c_lo + (rng.random(n) * (c_hi - c_lo + 1)).astype(np.int64)
    start_stage = ((source == 0) & (rng.random(n) < 0.5)).astype(np.int8)
    skill = people.skill[rep]
    engagement = people.engagement[rep]
    cohort = lifecycle.DealCohort(
        segment=seg,
        amount=amount,
        created=created,
        skill=skill,
        engagement=engagement,
        fit=fit,
        n_contacts=n_contacts,
        start_stage=start_stage,
        clock=np.asarray(knobs.product_clock)[product]
        * np.asarray(knobs.lead_source_clock)[source]
        * (employees / seg_mid) ** knobs.account_size_clock,
    )
    if on_cohort is not None:
        on_cohort(len(deals), cohort, rng.bit_generator.state)
    res = lifecycle.simulate_cohort(cohort, knobs, in_rate, out_rate, rng)
    offset = len(deals)
    deals.append(
        rep=rep,
        owner=rep,
        account=account,
        segment=seg,
        product=product,
        lead_source=source,
        amount0=amount,
        created=created,
        start_stage=start_stage,
        expected0=res.expected0,
        close=res.close,
        won=res.won,
        final_amount=res.final_amount,
        close_amount=np.full(n, np.nan),
        last_stage_change=res.last_stage_change,
        health0=res.health0,
        health_end=res.health_end,
        n_slips=res.n_slips,
        skill=skill,
        engagement=engagement,
        fit=fit,
        n_contacts=n_contacts,
        pulled=np.zeros(n, bool),
        pushed=np.zeros(n, bool),
    )
    events.add(
        hist_deal=res.hist_deal + offset,
        hist_time=res.hist_time,
        hist_field=res.hist_field,
        hist_value=res.hist_value,
        act_deal=res.act_deal + offset,
        act_time=res.act_time,
        act_type=res.act_type,
        act_contact=res.act_contact,
        mail_deal=res.mail_deal + offset,
        mail_time=res.mail_time,
        mail_inbound=res.mail_inbound,
        mail_label=res.mail_label,
        mail_contact=res.mail_contact,
        mail_health=res.mail_health,
        step_deal=res.step_deal + offset,
        step_time=res.step_time,
        step_health=res.step_health,
        step_stage=res.step_stage,
        step_dead=res.step_dead,
    )


def _handle_exits(
    active: np.ndarray,
    t0: int,
    t1: int,
    end: int,
    people: People,
    seats: Seats,
    deals: ColumnStore,
    ledger: OwnerLedger,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> None:
    """Reassign leavers' open deals (in exit order) and schedule a backfill for each seat."""
    leaving = active[(people.exit[active] >= t0) & (people.exit[active] < t1)]
    if len(leaving) == 0:
        return
    leaving = leaving[np.argsort(people.exit[leaving], kind="stable")]
    close = deals["close"]
    created = deals["created"]
    owner = deals["owner"]
    candidates = np.flatnonzero((close > t0) & (created < t1))
    lo_days, hi_days = config.people.backfill_days
    for r in leaving:
        te = int(people.exit[r])
        mine = candidates[
            (owner[candidates] == r) & (created[candidates] < te) & (close[candidates] > te)
        ]
        if len(mine):
            employed = (people.role == AE) & (people.hire <= te) & (people.exit > te)
            employed[r] = False
            pool = np.flatnonzero(employed & (people.team == people.team[r]))
            if len(pool) == 0:
                pool = np.flatnonzero(employed & (people.region == people.region[r]))
            if len(pool) == 0:
                pool = np.flatnonzero(employed)
            if len(pool) == 0:
                close[mine] = te
                deals["won"][mine] = False
            else:
                heir = pool[rng.integers(0, len(pool), len(mine))]
                owner[mine] = heir
                ledger.record(mine, np.full(len(mine), te), heir)
        start = te + int(rng.integers(lo_days, hi_days + 1)) * MINUTES_PER_DAY
        if start < end:
            workforce.hire(
                people, seats, np.array([people.seat[r]]), np.array([start]), config, rng
            )


def _slow_down(
    events: _Events,
    ledger: OwnerLedger,
    grid: np.ndarray,
    decided: np.ndarray,
    clock: Clock,
    config: SimulationConfig,
    seed: np.random.SeedSequence,
) -> None:
    """Drop the rep-driven activity a disengaged owner did not do (:mod:`.activity`)."""
    salt = int(seed.generate_state(1, np.uint64)[0])
    knobs = config.people
    parts = events.parts
    if "act_deal" not in parts:
        return
    act_deal, act_time = np.concatenate(parts["act_deal"]), np.concatenate(parts["act_time"])
    act_type = np.concatenate(parts["act_type"])
    owner = ledger.owner_at(act_deal, act_time)
    keep = activity.kept(owner, act_time, act_deal, act_type, grid, decided, clock, knobs, salt)
    for name in ("act_deal", "act_time", "act_type", "act_contact"):
        parts[name] = [np.concatenate(parts[name])[keep]]
    mail = {name: np.concatenate(v) for name, v in parts.items() if name.startswith("mail_")}
    outbound = ~mail["mail_inbound"]
    owner = ledger.owner_at(mail["mail_deal"], mail["mail_time"])
    keep = ~outbound | activity.kept(
        owner, mail["mail_time"], mail["mail_deal"], None, grid, decided, clock, knobs, salt
    )
    for name, values in mail.items():
        parts[name] = [values[keep]]
    if "acc_rep" in parts:
        rep, time = np.concatenate(parts["acc_rep"]), np.concatenate(parts["acc_time"])
        keep = activity.kept(rep, time, -1 - rep, None, grid, decided, clock, knobs, salt)
        for name in [n for n in parts if n.startswith("acc_")]:
            parts[name] = [np.concatenate(parts[name])[keep]]
