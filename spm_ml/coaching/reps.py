"""Coaching a rep on quota: how likely a miss is and why, the pipeline gap in money, the
open deals worth rescuing, activity against the rep's own baseline.

Every figure comes from the served quota-risk estimator (the champion's
``serving_estimator``: classifier, Monte Carlo or their mean) on the same inputs as the
early warnings (:func:`~spm_ml.early_warnings.score_quota_snapshots`); the what-ifs change
the inputs and score them again through the same two parts:

- the **Monte Carlo** part reuses the draws the served P(miss) is read from
  (:func:`~spm_ml.training.quota_risk.monte_carlo_draws`): each open deal's own draws are
  taken from the same stream of uniforms (deal ``i`` always reads row ``i``,
  :func:`~spm_ml.training.quota_risk.each_deal_draws`), so "this deal won" is the rep's
  draws without that deal's draws plus its value at the close in every draw, for every
  deal of every rep in one array operation, and hypothetical deals are drawn by the same
  engine on a stream of their own;
- the **classifier** part re-reads the changed pipeline through the quota features
  (:func:`~spm_ml.features.quota.quota_features`), every what-if of every rep in one call.

The gap is the served estimator's, like the headline P(attain) it starts from.  Under the
blend (the default organisation's choice) the classifier's half reads the added pipeline
too; trees do not extrapolate, so far beyond the pipelines of past periods it stays flat,
and 80% can be out of reach where the Monte Carlo alone would get there (the test
fixture's organisation, 20 reps and 12 months, 45 days into its last quarter: 5 of 19
reps at or within :data:`MAX_NEW_DEALS` deals of 80% under the blend, 10 of 19 by the Monte
Carlo alone): the answer then says how far it gets.

Figures are model estimates, not promises (:data:`CAVEAT` says so in every answer).
Attrition is added only when the caller asks (``include_attrition``): the API decides who
may see it (a rep's manager).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.early_warnings import (
    PHRASES,
    attrition_warnings,
    current_period_snapshots,
    in_words,
    quota_champions,
    score_quota_snapshots,
)
from spm_ml.errors import ModelNotFoundError
from spm_ml.features.quota import quota_features
from spm_ml.features.rep_activity import activity_by_type
from spm_ml.features.reps import manager_at
from spm_ml.features.snapshots import extraction_time
from spm_ml.forecast.rates import PeriodRates
from spm_ml.scoring import RequestError
from spm_ml.training.quota_risk import (
    RATES_ARTIFACT,
    QuotaInputs,
    each_deal_draws,
    monte_carlo_draws,
    served_p_miss,
    serving_estimator,
)

if TYPE_CHECKING:
    from spm_ml.features.context import DealContext
    from spm_ml.registry import LoadedModel

TARGET_P_ATTAIN = 0.80
"""The P(attain) the pipeline gap is measured to."""
QUALIFIED_STAGE = "qualification"
"""The stage hypothetical new pipeline enters at."""
MIN_OWN_DEALS = 3
"""Open deals (at the qualified stage, for win probability and timing) a rep needs for
their own figures to describe new pipeline; below it the organisation's are used."""
MAX_NEW_DEALS = 60
"""Hypothetical deals tried per rep: a gap beyond them is reported as out of reach."""
DRAWS = 2000
SEED = 0
"""The Monte Carlo's draws and seed: those the served P(miss) is read with
(:func:`~spm_ml.training.quota_risk.score_quota_risk`'s defaults, as the warnings use)."""
TOP_DEALS = 3
ACTIVITY_TYPES = ("all", "meeting", "call", "demo", "email")
ACTIVITY_WORDS = {
    "all": "activities",
    "meeting": "meetings",
    "call": "calls",
    "demo": "demos",
    "email": "emails",
}
ACTIVITY_LEVELS = (
    (0.5, "well below"),
    (0.8, "below"),
    (1.25, "about"),
    (2.0, "above"),
    (math.inf, "well above"),
)
"""Ratio to the rep's usual pace below each bound, in words."""
CAVEAT = (
    "P(attain), the pipeline gap and the gains are model estimates from past periods, not "
    "promises: they assume the rest of the rep's pipeline behaves as the models expect."
)
SCORED = "scored"
NO_OPEN_PERIOD = "no quota period open at as_of"
NO_ATTRITION_MODEL = "not scored: no attrition champion"


