"""The life of a cohort of deals, simulated step by step with one vectorised pass per step.

Causal story (deal side)
------------------------
Each deal carries a latent **health**, a random walk whose start depends on account fit,
product fit (by segment and by industry: use cases differ by vertical), lead source (by
segment: an inbound SMB lead is hot, an inbound enterprise form fill is research, a partner
brings an enterprise sponsor) and rep skill, and whose drift comes from:

* rep skill **times deal size** (skill matters more on big deals);
* rep attention with a **sweet spot**: a steady cadence of calls and meetings helps, the effect
  fades past the peak, and chasing a buyer who takes no meeting costs health;
* demos, whose effect **depends on the segment** (nothing for SMB, a lot for enterprise);
* close-date slips, which hurt **only late-stage** deals (proposal, negotiation);
* competitor shocks.

Each deal runs on its own **clock**: a step lasts the segment's pace (3, 7 or 14 days) times
multipliers for the product (complex products need security and legal review), the lead source
(a buyer who asked moves faster) and the account's size within its segment.  Every time
threshold below is counted in steps, so in days it follows the clock: the same 30 days of
silence is death for a small inbound deal and normal for a big enterprise one.

Health drives what can be observed while the deal is open: meeting and demo frequency,
inbound email frequency and tone - both read health **the more sharply the later the stage**
(early meetings are booked by the rep, early emails ask and object whatever the buyer thinks)
- stage advancement, slips and amount cuts (a scope cut early, a closing concession in
negotiation).  The outcome follows from the path: each step the deal may be lost (more
likely when health is low; a **threshold jump** once it has "gone dark" - no meeting, demo or
inbound email for ``dark_after_days`` of its segment, on its clock - growing with the stage;
rising once it is **stuck** in one stage; a small **sudden-loss** chance nothing foreshadows),
advance one stage (sometimes two), or, in negotiation, be won - unless a **signing gate** fails
(no demo in mid-market or enterprise, a single-threaded enterprise deal) or a **last-minute
upset** takes it.  Most lost deals first die quietly: they stay open with the odd check-in
meeting, polite brush-off and chasing call until the rep cleans them up, later for slow deals
and sooner for engaged reps - the zombie pipeline that inflates coverage in real CRMs.  Deals
still open after ``max_steps`` steps are closed lost.

Bigger deals start with lower health, slip more (their first expected close date is
optimistic) and involve more contacts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spm_ml.data.simulate.clock import MINUTES_PER_DAY
from spm_ml.data.simulate.config import DealKnobs

logger = logging.getLogger(__name__)

STAGE_PROSPECTING, STAGE_NEGOTIATION, STAGE_WON, STAGE_LOST = 0, 4, 5, 6
FIELD_STAGE, FIELD_AMOUNT, FIELD_EXPECTED = 0, 1, 2
ACT_CALL, ACT_EMAIL, ACT_MEETING, ACT_DEMO, ACT_TASK = 0, 1, 2, 3, 4
"""Activity type codes, in the order of ``schema.ACTIVITY_TYPES``."""
ACT_CONTACT = 5
"""Not an activity: the intervention "one more buyer contact engaged" (see :class:`Nudges`)."""
NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2

# per-stage base log-odds of being lost / advancing in one step (prospecting .. negotiation)
LOST_BASE = np.array([-2.6, -2.7, -2.8, -2.8, -2.9])
ADVANCE_BASE = np.array([-0.7, -0.8, -0.9, -0.9, -0.7])
DARK_BY_STAGE = np.array([0.2, 0.4, 0.9, 1.3, 1.6])
# per-segment weekly rates: calls, meetings, demos, tasks, outbound email, inbound email
CALL_RATE = np.array([1.6, 1.3, 1.1])
MEETING_RATE = np.array([0.7, 0.9, 1.1])
DEMO_RATE = np.array([0.5, 0.6, 0.6])
TASK_RATE = np.array([0.5, 0.5, 0.6])
# how much an inbound email's tone says about the deal, by stage: early on buyers ask, object
# and haggle whatever they think of the deal; by negotiation their tone is their intent
TONE_BY_STAGE = np.array([0.2, 0.4, 1.0, 1.6, 2.0])
# the same for meetings: early meetings are booked by the rep (discovery calls), late ones
# only happen when the buyer wants them
MEETING_BY_STAGE = np.array([0.4, 0.8, 2.5, 3.5, 4.0])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Draws:
    """Where :func:`simulate_cohort` takes its random numbers: one shared generator.

    Every draw names its *site* (what it is for), the step ``k`` (-1 before the first step)
    and the cohort positions of the deals it is drawn for, one value per deal.  This class
    ignores both and draws from the cohort's one generator, in the order the loop asks, which is
    what the organisation is made of.  :mod:`.intervention` subclasses it to record one deal's
    draws and to replay a deal's future from them (common random numbers).
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def random(self, site: str, k: int, rows: np.ndarray) -> np.ndarray:
        return self.rng.random(len(rows))

    def normal(self, site: str, k: int, rows: np.ndarray, loc: float, scale: float) -> np.ndarray:
        return self.rng.normal(loc, scale, len(rows))

    def uniform(self, site: str, k: int, rows: np.ndarray, low: float, high: float) -> np.ndarray:
        return self.rng.uniform(low, high, len(rows))

    def integers(self, site: str, k: int, rows: np.ndarray, low: int, high: int) -> np.ndarray:
        return self.rng.integers(low, high, len(rows))

    def poisson(self, site: str, k: int, rows: np.ndarray, lam: np.ndarray) -> np.ndarray:
        return self.rng.poisson(lam)


