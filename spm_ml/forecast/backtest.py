"""The back-test: every past period forecast again at 25/50/75% elapsed, as it could have been.

For each closed period and each point of it, :func:`replay` runs the forecast's own
procedure (:func:`~spm_ml.forecast.bookings.forecast_bookings`) with only what was known at
that ``as_of``:

- open deals are scored by deal models that never saw a label known at or after ``as_of``
  nor the deal itself (:func:`~spm_ml.training.deal_scores.out_of_fold_probabilities`, the
  quota-risk family's blind models, with ``cutoff = as_of``);
- slips, amount changes and new-deal pools are learned from the periods closed before
  ``as_of`` (:func:`~spm_ml.forecast.bookings.rates_at`).

Each forecast is then set against what was booked, per rep, per team and for the company,
beside two references computed in the same run on the same rows:

- ``stage_weighted``: booked to date + open amount x its stage's historical in-period win
  rate at the same point of past periods + the mean new-deal bookings at this point
  (quota risk's :func:`~spm_ml.training.quota_risk.stage_weighted_expectation`), what a
  CRM's weighted pipeline gives, told how much of the period is left;
- ``run_rate``: booked to date + the rest of the period at the mean bookings per period of
  the last :attr:`BacktestConfig.run_rate_periods` closed periods (a rep's own, a team's
  reps', the company's own).

Metrics (:func:`metrics`): 80% interval coverage, P50 MAPE and bias (relative to the actual;
units that booked nothing are left out of MAPE and bias and counted), and CRPS from the
draws.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.errors import SpmMlError
from spm_ml.features.attainment import Bookings
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig
from spm_ml.features.snapshots import extraction_time
from spm_ml.forecast.bookings import (
    COMPANY,
    LEVELS,
    BookingForecast,
    ForecastConfig,
    forecast_bookings,
    history_inputs,
    rates_at,
)
from spm_ml.forecast.periods import Period, periods_of
from spm_ml.forecast.rates import PeriodRates
from spm_ml.forecast.widening import rolling_widened
from spm_ml.training.deal_scores import out_of_fold_probabilities
from spm_ml.training.quota_risk import QuotaInputs, stage_weighted_expectation

logger = logging.getLogger(__name__)

ELAPSED = (0.25, 0.5, 0.75)
MID = 0.5
PREDICTION_COLUMNS = ["p10", "p50", "p90", "expected", "stage_weighted", "run_rate"]
"""What a replay predicts: what must not move when data after ``as_of`` changes."""


@dataclass(frozen=True)
class BacktestConfig:
    """Everything that decides a back-test run; written into its metrics document."""

    fractions: tuple[float, ...] = ELAPSED
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    deal_features: DealFeatureConfig = field(
        default_factory=lambda: DealFeatureConfig(email_sentiment=False)
    )
    deal_folds: int = 3
    mature_labels: bool = True
    """Blind deal models learn from snapshots whose horizon ended before ``as_of`` only
    (:func:`~spm_ml.training.deal_scores.out_of_fold_probabilities`)."""
    deal_model: dict = field(default_factory=lambda: {"n_jobs": 1})
    """Blind deal models' settings over :data:`~spm_ml.training.deal_scores.OUT_OF_FOLD_MODEL`:
    one thread each, since a back-test fits dozens of small models and two threads waiting
    on each other every boosting round cost more than they give on a shared machine."""
    run_rate_periods: int = 4


@dataclass
class BacktestResult:
    """Every replayed forecast's rows (one per level, unit, period and point) and what was
    skipped, with why."""

    rows: pd.DataFrame
    skipped: list[dict]
    config: BacktestConfig

    def metrics(self) -> dict:
        return metrics(self.rows, self.skipped, self.config)


def crps(draws: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score of each row of draws against its actual:
    E|X - y| - E|X - X'| / 2, from the sorted draws (same unit as the draws; lower is
    better; equals the absolute error for a point forecast)."""
    x = np.sort(draws, axis=1)
    m = x.shape[1]
    weights = (2 * np.arange(1, m + 1) - m - 1) / (m * m)
    spread = 2 * (x * weights).sum(axis=1)
    return np.abs(x - actual[:, None]).mean(axis=1) - spread / 2