class UnknownRepError(RequestError, LookupError):
    """A rep id the data does not know."""

    status = 404


@dataclass(frozen=True)
class PipelineGap:
    """The extra qualified pipeline (money) that lifts P(attain) to the target."""

    amount: float | None
    """Rounded to two significant figures; 0 when already there; None when out of reach."""
    deals: int | None
    """Hypothetical deals of ``deal_size`` that make it (None: out of reach)."""
    p_attain_after: float | None
    deal_size: float
    win_probability: float
    days_to_expected_close: float
    size_basis: str
    """``rep``: the size is the rep's median open deal; ``organisation``: everyone's."""
    rate_basis: str
    """``rep``: win probability and timing are those of the rep's open qualified-stage
    deals; ``organisation``: everyone's."""
    sentence: str
    method: str


@dataclass(frozen=True)
class RescueDeal:
    """An open deal and what winning it inside the period does to P(attain)."""

    deal_id: str
    amount: float
    stage: str
    win_probability: float
    p_attain_if_won: float
    gain_pp: float
    sentence: str


@dataclass(frozen=True)
class ActivityAgainstBaseline:
    """Recent activity of one kind against the rep's own usual pace."""

    activity: str
    last_30_days: float
    usual_per_30_days: float | None
    ratio: float | None
    sentence: str


@dataclass(frozen=True)
class RepCoaching:
    """Everything :func:`coach_reps` says about one rep (plain data: floats, str, lists)."""

    rep_id: str
    manager_id: str | None
    as_of: str
    status: str
    """``scored``, or why the quota figures are empty (:data:`NO_OPEN_PERIOD`)."""
    period_start: str | None = None
    period_end: str | None = None
    quota: float | None = None
    days_left: float | None = None
    p_miss: float | None = None
    p_attain: float | None = None
    estimator: str | None = None
    model_version: str | None = None
    drivers: list[str] = field(default_factory=list)
    expected_attainment: float | None = None
    attainment_p10: float | None = None
    attainment_p90: float | None = None
    pipeline_gap: PipelineGap | None = None
    deals_to_rescue: list[RescueDeal] = field(default_factory=list)
    activity_vs_baseline: list[ActivityAgainstBaseline] = field(default_factory=list)
    attrition: dict | None = None
    """Only with ``include_attrition``: ``status`` and, for a top performer scored,
    ``probability, warned, warning_since, drivers, model_version``."""
    caveat: str = CAVEAT

    def as_dict(self) -> dict:
        return asdict(self)


