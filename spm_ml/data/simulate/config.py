"""Configuration of the simulated organisation: size, seed, realism targets and causal knobs.

Everything that shapes the simulated organisation is a field here, so a run is fully described
by its config (the CLI overrides fields by dotted path, MLflow logs the whole object).  The
realism targets are *ranges*, not constants: they come from survey-based secondary sources
(see ``docs/simulator.md``) and the tests check a default-size organisation lands inside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

SEGMENTS: tuple[str, ...] = ("smb", "mid_market", "enterprise")
"""Deal / account segments, smallest first; the integer code of a segment is its position."""


@dataclass(frozen=True)
class Range:
    """A closed interval ``[low, high]`` a measured figure should fall in."""

    low: float
    high: float

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.low <= float(value) <= self.high

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class RealismTargets:
    """Published ranges a default-size organisation should land in (``SIMULATOR.md``).

    The sources are secondary summaries of surveys (HubSpot, Gartner, Pavilion, Bridge Group,
    HBR), so every figure is a range.  Three judgement calls, documented in
    ``docs/simulator.md``:

    * the Pavilion attainment bands are checked on *calendar-year* attainment (respondents
      report a year; quarterly attainment of lumpy enterprise books is much wider), with
      ``band_tolerance`` of slack because a default org has only ~60 full rep-years;
    * a 50-60% share at quota per quarter and an 85-90% *mean* cannot both hold unless the
      distribution is strongly left-skewed; deal lumpiness makes it right-skewed, so the mean
      range is widened to 0.85-1.05 while the share at quota keeps its published range;
    * "enterprise above $100k ~15%" becomes 8-22%: a default org closes only ~100 such deals.
    """

    win_rate: Range = Range(0.20, 0.30)
    """won / (won + lost) over closed deals (HubSpot via salesmotion.io)."""
    win_rate_smb: Range = Range(0.25, 0.35)
    win_rate_large: Range = Range(0.08, 0.22)
    """Enterprise deals above ``large_deal_amount`` ("~15%")."""
    large_deal_amount: float = 100_000.0
    cycle_days_smb: Range = Range(14, 30)
    """Median days from created to closed-won (revopsdictionary.com)."""
    cycle_days_mid_market: Range = Range(30, 90)
    cycle_days_enterprise: Range = Range(90, 240)
    """Published as "90-180+"; the open upper end is taken as 240 days."""
    share_at_quota: Range = Range(0.50, 0.70)
    """Share of full-quarter rep-quarters at or above quota (50-60%, healthy orgs 60-70%)."""
    attainment_bands: tuple[tuple[float, float, Range], ...] = (
        (0.0, 0.5, Range(0.05, 0.10)),
        (0.5, 0.8, Range(0.15, 0.20)),
        (0.8, 1.0, Range(0.25, 0.30)),
        (1.0, 1.2, Range(0.25, 0.30)),
        (1.2, float("inf"), Range(0.15, 0.20)),
    )
    """``(low, high, share)``: share of rep-years with ``low <= attainment < high`` (Pavilion)."""
    band_tolerance: float = 0.05
    """Slack allowed on each attainment band (the published bands are mutually inconsistent)."""
    attainment_mean: Range = Range(0.85, 1.05)
    """Mean quarterly attainment of ramped reps (Gartner: 89%; widened, see above)."""
    pipeline_coverage: Range = Range(3.0, 4.0)
    """Median over reps of open pipeline at quarter start / that quarter's quota."""
    annual_turnover: Range = Range(0.25, 0.35)
    """AE leavers per year / mean AE headcount (HBR 2017; mapmycustomers.com)."""
    tenure_years: Range = Range(1.5, 3.0)
    """Mean tenure of AEs employed at extraction (Bridge Group 2018 via Xactly)."""


