"""The bookings forecast of a period: P10/P50/P90 per rep, team and company, and its split.

One Monte Carlo (:func:`spm_ml.forecast.monte_carlo.draw_snapshots`, quota risk's) draws
every rep's bookings by the period's end, in money (quota risk draws the same engine in
shares of quota; :mod:`spm_ml.forecast.periods` says why money here).  Draw ``j`` of every
rep is one joint future, so a team's or the company's draws are the reps' draws summed draw
by draw and their quantiles are quantiles of sums
(:func:`~spm_ml.forecast.monte_carlo.sum_by`).

What each draw holds: **closed won to date** (a fact: deals already closed are never
scored), **open pipeline** (each deal open at ``as_of`` closes won in the period with its
win probability times the learned probability that its close does not slip out, at a
learned amount change) and **not yet created** (drawn from what the reps of the rep's team
booked, in past periods, from deals created after the same point of the period).

The rates are learned at ``as_of`` from every period closed before it (:func:`rates_at`),
not read from the quota-risk champion's ``period_rates.json``: those were learned from its
training window only (they stop where its test window starts, two quarters or more before
the data ends), in shares of quota, at its snapshot fractions and with its slip model; the
forecast of today wants the latest closed periods, money, the pool at today's point of the
period and a slip model that knows deal size.  The back-test
(:mod:`spm_ml.forecast.backtest`) replays exactly this procedure, so its figures are the
forecast's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.errors import SpmMlError
from spm_ml.features.attainment import Bookings, period_close
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig, pipeline_state
from spm_ml.features.quota import DEFAULT_FRACTIONS, open_deal_owners, open_deal_rows
from spm_ml.features.reps import team_at
from spm_ml.forecast.monte_carlo import draw_snapshots, sum_by
from spm_ml.forecast.periods import Period, period_snapshots, periods_of
from spm_ml.forecast.rates import PeriodRates
from spm_ml.forecast.widening import widen
from spm_ml.training.quota_risk import (
    DealScorer,
    QuotaInputs,
    deal_outcomes,
    deal_probabilities,
    learn_rates,
    new_deal_shares,
    open_deal_frame,
)

logger = logging.getLogger(__name__)

LEVELS = ("rep", "team", "company")
COMPANY = "company"
QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class ForecastConfig:
    """How the draws are made; the same for the forecast and its back-test."""

    sims: int = 2000
    seed: int = 0
    history_fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    """Points of past periods the rates are learned at (the forecast's own point is added)."""
    slip_size: bool = True
    """The slip model reads deal size (:class:`~spm_ml.forecast.rates.PeriodRates`): without
    it big deals were forecast to land in the period as often as small ones (with neither
    it nor mature deal labels, the company's mid-period P50 ran 25% above what was booked
    on the simulated organisation)."""
    common_shocks: bool = True
    """Draw a shock per draw common to every rep, on the open deals' probabilities and on
    the new-deal bookings, as wide as past periods varied beyond what independent deals
    explain (:func:`common_shocks`): without it a company's interval is that of hundreds of
    independent coin flips, and held 29-43% of the actual bookings at mid-period."""
    slip_standing: bool = True
    """The slip model reads the owning rep's standing at ``as_of`` (booked so far, a share
    of quota): reps manage deal timing around the period's end
    (:func:`~spm_ml.training.quota_risk.rep_standing`).  Without it the company's
    mid-period P50 ran 5-11% below what was booked on four of five simulated
    organisations (``benchmarks/forecast_backtest.py --no-slip-standing``)."""
    slip_settle_days: int | None = 180
    """The slip model learns from snapshots at least this old at ``as_of`` (when there are
    enough): younger ones have not seen their slow wins yet
    (:meth:`~spm_ml.forecast.rates.PeriodRates.learn`'s ``slip_known_by``)."""


def no_scores(rows: pd.DataFrame, row_features: pd.DataFrame) -> np.ndarray:
    """Past periods' pipeline needs no win probability: the rates read stages, amounts and
    dates only."""
    return np.full(len(rows), np.nan)


def history_inputs(
    tables: Tables,
    periods: Sequence[Period],
    fractions: Sequence[float],
    *,
    context: DealContext,
    bookings: Bookings,
) -> QuotaInputs:
    """Every rep of ``periods`` seen at each of ``fractions`` of them (:func:`pipeline_inputs`,
    no win probability, so no deal feature configuration): what :func:`rates_at` and
    :func:`common_shocks` learn from."""
    points = [(period, period.at(f)) for period in periods for f in sorted(set(fractions))]
    owned = open_deal_owners(tables, np.array([at for _, at in points], dtype="datetime64[ns]"))
    owners = owners_by_time(owned)
    none = np.array([], dtype=object)
    parts = [
        period_snapshots(tables, period, at, bookings, owners.get(np.datetime64(at, "ns"), none))
        for period, at in points
    ]
    snapshots = pd.concat(parts, ignore_index=True)
    return pipeline_inputs(tables, snapshots, owned, context=context, bookings=bookings)


def owners_by_time(owned: pd.DataFrame) -> dict[np.datetime64, np.ndarray]:
    """:func:`~spm_ml.features.quota.open_deal_owners`' owners split by time (its rows come
    time by time): what :func:`period_snapshots` takes at each point."""
    times = owned["as_of"].to_numpy(dtype="datetime64[ns]")
    reps = owned["rep_id"].to_numpy(dtype=object)
    unique, starts = np.unique(times, return_index=True)  # times come sorted
    stops = [*starts[1:], len(times)]
    return {t: reps[a:b] for t, a, b in zip(unique, starts, stops, strict=True)}


def pipeline_inputs(
    tables: Tables,
    snapshots: pd.DataFrame,
    owned: pd.DataFrame,
    *,
    context: DealContext,
    bookings: Bookings,
    score: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> QuotaInputs:
    """The forecast's inputs for ``snapshots`` (:func:`period_snapshots`' rows): their open
    deals (``owned``: :func:`~spm_ml.features.quota.open_deal_owners` at their times) with
    :data:`~spm_ml.features.deals.PIPELINE_STATE` and ``score``'s probabilities (NaN
    without, :func:`no_scores`), and ``X`` with ``team`` and ``attainment_to_date``.

    That is all the rates, the shocks and the draws read.  Quota risk's
    :func:`~spm_ml.training.quota_risk.quota_inputs` gives the same values for these and
    featurises every deal and rep in full besides (``tests/forecast/test_history_inputs.py``):
    at a million open deals, over 3 minutes and 20 GB for the past periods alone.
    """
    rows = open_deal_rows(tables, snapshots, owned)
    state = pipeline_state(tables, rows[["deal_id", "as_of"]], context)
    if not len(rows):
        p_win = np.zeros(0)
    else:
        p_win = score(rows) if score is not None else no_scores(rows, state)
    reps, as_of = snapshots["rep_id"], snapshots["as_of"]
    booked = bookings.between(reps, snapshots["period_start"], as_of)
    deals = open_deal_frame(snapshots, rows, state, p_win, booked)
    X = pd.DataFrame(
        {
            "team": team_at(tables, reps.to_numpy(dtype=object), as_of.to_numpy()),
            "attainment_to_date": booked / snapshots["quota_amount"].to_numpy(dtype=np.float64),
        },
        index=snapshots.index,
    )
    return QuotaInputs(snapshots, X, deals, bookings)


def rates_at(
    tables: Tables,
    history: QuotaInputs,
    as_of: pd.Timestamp,
    config: ForecastConfig | None = None,
) -> PeriodRates:
    """:class:`PeriodRates` from the reps active in periods closed by ``as_of``, with what
    was known at ``as_of`` (:func:`~spm_ml.training.quota_risk.learn_rates`)."""
    snapshots = history.snapshots
    closed = (period_close(snapshots["period_end"]) <= as_of).to_numpy()
    train = np.flatnonzero(closed & snapshots["active"].to_numpy(dtype=bool))
    if not len(train):
        raise SpmMlError(
            f"no period closed before {as_of:%Y-%m-%d}: the forecast learns slips, amount "
            "changes and new-deal bookings from closed periods"
        )
    config = config or ForecastConfig()
    settle = config.slip_settle_days
    known_by = None if settle is None else as_of - pd.Timedelta(days=settle)
    return learn_rates(
        tables,
        history,
        train,
        as_of,
        slip_size=config.slip_size,
        slip_known_by=known_by,
        slip_standing=config.slip_standing,
    )


def common_shocks(
    tables: Tables,
    history: QuotaInputs,
    as_of: pd.Timestamp,
    fraction: float,
    rates: PeriodRates,
) -> tuple[float, float]:
    """``(sigma_pipeline, sigma_new)``: how much the periods closed by ``as_of``, seen at the
    same point, varied from one to the next beyond what independent deals explain.

    For each past period: the open pipeline's in-period wins (amount at close) over its
    stage-rate expectation, and the company's new-deal bookings over their mean across
    periods.  The spread of their logarithms, less the spread that independent deals
    (or reps) alone would give, is the variance of a shock common to the whole period.  Zero
    with fewer than three past periods: two ratios say nothing about a spread.
    """
    snaps = history.snapshots
    closed = (period_close(snaps["period_end"]) <= as_of).to_numpy() & snaps["active"].to_numpy(
        dtype=bool
    )
    fractions = snaps["fraction_elapsed"].to_numpy()
    if not closed.any():
        return 0.0, 0.0
    nearest = fractions[closed][np.abs(fractions[closed] - fraction).argmin()]
    rows = np.flatnonzero(closed & (np.abs(fractions - nearest) < 0.01))
    if snaps["period_start"].iloc[rows].nunique() < 3:
        return 0.0, 0.0
    bookings = history.bookings
    deals = history.deals[np.isin(history.deals["snapshot"].to_numpy(), rows)]
    outcome, closed_at = deal_outcomes(tables, deals["deal_id"])
    close = period_close(snaps["period_end"]).to_numpy()[deals["snapshot"].to_numpy()]
    won = (outcome == "won") & (closed_at < close)
    at_close = pd.Series(bookings.amounts, index=bookings.deals["deal_id"])
    value = np.nan_to_num(deals["amount"].to_numpy(dtype=np.float64))
    realised = np.where(won, at_close.reindex(deals["deal_id"]).fillna(0.0).to_numpy(), 0.0)
    p = rates.stage_rate(deals["stage"].to_numpy(dtype=object))
    period = snaps["period_start"].to_numpy()[deals["snapshot"].to_numpy()]
    pipe = (
        pd.DataFrame(
            {"period": period, "real": realised, "exp": p * value, "var": p * (1 - p) * value**2}
        )
        .groupby("period")[["real", "exp", "var"]]
        .sum()
    )
    pipe = pipe[(pipe["real"] > 0) & (pipe["exp"] > 0)]
    noise = pipe["var"] / pipe["exp"] ** 2
    sigma_pipeline = _excess_sigma(np.log(pipe["real"] / pipe["exp"]), noise)
    subset = snaps.iloc[rows].reset_index(drop=True)
    new = pd.Series(new_deal_shares(bookings, subset), index=subset["period_start"])
    per_period = new.groupby(level=0).agg(["sum", "var", "count"])
    per_period = per_period[per_period["sum"] > 0]
    noise = per_period["var"] * per_period["count"] / per_period["sum"] ** 2
    sigma_new = _excess_sigma(np.log(per_period["sum"] / per_period["sum"].mean()), noise)
    return sigma_pipeline, sigma_new


def _excess_sigma(log_ratios: pd.Series, noise: pd.Series) -> float:
    """Standard deviation of the log ratios beyond their mean sampling variance."""
    if len(log_ratios) < 3:
        return 0.0
    excess = float(np.var(log_ratios, ddof=1)) - float(np.nanmean(noise))
    return float(np.sqrt(max(excess, 0.0)))


def shock_factors(sigma: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws,)`` log-normal factors of mean 1 and log spread ``sigma``."""
    return np.exp(sigma * rng.standard_normal(draws) - sigma**2 / 2)


@dataclass
class BookingForecast:
    """One period's drawn bookings at ``as_of``, per rep, in money."""

    period: Period
    as_of: pd.Timestamp
    reps: pd.DataFrame
    """``rep_id, team, quota, scale, active``, row-aligned with the draws."""
    deals: pd.DataFrame
    """The open deals drawn: ``deal_id, rep_id, stage, amount, p_win, p_close_in_period``."""
    booked: np.ndarray
    """``(n_reps,)``: closed won to date."""
    pipeline: np.ndarray
    """``(n_reps, sims)``: from deals open at ``as_of``."""
    new: np.ndarray
    """``(n_reps, sims)``: from deals not created yet."""
    rates: PeriodRates
    inputs: QuotaInputs
    excluded: tuple[str, ...] = ()
    config: ForecastConfig = field(default_factory=ForecastConfig)
    widening: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Per level, the back-tested widening ``(sigma, periods taught)`` of the total's 80%
    range (:mod:`~spm_ml.forecast.widening`); empty without a back-test."""

    def totals(self) -> np.ndarray:
        """``(n_reps, sims)``: bookings by the period's end."""
        return self.booked[:, None] + self.pipeline + self.new

    def draws(self, level: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(ids, {"booked", "pipeline", "new", "total": (n_ids, sims)})`` at ``level``:
        each rep, each team (the rep's team at ``as_of``) or the company, summed draw by
        draw."""
        parts = {
            "booked": np.repeat(self.booked[:, None], self.pipeline.shape[1], axis=1),
            "pipeline": self.pipeline,
            "new": self.new,
        }
        if level == "rep":
            ids = self.reps["rep_id"].to_numpy(dtype=object)
            out = parts
        elif level in ("team", COMPANY):
            groups = self.reps["team"] if level == "team" else np.full(len(self.reps), COMPANY)
            out = {}
            for name, values in parts.items():
                ids, out[name] = sum_by(values, np.asarray(groups))
        else:
            raise ValueError(f"unknown level {level!r}: one of {LEVELS}")
        out["total"] = out["booked"] + out["pipeline"] + out["new"]
        return ids, out

    def quota(self, level: str, ids: np.ndarray) -> np.ndarray:
        """Quota per id (NaN where a rep of the group has none)."""
        quota = self.reps["quota"]
        if level == "rep":
            return quota.to_numpy(dtype=np.float64)
        groups = self.reps["team"] if level == "team" else pd.Series(COMPANY, index=self.reps.index)
        summed = quota.groupby(groups.to_numpy()).sum(min_count=1)
        missing = quota.isna().groupby(groups.to_numpy()).any()
        return summed.where(~missing).reindex(ids).to_numpy(dtype=np.float64)

    def summary(self, levels: Sequence[str] = LEVELS) -> pd.DataFrame:
        """One row per rep, team and company: ``level, id, quota, closed_won``, the open
        pipeline's and the not-yet-created deals' P10/P50/P90, the total's P10/P50/P90,
        ``expected`` and ``p_reach_quota`` (NaN without a quota); with a back-test
        (:attr:`widening`), the total's back-tested 80% range ``backtested_p10``,
        ``backtested_p90`` and the ``backtested_sigma`` and ``backtested_periods`` behind it
        (NaN and 0: too few past periods, the range is the draws' own)."""
        frames = []
        for level in levels:
            ids, draws = self.draws(level)
            quota = self.quota(level, ids)
            row = {"level": level, "id": ids, "quota": quota}
            row["closed_won"] = draws["booked"][:, 0] if len(ids) else np.zeros(0)
            for part, name in (("pipeline", "open"), ("new", "new"), ("total", "total")):
                q = np.quantile(draws[part], QUANTILES, axis=1)
                for i, level_q in enumerate(("p10", "p50", "p90")):
                    row[f"{name}_{level_q}"] = q[i]
            row["expected"] = draws["total"].mean(axis=1)
            if self.widening:
                sigma, periods = self.widening.get(level, (np.nan, 0))
                low, row["backtested_p90"] = widen(
                    row["total_p10"], row["total_p50"], row["total_p90"], sigma
                )
                # what is booked is a fact: no range goes below it
                row["backtested_p10"] = np.maximum(low, row["closed_won"])
                row["backtested_sigma"] = np.full(len(ids), sigma)
                row["backtested_periods"] = np.full(len(ids), periods)
            with np.errstate(invalid="ignore"):
                reach = (draws["total"] >= quota[:, None]).mean(axis=1)
            row["p_reach_quota"] = np.where(np.isnan(quota), np.nan, reach)
            frames.append(pd.DataFrame(row))
        out = pd.concat(frames, ignore_index=True)
        teams = self.reps.set_index("rep_id")["team"]
        out.insert(2, "team", np.where(out["level"] == "rep", out["id"].map(teams), None))
        return out


def forecast_bookings(
    tables: Tables,
    period: Period,
    as_of: pd.Timestamp,
    *,
    score_deals: DealScorer,
    deal_config: DealFeatureConfig,
    context: DealContext,
    config: ForecastConfig | None = None,
    history: QuotaInputs | None = None,
    bookings: Bookings | None = None,
    exclude: Sequence[str] = (),
    deal_scores: pd.Series | None = None,
) -> BookingForecast:
    """Draw ``period``'s bookings as seen at ``as_of``.

    ``score_deals`` gives the open deals' win probabilities (the deal-win champion for a
    forecast, models blind to ``as_of``'s future in the back-test); ``history`` (built by
    :func:`history_inputs`) may be shared by several calls, as the back-test does; deals
    in ``exclude`` never close (a what-if: "what if I lose my biggest deal?");
    ``deal_scores`` (by ``deal_id``): the open deals' probabilities at ``as_of`` when
    ``score_deals`` gave them already (the batch job's scores), so they are not featurised
    and scored twice (:func:`deal_probabilities`).  :attr:`BookingForecast.inputs` holds
    what the draws read (:func:`pipeline_inputs`), not quota risk's full features.
    """
    config = config or ForecastConfig()
    as_of = pd.Timestamp(as_of)
    if not period.start <= as_of < period.close:
        raise SpmMlError(
            f"as of {as_of:%Y-%m-%d %H:%M} is outside the period {period.label} "
            f"({period.start:%Y-%m-%d} to {period.end:%Y-%m-%d}): a forecast is made inside it"
        )
    bookings = bookings or Bookings.build(tables)
    if history is None:
        closed = [p for p in periods_of(tables) if p.close <= as_of]
        fractions = (*config.history_fractions, period.fraction(as_of))
        history = history_inputs(tables, closed, fractions, context=context, bookings=bookings)
    rates = rates_at(tables, history, as_of, config)
    owned = open_deal_owners(tables, np.array([as_of], dtype="datetime64[ns]"))
    owners = owned["rep_id"].to_numpy(dtype=object)
    snapshots = period_snapshots(tables, period, as_of, bookings, owners)
    if snapshots.empty:
        raise SpmMlError(f"nobody can book in {period.label} as of {as_of:%Y-%m-%d}")
    score = deal_probabilities(
        tables,
        score_deals,
        deal_scores,
        scores_as_of=as_of,
        deal_config=deal_config,
        context=context,
    )
    inputs = pipeline_inputs(
        tables, snapshots, owned, context=context, bookings=bookings, score=score
    )
    _check_excluded(tables, inputs, exclude, as_of)
    scale = snapshots["quota_amount"].to_numpy(dtype=np.float64)
    teams = inputs.X["team"].to_numpy(dtype=object)
    shocks = {}
    if config.common_shocks:
        sigmas = common_shocks(tables, history, as_of, period.fraction(as_of), rates)
        # a stream of its own, so the deals' and the new-deal draws stay as they were
        rng = np.random.default_rng([config.seed, 1])
        shocks = {
            "pipeline_factor": shock_factors(sigmas[0], config.sims, rng),
            "new_factor": shock_factors(sigmas[1], config.sims, rng),
        }
    drawn = draw_snapshots(
        inputs.deals,
        inputs.X["attainment_to_date"].to_numpy(dtype=np.float64),
        scale,
        snapshots["fraction_elapsed"].to_numpy(),
        teams,
        rates,
        draws=config.sims,
        seed=config.seed,
        excluded=frozenset(exclude),
        **shocks,
    )
    # a rep who has left books no new deal; what they booked before leaving stays
    drawn = dataclasses.replace(drawn, new=drawn.new * snapshots["active"].to_numpy()[:, None])
    reps = snapshots[["rep_id", "quota", "active"]].assign(team=teams, scale=scale)
    return BookingForecast(
        period=period,
        as_of=as_of,
        reps=reps,
        deals=_drawn_deals(inputs, rates, snapshots, exclude),
        booked=drawn.booked * scale,
        pipeline=drawn.pipeline * scale[:, None],
        new=drawn.new * scale[:, None],
        rates=rates,
        inputs=inputs,
        excluded=tuple(exclude),
        config=config,
    )


def _drawn_deals(
    inputs: QuotaInputs, rates: PeriodRates, snapshots: pd.DataFrame, exclude: Sequence[str]
) -> pd.DataFrame:
    deals = inputs.deals
    p_close = np.nan_to_num(deals["p_win"].to_numpy(dtype=np.float64)) * rates.p_in_period(deals)
    excluded = deals["deal_id"].isin(set(exclude)).to_numpy()
    return pd.DataFrame(
        {
            "deal_id": deals["deal_id"].to_numpy(),
            "rep_id": snapshots["rep_id"].to_numpy()[deals["snapshot"].to_numpy()],
            "stage": deals["stage"].to_numpy(),
            "amount": deals["amount"].to_numpy(),
            "p_win": deals["p_win"].to_numpy(),
            "p_close_in_period": np.where(excluded, 0.0, p_close),
            "excluded": excluded,
        }
    )


def _check_excluded(
    tables: Tables, inputs: QuotaInputs, exclude: Sequence[str], as_of: pd.Timestamp
) -> None:
    """A what-if names deals open at ``as_of``; anything else is a mistake to report."""
    open_ids = set(inputs.deals["deal_id"])
    known = tables.deals.set_index("deal_id")
    for deal_id in exclude:
        if deal_id in open_ids:
            continue
        if deal_id not in known.index:
            raise SpmMlError(f"--exclude-deal {deal_id!r}: no such deal in deals.deal_id")
        deal = known.loc[deal_id]
        if pd.notna(deal["closed_at"]) and deal["closed_at"] < as_of:
            why = f"it closed {deal['outcome']} on {deal['closed_at']:%Y-%m-%d} (a fact)"
        elif deal["created_at"] >= as_of:
            why = f"it was created on {deal['created_at']:%Y-%m-%d}, after as of"
        else:
            why = "its owner then books in no forecast row"
        raise SpmMlError(f"--exclude-deal {deal_id!r} is not open at {as_of:%Y-%m-%d}: {why}")