def coach_reps(
    tables: Tables,
    workdir: Path,
    *,
    rep_ids: Sequence[str] | None = None,
    as_of: pd.Timestamp | None = None,
    models: dict[str, LoadedModel] | None = None,
    context: DealContext | None = None,
    include_attrition: bool = False,
    attrition_model: LoadedModel | None = None,
    target: float = TARGET_P_ATTAIN,
    currency: str = "$",
    deal_scores: pd.Series | None = None,
) -> list[RepCoaching]:
    """Coaching for ``rep_ids`` (default: every rep with a quota period open at ``as_of``,
    default the data's extraction), in the order asked.

    ``models`` (``quota-risk`` and ``deal-win``) and ``context`` are the loaded champions
    and the deal model's context, as :func:`~spm_ml.early_warnings.quota_warnings` takes
    them (loaded from ``workdir``'s store when absent).  Every rep with an open period is
    scored (one Monte Carlo, the organisation's figures for reps with too few deals of
    their own), so a rep's figures do not depend on who else was asked for, and P(miss) is
    the warnings' and the batch's to the digit (the same draws).  ``deal_scores``: the
    deal-win champion's probabilities by ``deal_id`` at ``as_of``, when the caller has them.

    **P(miss)** and its drivers are the served estimator's, drivers in the warnings' words.

    **Pipeline gap**: hypothetical deals are added one at a time at the qualified stage
    (:data:`QUALIFIED_STAGE`), each of the rep's median open-deal amount, with the mean win
    probability the deal-win champion gives the rep's open qualified-stage deals and their
    median days to expected close (the organisation's open deals when the rep has fewer
    than :data:`MIN_OWN_DEALS`); the Monte Carlo draws them (slip and amount change as
    learned) and the classifier reads them as pipeline; the gap is the money of the
    fewest such deals that lift the served P(attain) to ``target`` (0 when it is there
    already; out of reach after :data:`MAX_NEW_DEALS`), rounded to two significant figures.

    **Deals to rescue**: each open deal forced to close won inside the period (its value at
    the close in every draw of the same Monte Carlo; for the classifier, a win probability
    of 1, due this period), the P(attain) gain in percentage points, the top
    :data:`TOP_DEALS` with a positive gain.

    **Activity**: activities of each kind in the 30 days before ``as_of`` against the
    rep's mean per 30 days over the 180 days before those
    (:func:`~spm_ml.features.rep_activity.activity_by_type`).

    Memory: the draws of every open deal and of :data:`MAX_NEW_DEALS` hypothetical deals
    per rep are held at once, ``(open deals + 60 x reps) x 2000`` floats (23 MB for the
    test organisation's 19 reps and 321 open deals; a 500-rep organisation would want the
    reps in chunks).
    """
    as_of = pd.Timestamp(as_of) if as_of is not None else extraction_time(tables)
    known = set(tables.reps["rep_id"])
    if rep_ids is not None:
        unknown = [r for r in rep_ids if r not in known]
        if unknown:
            raise UnknownRepError(f"no rep {', '.join(map(repr, unknown))} in the data", "rep_ids")
    models = models or quota_champions(workdir)
    snapshots = current_period_snapshots(tables, as_of)
    snapshots = snapshots[snapshots["as_of"] == as_of].reset_index(drop=True)
    asked = list(rep_ids) if rep_ids is not None else list(snapshots["rep_id"])
    coached: dict[str, RepCoaching] = {}
    if len(snapshots):
        inputs, scored, context = score_quota_snapshots(
            tables, snapshots, workdir, models=models, context=context, deal_scores=deal_scores
        )
        tables = context.tables
        wanted = np.flatnonzero(snapshots["rep_id"].isin(asked).to_numpy())
        coached = _coach_scored(
            tables, inputs, scored, models["quota-risk"], wanted, target, currency
        )
    out = [
        coached.get(rep)
        or RepCoaching(
            rep_id=rep,
            manager_id=_manager(tables, [rep], as_of)[0],
            as_of=as_of.isoformat(),
            status=NO_OPEN_PERIOD,
        )
        for rep in asked
    ]
    if include_attrition:
        out = _with_attrition(out, tables, workdir, as_of, attrition_model)
    return out


def _coach_scored(
    tables: Tables,
    inputs: QuotaInputs,
    scored: pd.DataFrame,
    quota_model: LoadedModel,
    wanted: np.ndarray,
    target: float,
    currency: str,
) -> dict[str, RepCoaching]:
    snapshots = inputs.snapshots
    what_if = WhatIf.build(inputs, quota_model)
    gaps = what_if.pipeline_gaps(tables, target)
    rescues = what_if.rescues(tables)
    activity = activity_by_type(tables, snapshots.iloc[wanted], ACTIVITY_TYPES)
    as_of = snapshots["as_of"].iloc[0]
    managers = _manager(tables, snapshots["rep_id"].to_numpy()[wanted], as_of)
    deals = inputs.deals
    out = {}
    for k, row in enumerate(wanted):
        s = scored.iloc[row]
        mine = np.flatnonzero(deals["snapshot"].to_numpy() == row)
        out[s["rep_id"]] = RepCoaching(
            rep_id=s["rep_id"],
            manager_id=managers[k],
            as_of=as_of.isoformat(),
            status=SCORED,
            period_start=s["period_start"].date().isoformat(),
            period_end=s["period_end"].date().isoformat(),
            quota=float(s["quota_amount"]),
            days_left=float(what_if.days_left[row]),
            p_miss=_r(s["p_miss"]),
            p_attain=_r(1 - s["p_miss"]),
            estimator=str(s["estimator"]),
            model_version=str(quota_model.version),
            drivers=[in_words(d, PHRASES) for d in s["drivers"]],
            expected_attainment=_r(s["expected_attainment"]),
            attainment_p10=_r(s["attainment_p10"]),
            attainment_p90=_r(s["attainment_p90"]),
            pipeline_gap=_gap(gaps, row, target, currency, what_if.days_left[row]),
            deals_to_rescue=_top_rescues(
                deals.iloc[mine], rescues[mine], float(1 - s["p_miss"]), currency
            ),
            activity_vs_baseline=[
                _activity(kind, frame.iloc[k]) for kind, frame in activity.items()
            ],
        )
    return out