@dataclass(frozen=True)
class PeopleKnobs:
    """The people side of the causal story: latent drift, engagement, attrition, hiring."""

    skill_drift_sd: float = 0.04
    skill_ramp_per_month: float = 0.03
    """New hires learn: skill rises by this much a month during their first year."""
    engagement_persistence: float = 0.8
    engagement_noise_sd: float = 0.18
    engagement_from_manager: float = 0.55
    """Weight of manager quality in the engagement target ("people leave managers")."""
    engagement_from_hike: float = -0.9
    engagement_from_underpay: float = -4.0
    engagement_from_attainment: float = 0.5
    attrition_base_logit: float = -5.55
    attrition_from_engagement: float = -0.6
    attrition_from_manager: float = -0.25
    attrition_from_underpay: float = 5.0
    attrition_from_hike: float = 0.7
    attrition_from_low_attainment: float = 0.6
    attrition_from_tenure: float = 0.35
    """Extra log-odds once tenure passes 18 months (recruiters poach experienced reps)."""
    involuntary_threshold: float = 0.5
    """Two full quarters in a row below this attainment puts a rep on a performance plan."""
    involuntary_probability: float = 0.4
    attrition_from_manager_change: float = 0.3
    """Extra log-odds for ``manager_change_months`` after a change of manager (disruption)."""
    manager_change_months: float = 6.0
    notice_days: tuple[int, int] = (21, 75)
    """A voluntary leaver decides, then searches and serves notice: the exit comes this many
    days after the decision."""
    engagement_when_leaving: float = -1.2
    """Engagement shift of a rep who has decided to leave, at once and until they go (the
    engagement target moves by the same amount, so it does not wear off)."""
    activity_from_engagement: float = 0.7
    """Rep-driven activity (calls, emails, tasks; meetings and demos at half strength) is
    thinned by ``exp(this * min(engagement - activity_pivot, 0))`` at its time: disengaged reps,
    and reps on their way out, touch their deals less."""
    activity_pivot: float = -1.0
    manager_exit_per_year: float = 0.2
    """Yearly chance that a team manager leaves; their reps report to the regional director
    until the backfill arrives (``manager_backfill_days`` later)."""
    manager_backfill_days: tuple[int, int] = (35, 100)
    reassignment_per_year: float = 0.1
    """Yearly chance that an AE (and their seat) is moved to another team of their region."""
    backfill_days: tuple[int, int] = (21, 75)
    initial_tenure_mean_years: float = 1.8
    pay_level_sd: float = 0.10
    underpaid_share: float = 0.2
    """Share of hires paid ~15% below market for their level (the "underpaid" reps)."""