def as_of_scorer(
    tables: Tables,
    as_of: pd.Timestamp,
    *,
    config: DealFeatureConfig,
    context: DealContext,
    folds: int,
    seed: int,
    model_params: dict | None = None,
    mature_labels: bool = True,
) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
    """Win probabilities from deal models blind to labels known at or after ``as_of``."""

    def score(rows: pd.DataFrame, row_features: pd.DataFrame) -> np.ndarray:
        try:
            return _score(rows, row_features)
        except ValueError as err:  # a calibration fold with one class: too few labels
            raise SpmMlError(
                f"too few deal labels known before {as_of:%Y-%m-%d} to fit a deal model: {err}"
            ) from err

    def _score(rows: pd.DataFrame, row_features: pd.DataFrame) -> np.ndarray:
        p = out_of_fold_probabilities(
            tables,
            rows,
            row_features,
            cutoff=as_of,
            config=config,
            context=context,
            folds=folds,
            seed=seed,
            model_params=model_params,
            mature_labels=mature_labels,
        )
        if np.isnan(p).all() and len(p):
            raise SpmMlError(f"no deal labels known before {as_of:%Y-%m-%d} to score with")
        return p

    return score


def replay(
    tables: Tables,
    period: Period,
    fraction: float,
    *,
    config: BacktestConfig,
    context: DealContext,
    history: QuotaInputs,
    bookings: Bookings,
) -> pd.DataFrame:
    """The forecast of ``period`` at ``fraction`` elapsed, as it could have been made then,
    per rep, team and company, with both references and the actual bookings."""
    as_of = period.at(fraction)
    score = as_of_scorer(
        tables,
        as_of,
        config=config.deal_features,
        context=context,
        folds=config.deal_folds,
        seed=config.forecast.seed,
        model_params=config.deal_model,
        mature_labels=config.mature_labels,
    )
    forecast = forecast_bookings(
        tables,
        period,
        as_of,
        score_deals=score,
        deal_config=config.deal_features,
        context=context,
        config=config.forecast,
        history=history,
        bookings=bookings,
    )
    same_point = np.abs(history.snapshots["fraction_elapsed"].to_numpy() - fraction) < 0.01
    stage_rates = rates_at(tables, _subset(history, same_point), as_of, config.forecast)
    references = _references(tables, forecast, bookings, stage_rates, config.run_rate_periods)
    actual = bookings.between(
        forecast.reps["rep_id"], np.full(len(forecast.reps), period.start), period.close
    )
    rep_actual = pd.Series(actual, index=forecast.reps["rep_id"].to_numpy())
    company_actual = float(
        bookings.amounts[
            (bookings.deals["closed_at"] >= period.start).to_numpy()
            & (bookings.deals["closed_at"] < period.close).to_numpy()
        ].sum()
    )
    frames = []
    for level in LEVELS:
        ids, draws = forecast.draws(level)
        total = draws["total"]
        if level == "rep":
            truth = rep_actual.reindex(ids).to_numpy()
        elif level == "team":
            truth = rep_actual.groupby(forecast.reps["team"].to_numpy()).sum().reindex(ids)
            truth = truth.to_numpy()
        else:
            truth = np.array([company_actual])
        q = np.quantile(total, (0.1, 0.5, 0.9), axis=1)
        frame = pd.DataFrame(
            {
                "level": level,
                "id": ids,
                "period": period.label,
                "period_start": period.start,
                "period_close": period.close,
                "fraction": fraction,
                "as_of": as_of,
                "p10": q[0],
                "p50": q[1],
                "p90": q[2],
                "expected": total.mean(axis=1),
                "actual": truth,
                "crps": crps(total, truth),
            }
        )
        frames.append(frame.join(references[level], on="id"))
    return pd.concat(frames, ignore_index=True)


def _subset(inputs: QuotaInputs, keep: np.ndarray) -> QuotaInputs:
    """The snapshots ``keep`` of ``inputs`` (positions renumbered), with their deals."""
    rows = np.flatnonzero(keep)
    position = np.full(len(keep), -1)
    position[rows] = np.arange(len(rows))
    deals = inputs.deals[keep[inputs.deals["snapshot"].to_numpy()]]
    deals = deals.assign(snapshot=position[deals["snapshot"].to_numpy()])
    return QuotaInputs(
        inputs.snapshots.iloc[rows].reset_index(drop=True),
        inputs.X.iloc[rows].reset_index(drop=True),
        deals.reset_index(drop=True),
        inputs.bookings,
    )