@dataclass
class WhatIf:
    """The served estimator's inputs and draws for a set of snapshots, ready to be scored
    again with the pipeline changed (see the module docstring)."""

    inputs: QuotaInputs
    model: LoadedModel
    rates: PeriodRates
    threshold: float
    estimator: str
    totals: np.ndarray
    """``(n_snapshots, draws)``: attainment drawn by the period's end (as served)."""
    deal_draws: np.ndarray
    """``(n_deals, draws)``: what each open deal books in each draw (rows of ``inputs.deals``;
    summed per snapshot they are the served draws' pipeline)."""
    days_left: np.ndarray

    @classmethod
    def build(cls, inputs: QuotaInputs, model: LoadedModel) -> WhatIf:
        rates = PeriodRates.from_dict(model.run_document(RATES_ARTIFACT))
        snapshots, deals = inputs.snapshots, inputs.deals
        rows = np.arange(len(snapshots))
        served = monte_carlo_draws(inputs, rows, rates, draws=DRAWS, seed=SEED)
        return cls(
            inputs=inputs,
            model=model,
            rates=rates,
            threshold=model.record.label.get("threshold", 1.0),
            estimator=serving_estimator(model),
            totals=served.totals(),
            deal_draws=each_deal_draws(inputs, deals, rates, draws=DRAWS, seed=SEED),
            days_left=inputs.X["days_left"].to_numpy(dtype=np.float64),
        )

    def p_attain(self, classifier_rows: pd.DataFrame | None, mc_p_miss: np.ndarray) -> np.ndarray:
        """Served P(attain) from the Monte Carlo's P(miss) and, when the served estimator
        reads it, the classifier's on ``classifier_rows`` (features, row for row)."""
        classifier = np.zeros(len(mc_p_miss))
        if self.estimator != "monte_carlo":
            classifier = self.model.model.predict_proba(classifier_rows)[:, 1]
        return 1.0 - served_p_miss(self.estimator, classifier, mc_p_miss)

    def features_with(self, tables: Tables, rows: np.ndarray, deals: pd.DataFrame) -> pd.DataFrame:
        """The classifier's rows for snapshots ``rows`` (repeats allowed) holding ``deals``
        (``snapshot``: a position in ``rows``): quota features recomputed, rep history as
        scored."""
        X = self.inputs.X
        snapshots = self.inputs.snapshots.iloc[rows].reset_index(drop=True)
        period = quota_features(tables, snapshots, deals, self.inputs.bookings)
        history = X.drop(columns=period.columns).iloc[rows].reset_index(drop=True)
        return pd.concat([period, history], axis=1)[X.columns]

    def rescues(self, tables: Tables) -> np.ndarray:
        """Per open deal: served P(attain) when that deal closes won inside the period."""
        deals = self.inputs.deals
        if deals.empty:
            return np.zeros(0)
        position = deals["snapshot"].to_numpy()
        value = self.won_value(deals)
        won = self.totals[position] - self.deal_draws + value[:, None]
        mc_p_miss = (won < self.threshold).mean(axis=1)
        rows = None
        if self.estimator != "monte_carlo":
            # one classifier row per deal: its snapshot's deals, that one certain and due
            counts = np.bincount(position)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            peers = np.concatenate([np.arange(starts[p], starts[p] + counts[p]) for p in position])
            owner = np.repeat(np.arange(len(deals)), counts[position])
            expanded = deals.iloc[peers].assign(snapshot=owner).reset_index(drop=True)
            forced = peers == owner
            expanded.loc[forced, "p_win"] = 1.0
            expanded.loc[forced, "days_to_expected_close"] = 0.0
            rows = self.features_with(tables, position, expanded)
        return self.p_attain(rows, mc_p_miss)

    def won_value(self, deals: pd.DataFrame) -> np.ndarray:
        """What each deal books if won, as a share of its snapshot's quota (the engine's
        learned amount change by stage)."""
        quota = self.inputs.snapshots["quota_amount"].to_numpy(dtype=np.float64)
        amount = np.nan_to_num(deals["amount"].to_numpy(dtype=np.float64))
        change = self.rates.amount_change(deals["stage"].to_numpy(dtype=object))
        return amount * change / quota[deals["snapshot"].to_numpy()]

    def new_deal_terms(self) -> pd.DataFrame:
        """Per snapshot, the hypothetical qualified deal: ``amount`` (the median of the
        rep's open deals) with ``size_basis``, and ``p_win`` (mean) and
        ``days_to_expected_close`` (median) of the rep's open qualified-stage deals with
        ``rate_basis``: ``rep``, or ``organisation`` (every open deal scored) when the rep
        has fewer than :data:`MIN_OWN_DEALS` such deals."""
        deals = self.inputs.deals
        position = deals["snapshot"].to_numpy()
        qualified = deals["stage"].to_numpy(dtype=object) == QUALIFIED_STAGE
        amount = deals["amount"].to_numpy(dtype=np.float64)
        p_win = deals["p_win"].to_numpy(dtype=np.float64)
        timing = deals["days_to_expected_close"].to_numpy(dtype=np.float64)
        rows = []
        for p in range(len(self.inputs.snapshots)):
            mine = position == p
            own_size = mine.sum() >= MIN_OWN_DEALS
            own_rate = (mine & qualified).sum() >= MIN_OWN_DEALS
            sized = mine if own_size else np.ones(len(deals), dtype=bool)
            rated = mine & qualified if own_rate else qualified
            rows.append(
                {
                    "amount": _summary(np.median, amount[sized]),
                    "size_basis": "rep" if own_size else "organisation",
                    "p_win": _summary(np.mean, p_win[rated]),
                    "days_to_expected_close": _summary(np.median, timing[rated]),
                    "rate_basis": "rep" if own_rate else "organisation",
                }
            )
        return pd.DataFrame(rows)

    def pipeline_gaps(self, tables: Tables, target: float) -> dict:
        """Per snapshot: served P(attain) with 0..:data:`MAX_NEW_DEALS` hypothetical
        qualified deals added (``p_attain``: ``(n, MAX_NEW_DEALS + 1)``) and their terms."""
        terms = self.new_deal_terms()
        n, k = len(terms), MAX_NEW_DEALS
        snapshot = np.repeat(np.arange(n), k)
        new = pd.DataFrame(
            {
                "snapshot": snapshot,
                "deal_id": [f"new-{i}" for i in range(n * k)],
                "stage": QUALIFIED_STAGE,
                "amount": terms["amount"].to_numpy()[snapshot],
                "days_to_expected_close": terms["days_to_expected_close"].to_numpy()[snapshot],
                "days_left": self.days_left[snapshot],
                "p_win": terms["p_win"].to_numpy()[snapshot],
            }
        )
        # a stream of its own (seed + 1): the open deals' draws stay exactly as served
        extra = each_deal_draws(self.inputs, new, self.rates, draws=DRAWS, seed=SEED + 1)
        p_miss = np.empty((n, k + 1))
        for p in range(n):  # cumulative sums one rep at a time
            cumulative = np.cumsum(extra[p * k : (p + 1) * k], axis=0)
            p_miss[p, 0] = (self.totals[p] < self.threshold).mean()
            p_miss[p, 1:] = (self.totals[p][None, :] + cumulative < self.threshold).mean(axis=1)
        rows = None
        if self.estimator != "monte_carlo":
            rows = self._gap_features(tables, new, n, k)
        p_attain = self.p_attain(rows, p_miss.ravel()).reshape(n, k + 1)
        return {"p_attain": p_attain, "terms": terms, "target": target}

    def _gap_features(self, tables: Tables, new: pd.DataFrame, n: int, k: int) -> pd.DataFrame:
        """Classifier rows for each snapshot with its first 0..k hypothetical deals."""
        deals = self.inputs.deals
        position = deals["snapshot"].to_numpy()
        pool = pd.concat([deals, new], ignore_index=True)
        rows, snapshot = [], []
        for p in range(n):
            own = np.flatnonzero(position == p)
            for j in range(k + 1):
                rows.append(np.concatenate([own, len(deals) + p * k + np.arange(j)]))
                snapshot.append(np.full(len(rows[-1]), p * (k + 1) + j))
        expanded = pool.iloc[np.concatenate(rows)].assign(snapshot=np.concatenate(snapshot))
        return self.features_with(tables, np.repeat(np.arange(n), k + 1), expanded)