@dataclass(frozen=True)
class DealKnobs:
    """The deal side: volumes, sizes, health dynamics and the outcome's non-linear drivers."""

    team_focus_shares: tuple[float, float, float] = (0.45, 0.40, 0.15)
    """Share of teams focused on smb / mid_market / enterprise."""
    segment_mix: tuple[tuple[float, float, float], ...] = (
        (0.93, 0.07, 0.0),
        (0.15, 0.85, 0.0),
        (0.0, 0.4, 0.6),
    )
    """Row = team focus, columns = share of that rep's new deals in each segment."""
    deals_per_month: tuple[float, float, float] = (14.0, 8.0, 4.5)
    """New deals per fully ramped average rep per month, by team focus."""
    amount_median: tuple[float, float, float] = (7_000.0, 32_000.0, 110_000.0)
    amount_sigma: tuple[float, float, float] = (0.45, 0.45, 0.5)
    step_days: tuple[int, int, int] = (3, 7, 14)
    """Length of one lifecycle step per segment: bigger deals move on a slower clock."""
    product_clock: tuple[float, float, float, float] = (0.55, 1.0, 1.5, 2.3)
    """Step-length multiplier by product: complex products (security review, legal) are slower."""
    lead_source_clock: tuple[float, float, float, float] = (0.75, 1.25, 0.9, 1.1)
    """Same by lead source (inbound, outbound, partner, event): a buyer who asked moves faster."""
    account_size_clock: float = 0.3
    """Step length grows as (employees / segment's typical employees) ** this."""
    max_steps: int = 34
    """A deal still open after this many steps is closed lost (pipeline clean-up)."""
    expected_cycle_days: tuple[float, float, float] = (25.0, 60.0, 120.0)
    health_base: tuple[float, float, float] = (0.2, -0.3, -0.75)
    health_noise_sd: float = 0.4
    skill_by_size: float = 0.06
    """Per-step health drift per unit of skill, times a deal-size factor (skill x size)."""
    demo_gain: tuple[float, float, float] = (0.0, 0.15, 0.3)
    """Health gained from a demo by segment: demos sell big deals, not small ones."""
    late_slip_penalty: float = 0.35
    """Health lost when a proposal/negotiation deal slips; early slips cost nothing."""
    dark_after_days: tuple[float, float, float] = (10.0, 21.0, 35.0)
    """No meeting, demo or inbound email for this long (by segment; counted in steps, so in days
    it follows the deal's clock): the deal has gone dark."""
    stuck_after_steps: int = 4
    stuck_logit: float = 0.3
    """Extra loss log-odds per step a deal stays in one stage beyond ``stuck_after_steps``
    (steps, so the threshold in days follows the deal's clock)."""
    dark_loss_logit: float = 1.8
    zombie_logit: float = 0.0
    """Log-odds that a lost deal lingers open, dead, before it is closed (falls with engagement)."""
    zombie_days: float = 60.0
    """Mean days a dead deal lingers before clean-up, times the deal's clock (reps hold on to
    slow, complex deals longer; engaged reps clean up sooner)."""
    zombie_meeting_rate: float = 0.08
    zombie_inbound_rate: float = 0.3
    """Meeting / inbound-email rate of a dead deal relative to a healthy one (check-ins with
    someone who cannot buy, polite brush-offs): going dark is a strong sign, not a certain one."""
    cadence_sd: float = 0.45
    """Spread (log scale) of the rep's call cadence on a deal, independent of its health."""
    effort_gain: float = 0.1
    effort_peak_per_week: float = 2.0
    """Attention has a sweet spot: health gained per step peaks at this many calls + meetings a
    week and fades beyond it."""
    chase_calls_per_week: float = 2.5
    chase_penalty: float = 0.04
    """Calls a week above which chasing a buyer who takes no meeting costs health (per call)."""
    sudden_loss_per_week: float = 0.008
    """Weekly chance of a loss no CRM sees coming (budget freeze, reorganisation, champion
    leaves), whatever the deal's health."""
    final_upset: tuple[float, float, float] = (0.08, 0.15, 0.2)
    """Chance by segment that a deal about to sign is lost at the last step (a cheaper rival,
    no decision, budget cut at signing)."""
    no_demo_gate: float = 0.1
    """Multiplier of the signing chance of a mid-market or enterprise deal that never had a demo."""
    single_thread_gate: float = 0.15
    """Same for an enterprise deal with fewer than three buyer contacts engaged."""
    closing_discount: float = 0.25
    """Per-step chance that a healthy negotiation-stage deal gets a price concession."""
    competitor_shock_prob: float = 0.025
    competitor_shock: float = -0.8
    contacts: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] = ((1, 3), (2, 5), (4, 9))
    """Buying-committee size range per segment (bigger deals involve more people)."""
    quarter_end_pull_in: float = 0.5
    """Chance a rep below quota pulls an early next-quarter win into the quarter (at a discount)."""
    quarter_end_push: float = 0.8
    """Chance a rep far above quota pushes late wins into the next quarter."""
    push_above: float = 1.15
    """Attainment above which a rep sandbags ..."""
    push_keep: float = 1.05
    """... keeping at least this attainment in the quarter."""