@dataclass
class Nudges:
    """One extra action per deal at one step (an intervention), as cohort-length arrays.

    ``step[d]`` is the step of deal ``d`` that gets the action (-1: none) and ``action[d]`` one
    of ``ACT_MEETING``, ``ACT_DEMO``, ``ACT_CALL``, ``ACT_CONTACT``, ``ACT_EMAIL`` (outbound).
    The action is added to what the deal drew that step, with every consequence an organic one
    has: a meeting or demo is a touch (the deal is not dark next step) and effort, a demo counts
    for the signing gate and gains health, a call is effort and chasing if no meeting, a
    contact raises the contacts engaged (capped by the committee); an outbound email has no
    causal effect at all.
    """

    step: np.ndarray
    action: np.ndarray


@dataclass
class CohortState:
    """Outcome of a cohort's step loop (before events are expanded)."""

    close: np.ndarray
    won: np.ndarray
    steps: list[tuple[np.ndarray, ...]]
    hist: list[tuple[np.ndarray, ...]]
    expected0: np.ndarray
    amount: np.ndarray
    last_stage_change: np.ndarray
    health0: np.ndarray
    health: np.ndarray
    n_slips: np.ndarray


def deal_step_days(cohort: DealCohort, knobs: DealKnobs) -> np.ndarray:
    """Length in days of one step of each deal: the segment's pace times the deal's clock."""
    days = np.maximum(2, np.round(np.asarray(knobs.step_days)[cohort.segment] * cohort.clock))
    return days.astype(np.int64)


@dataclass
class DealCohort:
    """Inputs of one cohort of new deals (arrays of equal length)."""

    segment: np.ndarray
    amount: np.ndarray
    created: np.ndarray
    skill: np.ndarray
    engagement: np.ndarray
    fit: np.ndarray
    n_contacts: np.ndarray
    start_stage: np.ndarray
    clock: np.ndarray
    """Step-length multiplier of each deal (product, lead source, account size)."""


@dataclass
class CohortResult:
    """What happened to a cohort: outcome per deal and every event, as arrays.

    Deal indices in the event arrays are positions in the cohort.  Events are generated for
    the deal's whole life; the assembler cuts them at the (possibly adjusted) close time and
    at ``extracted_at``.
    """

    close: np.ndarray
    won: np.ndarray
    expected0: np.ndarray
    final_amount: np.ndarray
    last_stage_change: np.ndarray
    health0: np.ndarray
    health_end: np.ndarray
    n_slips: np.ndarray
    hist_deal: np.ndarray
    hist_time: np.ndarray
    hist_field: np.ndarray
    hist_value: np.ndarray
    act_deal: np.ndarray
    act_time: np.ndarray
    act_type: np.ndarray
    act_contact: np.ndarray
    mail_deal: np.ndarray
    mail_time: np.ndarray
    mail_inbound: np.ndarray
    mail_label: np.ndarray
    mail_contact: np.ndarray
    mail_health: np.ndarray
    step_deal: np.ndarray
    step_time: np.ndarray
    step_health: np.ndarray
    step_stage: np.ndarray
    step_dead: np.ndarray