def _gap(gaps: dict, row: int, target: float, currency: str, days_left: float) -> PipelineGap:
    """The fewest hypothetical deals whose served P(attain) reaches ``target``, in words."""
    p_attain = gaps["p_attain"][row]
    terms = gaps["terms"].iloc[row]
    size, p_win, timing = (float(terms[c]) for c in ("amount", "p_win", "days_to_expected_close"))
    k = len(p_attain) - 1
    reached = np.flatnonzero(p_attain >= target)
    whose = {"rep": "the rep's", "organisation": "the organisation's"}
    method = (
        f"Model estimate: qualified-stage deals of {_money(size, currency)} "
        f"({whose[terms['size_basis']]} median open deal), each won with probability "
        f"{p_win:.0%} and expected to close in {timing:.0f} days "
        f"({whose[terms['rate_basis']]} open qualified-stage deals), added one at a time to "
        f"the quota-risk Monte Carlo ({DRAWS} draws, learned slips and amount changes) and to "
        f"the classifier's pipeline features until the served P(attain) reaches {target:.0%}."
    )
    known = np.isfinite([size, p_win, timing]).all() and size > 0
    common = {
        "deal_size": _r(size, 2) if known else 0.0,
        "win_probability": _r(p_win) if known else 0.0,
        "days_to_expected_close": _r(timing, 1) if known else 0.0,
        "size_basis": str(terms["size_basis"]),
        "rate_basis": str(terms["rate_basis"]),
        "method": method if known else "no open qualified deal to describe new pipeline by",
    }
    if len(reached) and reached[0] == 0:
        return PipelineGap(
            amount=0.0,
            deals=0,
            p_attain_after=_r(p_attain[0]),
            sentence=f"already at {target:.0%} P(attain) or above ({p_attain[0]:.0%}): "
            "no pipeline gap",
            **common,
        )
    if not known:
        sentence = (
            "no open qualified deal in the organisation to size new pipeline by: no gap computed"
        )
        return PipelineGap(
            amount=None, deals=None, p_attain_after=None, sentence=sentence, **common
        )
    if not len(reached):
        return PipelineGap(
            amount=None,
            deals=None,
            p_attain_after=None,
            sentence=f"even {k} more qualified deals of about {_money(_about(size), currency)} "
            f"({_money(_about(k * size), currency)}) would not lift P(attain) to {target:.0%} "
            f"(at most {p_attain.max():.0%}) with {days_left:.0f} days left: this period "
            "rests on the bookings and the deals already open",
            **common,
        )
    j = int(reached[0])
    amount = _about(j * size)
    return PipelineGap(
        amount=amount,
        deals=j,
        p_attain_after=_r(p_attain[j]),
        sentence=f"needs about {_money(amount, currency)} more qualified pipeline "
        f"({j} deal{'s' if j > 1 else ''} of about {_money(_about(size), currency)}) "
        f"to reach {target:.0%} P(attain)",
        **common,
    )