@dataclass(frozen=True)
class PayKnobs:
    """Quotas and compensation."""

    quota_scale: float = 0.98
    """Quota / expected bookings of an average ramped rep (calibrates mean attainment)."""
    territory_sd: float = 0.18
    territory_estimate_sd: float = 0.12
    """Error of the quota-setter's view of a territory (low potential under a high quota misses)."""
    hike_after: float = 1.1
    hike_range: tuple[float, float] = (0.1, 0.25)
    hike_probability: float = 0.7
    relief_below: float = 0.8
    """Attainment under which next quarter's quota is eased by 3-15%."""
    ramp_months: float = 5.0
    """Months to a full quota for an SMB seat; bigger-deal seats take longer."""
    annual_base: tuple[float, float, float] = (60_000.0, 75_000.0, 95_000.0)
    """Base pay at pay level 1.0 at the start of the (warm-up) history; market pay grows by
    ``market_growth_per_year`` from there."""
    market_growth_per_year: float = 0.03
    """Market pay rises each year: a rep without raises drifts into underpay."""
    review_months: float = 12.0
    """Each AE's pay is reviewed about this often (at the quarter start after the anniversary
    of their hire or last review); the raise applies from that quarter's compensation row."""
    merit_raise: float = 0.025
    """Raise of a rep at 100% trailing attainment ..."""
    merit_per_attainment: float = 0.1
    """... plus this much per unit of trailing attainment above 100% (less below)."""
    raise_sd: float = 0.01
    no_raise_below: float = 0.7
    """Trailing attainment under which the review gives no raise."""
    raise_cap: float = 0.12
    market_correction_probability: float = 0.2
    market_correction_share: float = 0.6
    """With this probability a review also closes this share of the rep's underpay gap."""
    payout_threshold: float = 0.5
    accelerator: float = 2.0
    payout_cap: float = 3.0


@dataclass(frozen=True)
class EmailKnobs:
    """Email volumes and text decorations."""

    outbound_per_week: tuple[float, float, float] = (1.2, 1.1, 1.0)
    inbound_per_week: tuple[float, float, float] = (1.0, 0.9, 0.8)
    mixed_share: float = 0.25
    quote_share: float = 0.3
    signature_share: float = 0.6
    footer_share: float = 0.15
    url_share: float = 0.15


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines one simulated organisation; same config, same frames.

    Parameters
    ----------
    n_reps
        AE seats (individual contributors).  Leavers are backfilled into their seat, so
        headcount stays about ``n_reps``; managers come on top (one per
        ``reps_per_manager`` seats, plus regional directors and a VP).
    months
        Length of the simulated history; ``extracted_at = start + months``.
    seed
        Seed of every random draw.
    start
        First day of the simulation, the first day of a calendar quarter (quotas are
        quarterly).  Fixed so output does not depend on today's date.
    """

    n_reps: int = 50
    months: int = 24
    seed: int = 0
    start: pd.Timestamp = field(default_factory=lambda: pd.Timestamp("2024-01-01"))
    reps_per_manager: int = 8
    warmup_months: int = 6
    """Months simulated before ``start`` and not reported, so the organisation starts with a
    mature pipeline and ramped reps instead of an empty CRM.  Deals open at ``start`` are kept
    with their earlier history; past employees stay in the reps table."""
    max_regions: int = 4
    accounts_per_rep: int = 40
    account_level_activities_per_month: float = 4.0
    targets: RealismTargets = field(default_factory=RealismTargets)
    people: PeopleKnobs = field(default_factory=PeopleKnobs)
    deals: DealKnobs = field(default_factory=DealKnobs)
    pay: PayKnobs = field(default_factory=PayKnobs)
    email: EmailKnobs = field(default_factory=EmailKnobs)

    def __post_init__(self) -> None:
        start = pd.Timestamp(self.start)
        if start.tz is not None:
            raise ValueError("SimulationConfig.start must be a naive (UTC) timestamp")
        if start != start.normalize() or start.day != 1 or start.month not in (1, 4, 7, 10):
            raise ValueError(
                f"SimulationConfig.start must be the first day of a calendar quarter: {start}"
            )
        object.__setattr__(self, "start", start)
        if self.n_reps < 1 or self.months < 1 or self.reps_per_manager < 1:
            raise ValueError("n_reps, months and reps_per_manager must be positive")
        if self.warmup_months < 0 or self.warmup_months % 3:
            raise ValueError("warmup_months must be a non-negative multiple of 3")

    @property
    def extracted_at(self) -> pd.Timestamp:
        """End of the simulated history: nothing in the tables is dated later."""
        return self.start + pd.DateOffset(months=self.months)