def _references(
    tables: Tables,
    forecast: BookingForecast,
    bookings: Bookings,
    stage_rates: PeriodRates,
    periods_back: int,
) -> dict[str, pd.DataFrame]:
    """Stage-weighted pipeline (``stage_rates``: learned at the same point of past periods,
    so a stage's rate knows how much of the period is left) and run-rate per rep, team and
    company, in money."""
    inputs, reps = forecast.inputs, forecast.reps
    scale = reps["scale"].to_numpy(dtype=np.float64)
    rows = np.arange(len(reps))
    weighted = stage_weighted_expectation(inputs, rows, stage_rates) * scale
    period, as_of = forecast.period, forecast.as_of
    remaining = 1.0 - period.fraction(as_of)
    past = [p for p in periods_of(tables) if p.close <= as_of][-periods_back:]
    ids = reps["rep_id"].to_numpy(dtype=object)
    if past:
        per_period = np.column_stack(
            [bookings.between(ids, np.full(len(ids), p.start), p.close) for p in past]
        )
        rep_rate = per_period.mean(axis=1)
        won = bookings.deals["closed_at"]
        company_rate = np.mean(
            [bookings.amounts[((won >= p.start) & (won < p.close)).to_numpy()].sum() for p in past]
        )
    else:
        rep_rate, company_rate = np.zeros(len(ids)), 0.0
    run_rate = forecast.booked + remaining * rep_rate
    frame = pd.DataFrame(
        {"stage_weighted": weighted, "run_rate": run_rate, "team": reps["team"].to_numpy()},
        index=ids,
    )
    team = frame.groupby("team")[["stage_weighted", "run_rate"]].sum()
    company = pd.DataFrame(
        {
            "stage_weighted": [weighted.sum()],
            "run_rate": [forecast.booked.sum() + remaining * company_rate],
        },
        index=[COMPANY],
    )
    return {"rep": frame[["stage_weighted", "run_rate"]], "team": team, COMPANY: company}