def _top_rescues(
    deals: pd.DataFrame, p_attain_won: np.ndarray, base: float, currency: str
) -> list[RescueDeal]:
    """The deals whose win lifts P(attain) most, best first, positive gains only."""
    gains = (p_attain_won - base) * 100
    out = []
    # equal gains (each deal alone is enough): the likelier win first
    order = np.lexsort((-deals["p_win"].to_numpy(dtype=np.float64), -np.round(gains, 9)))
    for i in order[:TOP_DEALS]:
        if gains[i] <= 0:
            break
        deal = deals.iloc[i]
        amount = float(np.nan_to_num(deal["amount"]))
        sentence = (
            f"winning {deal['deal_id']} ({deal['stage']}, {_money(amount, currency)}, "
            f"{deal['p_win']:.0%} likely to be won) inside the period would lift P(attain) "
            f"from {base:.0%} to {p_attain_won[i]:.0%} ({gains[i]:+.0f} pp)"
        )
        out.append(
            RescueDeal(
                deal_id=str(deal["deal_id"]),
                amount=amount,
                stage=str(deal["stage"]),
                win_probability=_r(deal["p_win"]),
                p_attain_if_won=_r(p_attain_won[i]),
                gain_pp=_r(gains[i], 2),
                sentence=sentence,
            )
        )
    return out