def floor_day(minutes: np.ndarray) -> np.ndarray:
    """Midnight of the day containing each time (in minutes since start)."""
    return (minutes // MINUTES_PER_DAY) * MINUTES_PER_DAY


def simulate_cohort(
    cohort: DealCohort,
    knobs: DealKnobs,
    in_per_week: np.ndarray,
    out_per_week: np.ndarray,
    rng: np.random.Generator,
) -> CohortResult:
    """Run every deal of ``cohort`` from creation to close (won, lost or cleaned up)."""
    st = run_steps(cohort, knobs, in_per_week, out_per_week, Draws(rng))
    return _expand(
        cohort, knobs, rng, st.steps, st.hist, st.close, st.won, st.expected0, st.amount,
        st.last_stage_change, st.health0, st.health, st.n_slips,
    )  # fmt: skip


def run_steps(
    cohort: DealCohort,
    knobs: DealKnobs,
    in_per_week: np.ndarray,
    out_per_week: np.ndarray,
    draws: Draws,
    nudges: Nudges | None = None,
) -> CohortState:
    """The step loop of :func:`simulate_cohort`: outcomes and per-step counts, no events.

    ``draws`` supplies every random number (:class:`Draws`); ``nudges`` adds interventions.
    """
    n = len(cohort.segment)
    seg = cohort.segment
    # each deal's clock: the segment's pace times the deal's own (see ``DealCohort.clock``)
    step_days = deal_step_days(cohort, knobs)
    step_len = step_days * MINUTES_PER_DAY
    weeks = step_days / 7.0
    size_factor = np.clip(np.log(cohort.amount / 5_000.0) / np.log(10.0), 0.3, 2.5)
    skill_drift = knobs.skill_by_size * cohort.skill * size_factor
    demo_gain = np.asarray(knobs.demo_gain)[seg]
    health = (
        np.asarray(knobs.health_base)[seg]
        + 0.55 * cohort.fit
        + 0.25 * cohort.skill
        + draws.normal("health0", -1, np.arange(n), 0.0, 0.55)
    )
    health0 = health.copy()
    stage = cohort.start_stage.astype(np.int64).copy()
    amount = cohort.amount.copy()
    cycle = np.asarray(knobs.expected_cycle_days)[seg] * np.exp(
        draws.normal("cycle", -1, np.arange(n), 0.0, 0.25)
    )
    optimism = np.array([1.0, 0.9, 0.8])[seg]
    expected = floor_day(cohort.created) + (np.round(cycle * optimism) * MINUTES_PER_DAY).astype(
        np.int64
    )
    expected0 = expected.copy()
    close = np.full(n, -1, dtype=np.int64)
    won = np.zeros(n, dtype=bool)
    last_touch_step = np.zeros(n, dtype=np.int64)
    last_stage_change = cohort.created.copy()
    n_slips = np.zeros(n, dtype=np.int64)
    dead = np.zeros(n, dtype=bool)
    stall_until = np.zeros(n, dtype=np.int64)
    had_demo = np.zeros(n, dtype=bool)
    max_engaged = np.ones(n, dtype=np.int64)
    # silence is measured against the deal's own clock: a slow deal is quiet for longer
    base_days = np.asarray(knobs.step_days, dtype=float)[seg]
    dark_steps = np.ceil(np.asarray(knobs.dark_after_days)[seg] / base_days).astype(np.int64)
    stage_entered = np.zeros(n, dtype=np.int64)
    # the rep's cadence on this deal: some reps (and some deals) get far more calls than others
    cadence = np.exp(
        draws.normal("cadence", -1, np.arange(n), 0.0, knobs.cadence_sd) + 0.25 * cohort.engagement
    )

    hist: list[tuple[np.ndarray, ...]] = []
    steps: list[tuple[np.ndarray, ...]] = []
    alive = np.arange(n)
    for k in range(knobs.max_steps):
        if len(alive) == 0:
            break
        i = alive
        s = seg[i]
        g = stage[i]
        h = health[i]
        t0 = cohort.created[i] + k * step_len[i]
        w = weeks[i]
        dark = (k - last_touch_step[i]) >= dark_steps[i]
        eng = cohort.engagement[i]
        z = dead[i]
        live = ~z
        # buyers go quiet for a while (holidays, reorganisations) without the deal being lost
        new_stall = live & (stall_until[i] <= k) & (draws.random("stall", k, i) < 0.07)
        stall_until[i[new_stall]] = k + draws.integers("stall_steps", k, i[new_stall], 1, 5)
        quiet = np.where(stall_until[i] > k, 0.15, 1.0)
        # --- observable activity this step (rates per week x weeks per step); a dead deal
        # gets the odd call and unanswered follow-up until the rep cleans it up, and a live
        # deal that has gone quiet gets chased (more calls, not fewer)
        calls = draws.poisson(
            "calls",
            k,
            i,
            CALL_RATE[s] * w * cadence[i] * np.where(z, 0.6, np.where(dark, 1.8, 1.0)),
        )
        # a dead deal still gets the odd check-in meeting (with someone who cannot buy)
        meetings = draws.poisson(
            "meetings",
            k,
            i,
            MEETING_RATE[s]
            * w
            * np.where(
                z, knobs.zombie_meeting_rate, _sigmoid(MEETING_BY_STAGE[g] * (h - 0.1)) * quiet
            )
            * (0.45 + 0.15 * g),
        )
        demo_stage = (g >= 1) & (g <= 3) & live
        demos = draws.poisson(
            "demos",
            k,
            i,
            DEMO_RATE[s]
            * w
            * _sigmoid(2.0 * (h - 0.2))
            * np.where(g == 2, 1.5, 0.6)
            * demo_stage
            * quiet,
        )
        tasks = draws.poisson("tasks", k, i, TASK_RATE[s] * w * np.where(z, 0.5, 1))
        outbound = draws.poisson(
            "outbound",
            k,
            i,
            out_per_week[s] * w * np.exp(0.2 * eng) * (1.0 + 0.6 * dark) * np.where(z, 0.6, 1),
        )
        # a dead deal's buyer sends the odd polite brush-off ("swamped, circle back next quarter")
        inbound = draws.poisson(
            "inbound",
            k,
            i,
            in_per_week[s]
            * w
            * (0.6 + 0.1 * g)
            * np.where(z, knobs.zombie_inbound_rate, _sigmoid(2.0 * (h + 0.2)) * quiet),
        )
        shock = draws.random("shock", k, i) < knobs.competitor_shock_prob
        nudged = None
        if nudges is not None:
            nudged = np.where(nudges.step[i] == k, nudges.action[i], -1)
            calls = calls + (nudged == ACT_CALL)
            meetings = meetings + (nudged == ACT_MEETING)
            demos = demos + (nudged == ACT_DEMO)
            outbound = outbound + (nudged == ACT_EMAIL)
        had_demo[i[demos > 0]] = True
        # contacts engaged so far: grows with stage and health, capped by the committee size
        committee = cohort.n_contacts[i]
        engaged = 1 + np.floor(
            (committee - 1) * _sigmoid(h) * (g + 1) / 5.0 + draws.random("engaged", k, i)
        )
        engaged = np.clip(engaged, 1, committee).astype(np.int64)
        max_engaged[i] = np.maximum(max_engaged[i], engaged * live)
        if nudged is not None:
            max_engaged[i] = np.minimum(max_engaged[i] + (nudged == ACT_CONTACT), committee)
        touched = (meetings + demos + inbound) > 0
        last_touch_step[i[touched]] = k
        # --- health moves
        # attention has a sweet spot: a steady cadence helps, chasing a buyer who does not
        # answer (many calls, no meeting) annoys them
        x = (calls + meetings) / (knobs.effort_peak_per_week * w)
        chasing = np.maximum(0.0, calls / w - knobs.chase_calls_per_week) * (meetings == 0)
        drift = (
            skill_drift[i]
            + knobs.effort_gain * x * np.exp(1.0 - x)
            - knobs.chase_penalty * np.minimum(chasing, 3.0)
            - 0.05
            + demo_gain[i] * (demos > 0)
            + knobs.competitor_shock * shock
        )
        h_new = h + drift + draws.normal("noise", k, i, 0.0, knobs.health_noise_sd) - 0.15 * z
        # --- stage transition
        stale = 0.12 * np.maximum(0, k - 12)
        # a deal stuck in one stage for more steps than usual is dying (in days, the threshold
        # follows the deal's clock: weeks for a small deal, months for a big complex one)
        stuck = knobs.stuck_logit * np.maximum(0, k - stage_entered[i] - knobs.stuck_after_steps)
        # a buyer silent for weeks is leaving, whatever the stage (more so late)
        dark_effect = knobs.dark_loss_logit * DARK_BY_STAGE[g] * dark
        p_lost = _sigmoid(LOST_BASE[g] - 1.7 * h_new + dark_effect + stale + np.minimum(stuck, 3))
        # things no CRM sees coming: a budget freeze, a reorganisation, the champion leaves
        p_lost = 1.0 - (1.0 - p_lost) * (1.0 - knobs.sudden_loss_per_week * w)
        adv_logit = ADVANCE_BASE[g] + 1.0 * h_new - 1.0 * dark
        # signing needs more than health: mid-market and enterprise buyers want a demo, and an
        # enterprise deal needs several people on board (single-threaded deals stall)
        nego = g == STAGE_NEGOTIATION
        gate = np.where(nego & (s >= 1) & ~had_demo[i], knobs.no_demo_gate, 1.0)
        gate *= np.where(nego & (s == 2) & (max_engaged[i] < 3), knobs.single_thread_gate, 1.0)
        p_adv = _sigmoid(adv_logit) * gate
        u = draws.random("fate", k, i)
        lost_draw = live & (u < p_lost)
        adv_now = live & ~lost_draw & (u < p_lost + (1.0 - p_lost) * p_adv)
        # most lost deals die quietly first: no more meetings, closed lost at a later clean-up
        linger = lost_draw & (
            draws.random("linger", k, i) < _sigmoid(knobs.zombie_logit - 0.6 * eng)
        )
        dead[i[linger]] = True
        # reps hold on to slow, complex deals longer (the clean-up runs on the deal's clock too)
        linger_days = knobs.zombie_days * cohort.clock[i] * np.exp(-0.3 * eng)
        cleanup = step_days[i] / linger_days
        lost_now = (lost_draw & ~linger) | (z & (draws.random("cleanup", k, i) < cleanup))
        if k == knobs.max_steps - 1:
            lost_now = ~adv_now | (g < STAGE_NEGOTIATION)
            adv_now &= ~lost_now
        jump = 1 + (adv_now & (g <= 1) & (draws.random("jump", k, i) < 0.12))
        smb_skip = adv_now & (g == 3) & (s == 0) & (draws.random("skip", k, i) < 0.2)
        new_g = np.where(adv_now, np.minimum(g + jump, STAGE_WON), g)
        new_g = np.where(smb_skip, STAGE_WON, new_g)
        won_now = adv_now & ((g == STAGE_NEGOTIATION) | smb_skip)
        # the final decision is never certain: a cheaper rival, no decision, a budget cut at
        # signing take a share of deals that looked committed (more of the big ones)
        upset = won_now & (draws.random("upset", k, i) < np.asarray(knobs.final_upset)[s])
        won_now &= ~upset
        adv_now &= ~upset
        lost_now |= upset
        new_g = np.where(won_now, STAGE_WON, new_g)
        new_g = np.where(lost_now, STAGE_LOST, new_g)
        t_event = t0 + 1 + (draws.random("t_event", k, i) * (step_len[i] - 1)).astype(np.int64)
        closing = lost_now | won_now
        t_end = np.where(closing, t_event, t0 + step_len[i])
        steps.append(
            (
                i,
                t0,
                t_end,
                calls,
                meetings,
                demos,
                tasks,
                outbound,
                inbound,
                h,
                shock,
                g,
                dark,
                z,
                engaged,
            )
        )
        close[i[closing]] = t_event[closing]
        won[i[won_now]] = True
        moved = adv_now & ~won_now
        stage_entered[i[moved]] = k + 1
        if moved.any():
            hist.append((i[moved], t_event[moved], np.full(moved.sum(), FIELD_STAGE), new_g[moved]))
            last_stage_change[i[moved]] = t_event[moved]
        stage[i] = new_g
        # --- slips and amount changes of deals still open
        still = ~closing
        j = i[still]
        hs = h_new[still]
        gs = new_g[still]
        t0s = t0[still]
        t_stop = t0s + step_len[j]
        late = expected[j] < t_stop
        voluntary = draws.random("slip", k, j) < 0.07 * _sigmoid(-2.0 * hs) * (gs >= 2)
        slip = late | voluntary
        if slip.any():
            js = j[slip]
            lo = np.clip(expected[js], t0s[slip], t_stop[slip] - 1)
            t_slip = lo + (draws.random("t_slip", k, js) * (t_stop[slip] - lo)).astype(np.int64)
            push = np.maximum(7, np.round(step_days[js] * draws.uniform("push", k, js, 1.0, 3.0)))
            # a dead deal's date is pushed a month or two at a time, to keep it off reports
            push = np.where(dead[js], draws.integers("push_dead", k, js, 30, 61), push)
            push = push.astype(np.int64)
            new_expected = floor_day(np.maximum(t_slip, expected[js])) + push * MINUTES_PER_DAY
            expected[js] = new_expected
            n_slips[js] += 1
            hist.append((js, t_slip, np.full(len(js), FIELD_EXPECTED), new_expected))
            hs = hs - knobs.late_slip_penalty * (slip & (gs >= 3))
        zs = dead[j]
        # amount cuts mean opposite things by stage: early, a shrinking budget or scope (weak
        # deals); in negotiation, the price concession a buyer asks for just before signing
        closing_discount = knobs.closing_discount * (gs == STAGE_NEGOTIATION) * (hs > 0.3)
        scope_cut = 0.02 + 0.12 * (hs < -0.3) * (gs <= 2)
        cut = ~zs & (draws.random("cut", k, j) < scope_cut + closing_discount)
        up = ~zs & ~cut & (draws.random("up", k, j) < 0.025 * (hs > 0.7) * (gs >= 2))
        change = cut | up
        if change.any():
            jc = j[change]
            factor = np.where(
                cut[change],
                draws.uniform("cut_by", k, jc, 0.7, 0.95),
                draws.uniform("up_by", k, jc, 1.05, 1.3),
            )
            new_amount = np.maximum(500.0, np.round(amount[jc] * factor, -2))
            differs = new_amount != amount[jc]
            jc, new_amount = jc[differs], new_amount[differs]
            t_amt = (
                t0s[change][differs]
                + 1
                + (draws.random("t_amount", k, jc) * (step_len[jc] - 1)).astype(np.int64)
            )
            amount[jc] = new_amount
            hist.append((jc, t_amt, np.full(len(jc), FIELD_AMOUNT), new_amount))
        health[j] = hs
        health[i[closing]] = h_new[closing]
        alive = j

    return CohortState(
        close=close,
        won=won,
        steps=steps,
        hist=hist,
        expected0=expected0,
        amount=amount,
        last_stage_change=last_stage_change,
        health0=health0,
        health=health,
        n_slips=n_slips,
    )


def _expand(
    cohort: DealCohort,
    knobs: DealKnobs,
    rng: np.random.Generator,
    steps: list[tuple[np.ndarray, ...]],
    hist: list[tuple[np.ndarray, ...]],
    close: np.ndarray,
    won: np.ndarray,
    expected0: np.ndarray,
    amount: np.ndarray,
    last_stage_change: np.ndarray,
    health0: np.ndarray,
    health_end: np.ndarray,
    n_slips: np.ndarray,
) -> CohortResult:
    """Turn per-step counts into timed events (activities, emails) with contacts and labels."""
    cols = [np.concatenate(c) for c in zip(*steps, strict=True)]
    deal, t0, t_end, calls, meetings, demos, tasks, outbound, inbound, h, shock, g, dark, z = cols[
        :14
    ]
    engaged = cols[14]
    span = t_end - t0

    def spread(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.repeat(np.arange(len(counts)), counts)
        times = t0[rows] + (rng.random(len(rows)) * span[rows]).astype(np.int64)
        contact = (rng.random(len(rows)) * engaged[rows]).astype(np.int64)
        return rows, times, contact

    act_parts = []
    for code, counts in (
        (ACT_CALL, calls),
        (ACT_MEETING, meetings),
        (ACT_DEMO, demos),
        (ACT_TASK, tasks),
    ):
        rows, times, contact = spread(counts)
        act_parts.append((deal[rows], times, np.full(len(rows), code), contact))

    out_rows, out_times, out_contact = spread(outbound)
    in_rows, in_times, in_contact = spread(inbound)
    # outbound email is also logged as an 'email' activity, as CRMs do
    act_parts.append((deal[out_rows], out_times, np.full(len(out_rows), ACT_EMAIL), out_contact))

    # inbound tone follows health, the more so the later the stage; a competitor shock that
    # step sours it; a dead deal's buyer writes polite brush-offs (mostly neutral)
    z_live = TONE_BY_STAGE[g[in_rows]] * h[in_rows] - 1.2 * shock[in_rows]
    z_in = np.where(z[in_rows], -0.2, z_live) + rng.normal(0.0, 0.7, len(in_rows))
    in_label = np.where(z_in > 0.6, POSITIVE, np.where(z_in < -0.6, NEGATIVE, NEUTRAL))
    # reps write neutral or upbeat mail; a few "closing the file" notes when a deal goes dark
    z_out = 0.5 * h[out_rows] + rng.normal(0.0, 0.8, len(out_rows))
    out_label = np.where(
        z_out > 0.55,
        POSITIVE,
        np.where((z_out < -1.1) & dark[out_rows], NEGATIVE, NEUTRAL),
    )
    # a last inbound word shortly before the close: a thank-you or a "we went elsewhere"
    n = len(close)
    final = rng.random(n) < np.where(won, 0.55, 0.4)
    fd = np.flatnonzero(final)
    back = np.minimum(close[fd] - cohort.created[fd] - 1, MINUTES_PER_DAY * 2)
    f_time = close[fd] - 1 - (rng.random(len(fd)) * np.maximum(back, 0)).astype(np.int64)
    f_label = np.where(won[fd], POSITIVE, NEGATIVE)
    f_contact = (rng.random(len(fd)) * cohort.n_contacts[fd]).astype(np.int64)
    f_health = health_end[fd]

    mail_deal = np.concatenate([deal[out_rows], deal[in_rows], fd])
    mail_time = np.concatenate([out_times, in_times, f_time])
    mail_inbound = np.concatenate(
        [np.zeros(len(out_rows), bool), np.ones(len(in_rows), bool), np.ones(len(fd), bool)]
    )
    mail_label = np.concatenate([out_label, in_label, f_label])
    mail_contact = np.concatenate([out_contact, in_contact, f_contact])
    mail_health = np.concatenate([h[out_rows], h[in_rows], f_health])

    act = [np.concatenate(c) for c in zip(*act_parts, strict=True)]
    if hist:
        hcols = [np.concatenate(c) for c in zip(*hist, strict=True)]
    else:
        hcols = [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)]
    return CohortResult(
        close=close,
        won=won,
        expected0=expected0,
        final_amount=amount,
        last_stage_change=last_stage_change,
        health0=health0,
        health_end=health_end,
        n_slips=n_slips,
        hist_deal=hcols[0],
        hist_time=hcols[1],
        hist_field=hcols[2].astype(np.int8),
        hist_value=hcols[3].astype(np.float64),
        act_deal=act[0],
        act_time=act[1],
        act_type=act[2].astype(np.int8),
        act_contact=act[3],
        mail_deal=mail_deal,
        mail_time=mail_time,
        mail_inbound=mail_inbound,
        mail_label=mail_label.astype(np.int8),
        mail_contact=mail_contact,
        mail_health=mail_health,
        step_deal=deal,
        step_time=t0,
        step_health=h,
        step_stage=g.astype(np.int8),
        step_dead=z,
    )