def backtest(
    tables: Tables,
    config: BacktestConfig | None = None,
    *,
    periods: list[Period] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> BacktestResult:
    """Replay every closed period (or ``periods``) at each of ``config.fractions``.

    A point with no closed period before it (nothing to learn rates from) or no deal label
    known before it is skipped and listed with the reason.
    """
    config = config or BacktestConfig()
    extracted = extraction_time(tables)
    every = periods if periods is not None else periods_of(tables)
    closed = [p for p in every if p.close <= extracted]
    if not closed:
        raise SpmMlError("no period has closed yet: nothing to back-test")
    context = DealContext.build(tables, config.deal_features)
    bookings = Bookings.build(tables)
    history = history_inputs(
        tables,
        [p for p in periods_of(tables) if p.close <= extracted],
        (*config.forecast.history_fractions, *config.fractions),
        context=context,
        bookings=bookings,
    )
    points = [(p, f) for p in closed for f in config.fractions]
    rows, skipped = [], []
    for done, (period, fraction) in enumerate(points):
        if progress:
            progress("back-test", done, len(points))
        try:
            rows.append(
                replay(
                    tables,
                    period,
                    fraction,
                    config=config,
                    context=context,
                    history=history,
                    bookings=bookings,
                )
            )
        except SpmMlError as err:
            logger.info("skipped %s at %.0f%%: %s", period.label, fraction * 100, err)
            skipped.append({"period": period.label, "fraction": fraction, "reason": str(err)})
    if progress:
        progress("back-test", len(points), len(points))
    if not rows:
        raise SpmMlError(
            "no period could be replayed: "
            + "; ".join(f"{s['period']} at {s['fraction']:.0%}: {s['reason']}" for s in skipped)
        )
    # each replay's range widened by what the replays of periods closed before it taught
    widened = rolling_widened(pd.concat(rows, ignore_index=True))
    return BacktestResult(widened, skipped, config)


def _scores(rows: pd.DataFrame) -> dict:
    """The metrics of a set of replayed rows (one level, one or more points)."""
    actual = rows["actual"].to_numpy(dtype=np.float64)
    booked = actual > 0
    out = {
        "coverage_80": _round(((actual >= rows["p10"]) & (actual <= rows["p90"])).mean()),
        "p50_mape": _mape(rows["p50"], actual),
        "p50_bias": _bias(rows["p50"], actual),
        "crps": _round(rows["crps"].mean()),
        "crps_relative": _round((rows["crps"][booked] / actual[booked]).mean()),
        "interval_width_relative": _round(
            ((rows["p90"] - rows["p10"])[booked] / actual[booked]).mean()
        ),
        **_widened_scores(rows, actual),
        "n_periods": int(rows["period"].nunique()),
        "n": len(rows),
        "n_no_bookings": int((~booked).sum()),
        "references": {
            name: {"p50_mape": _mape(rows[name], actual), "p50_bias": _bias(rows[name], actual)}
            for name in ("stage_weighted", "run_rate")
        },
    }
    return out


def _widened_scores(rows: pd.DataFrame, actual: np.ndarray) -> dict:
    """Coverage and width of the back-tested ranges (:mod:`~spm_ml.forecast.widening`), over
    every row (rows with too little history keep the model's range) and over the rows that
    had a widening learned for them, beside the model's own coverage on those rows."""
    if "p10_widened" not in rows:
        return {}
    inside = (actual >= rows["p10_widened"]) & (actual <= rows["p90_widened"])
    taught = rows["widening_sigma"].notna().to_numpy()
    raw = (actual >= rows["p10"]) & (actual <= rows["p90"])
    booked = actual > 0
    return {
        "coverage_80_widened": _round(inside.mean()),
        "interval_width_relative_widened": _round(
            ((rows["p90_widened"] - rows["p10_widened"])[booked] / actual[booked]).mean()
        ),
        "widened": {
            "n": int(taught.sum()),
            "n_periods": int(rows.loc[taught, "period"].nunique()),
            "coverage_80": _round(raw[taught].mean()) if taught.any() else None,
            "coverage_80_widened": _round(inside[taught].mean()) if taught.any() else None,
            "sigma_median": _round(rows.loc[taught, "widening_sigma"].median())
            if taught.any()
            else None,
        },
    }


def _mape(predicted: pd.Series, actual: np.ndarray) -> float | None:
    booked = actual > 0
    if not booked.any():
        return None
    return _round(np.mean(np.abs(predicted.to_numpy()[booked] - actual[booked]) / actual[booked]))


def _bias(predicted: pd.Series, actual: np.ndarray) -> float | None:
    booked = actual > 0
    if not booked.any():
        return None
    return _round(np.mean((predicted.to_numpy()[booked] - actual[booked]) / actual[booked]))


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def metrics(rows: pd.DataFrame, skipped: list[dict], config: BacktestConfig) -> dict:
    """The metrics document: the company level at mid-period at the top (the issue's keys),
    the same per point under ``by_elapsed``, and every level (``company``, ``team``,
    ``rep``) the same way under ``by_level``."""

    def block(level_rows: pd.DataFrame) -> dict:
        by_elapsed = {
            str(f): _scores(level_rows[level_rows["fraction"] == f])
            for f in config.fractions
            if (level_rows["fraction"] == f).any()
        }
        top = by_elapsed.get(str(MID)) or {}
        return {**top, "by_elapsed": by_elapsed}

    by_level = {level: block(rows[rows["level"] == level]) for level in LEVELS}
    document = dict(by_level[COMPANY])
    document.update(
        {
            "level": COMPANY,
            "by_level": by_level,
            "periods": sorted(rows["period"].unique().tolist()),
            "skipped": skipped,
            "config": {
                "fractions": list(config.fractions),
                "sims": config.forecast.sims,
                "seed": config.forecast.seed,
                "deal_folds": config.deal_folds,
                "mature_labels": config.mature_labels,
                "slip_size": config.forecast.slip_size,
                "slip_standing": config.forecast.slip_standing,
                "run_rate_periods": config.run_rate_periods,
                "deal_features": config.deal_features.version,
                "email_sentiment": config.deal_features.email_sentiment,
            },
        }
    )
    return document