def _with_attrition(
    coached: list[RepCoaching],
    tables: Tables,
    workdir: Path,
    as_of: pd.Timestamp,
    model: LoadedModel | None,
) -> list[RepCoaching]:
    """Each rep's attrition warning (the early warnings': top performers only), or why not."""
    from spm_ml.batch.rep_risk import NOT_TOP

    try:
        warnings = attrition_warnings(tables, workdir, as_of=as_of, model=model)
    except ModelNotFoundError:  # (its message names the store: not for an API answer)
        return [replace(c, attrition={"status": NO_ATTRITION_MODEL}) for c in coached]
    by_rep = warnings.set_index("rep_id") if len(warnings) else pd.DataFrame()
    out = []
    for c in coached:
        if c.rep_id not in by_rep.index:
            out.append(replace(c, attrition={"status": NOT_TOP}))
            continue
        w = by_rep.loc[c.rep_id]
        since = w["warning_since"]
        attrition = {
            "status": SCORED,
            "probability": _r(w["probability"]),
            "warned": bool(w["warned"]),
            "warning_since": None if since is None or pd.isna(since) else since.isoformat(),
            "drivers": list(w["drivers"]),
            "model_version": str(w["model_version"]),
        }
        out.append(replace(c, attrition=attrition))
    return out


def _about(value: float) -> float:
    """``value`` to two significant figures (48,317 -> 48,000)."""
    if not value or not np.isfinite(value):
        return 0.0
    digits = 1 - int(math.floor(math.log10(abs(value))))
    return float(round(value, digits))


def _r(value: float, digits: int = 4) -> float:
    """A plain float for the answer, rounded (probabilities to 4 places)."""
    return round(float(value), digits)


def _money(value: float, currency: str) -> str:
    return f"{currency}{value:,.0f}"


def _summary(statistic, values: np.ndarray) -> float:
    """``statistic`` of the known values (NaN when none is)."""
    values = values[~np.isnan(values)]
    return float(statistic(values)) if len(values) else float("nan")


def _manager(tables: Tables, reps, as_of: pd.Timestamp) -> list[str | None]:
    reps = np.asarray(reps, dtype=object)
    when = np.full(len(reps), np.datetime64(as_of, "ns"))
    return [None if pd.isna(m) else str(m) for m in manager_at(tables, reps, when)]


def _activity(kind: str, row: pd.Series) -> ActivityAgainstBaseline:
    noun = ACTIVITY_WORDS[kind]
    recent, usual, ratio = float(row["recent"]), row["usual"], row["ratio"]
    if pd.isna(usual):
        sentence = f"{noun}: {recent:.0f} in the last 30 days; no baseline yet (under 30 days)"
        return ActivityAgainstBaseline(kind, recent, None, None, sentence)
    if pd.isna(ratio):
        sentence = f"{noun}: {recent:.0f} in the last 30 days, none in the 6 months before"
        return ActivityAgainstBaseline(kind, recent, _r(usual, 2), None, sentence)
    level = next(words for bound, words in ACTIVITY_LEVELS if ratio < bound)
    sentence = (
        f"{noun}: {recent:.0f} in the last 30 days against a usual {usual:.1f} per 30 days "
        f"over the 6 months before ({ratio:.1f} times, {level} usual)"
    )
    return ActivityAgainstBaseline(kind, recent, _r(usual, 2), _r(ratio, 3), sentence)
