"""``spm-ml forecast`` and ``spm-ml backtest`` as functions: champions in, files out.

The forecast scores open deals with the deal-win champion of the work folder's MLflow store
(its feature set, email tone and custom fields as it was trained); the back-test trains its
own blind deal models at every replayed point, with the champion's feature set when there
is one (else the default set without email tone), so it measures the forecast as served.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml import registry
from spm_ml.data.tables import Tables
from spm_ml.errors import ModelNotFoundError, SpmMlError
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig
from spm_ml.features.snapshots import extraction_time
from spm_ml.forecast.backtest import BacktestConfig, BacktestResult, backtest
from spm_ml.forecast.bookings import LEVELS, BookingForecast, ForecastConfig, forecast_bookings
from spm_ml.forecast.periods import Period, parse_period
from spm_ml.forecast.plots import backtest_chart, fan_chart
from spm_ml.forecast.widening import widening_at

logger = logging.getLogger(__name__)

DEAL_MODEL = "deal-win"


@dataclass
class ChampionScorer:
    """The deal-win champion ready to weight pipeline: tables prepared for its features
    (email tone scored, cached per work folder), its context and a scoring function."""

    tables: Tables
    deal_config: DealFeatureConfig
    context: DealContext
    score: Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]
    version: str


def champion_scorer(tables: Tables, workdir: Path) -> ChampionScorer:
    """Load ``deal-win@champion`` from ``workdir``'s store and prepare ``tables`` for it."""
    from spm_ml.models.deal_win import custom_fields_of, feature_config_of
    from spm_ml.training.deal_win import prepare_tables

    registry.use_local_store(workdir)
    loaded = registry.load_model(DEAL_MODEL)
    tables = prepare_tables(tables, feature_config_of(loaded.record), workdir)[0]
    context = DealContext.build(
        tables, feature_config_of(loaded.record), custom_fields=custom_fields_of(loaded.record)
    )
    return scorer_of(loaded, tables, context)


def scorer_of(loaded, prepared: Tables, context: DealContext) -> ChampionScorer:
    """A loaded deal-win version as the forecast's pipeline weights, on tables already
    prepared for it (the batch job has them, and the context, from its own scoring)."""
    from spm_ml.models.deal_win import feature_config_of, model_inputs

    def score(rows: pd.DataFrame, row_features: pd.DataFrame) -> np.ndarray:
        return loaded.model.predict_proba(model_inputs(row_features))[:, 1]

    config = feature_config_of(loaded.record)
    return ChampionScorer(prepared, config, context, score, loaded.version)


def forecast_with(
    champion: ChampionScorer,
    period: Period,
    as_of: pd.Timestamp,
    *,
    config: ForecastConfig | None = None,
    exclude: Sequence[str] = (),
    deal_scores: pd.Series | None = None,
) -> BookingForecast:
    """``period``'s bookings drawn at ``as_of``, open deals weighted by ``champion``
    (``deal_scores``: its probabilities by ``deal_id`` at ``as_of``, when computed already)."""
    return forecast_bookings(
        champion.tables,
        period,
        as_of,
        score_deals=champion.score,
        deal_config=champion.deal_config,
        context=champion.context,
        config=config,
        exclude=exclude,
        deal_scores=deal_scores,
    )


def run_forecast(
    tables: Tables,
    workdir: Path,
    period: str,
    *,
    as_of: pd.Timestamp | None = None,
    config: ForecastConfig | None = None,
    exclude: Sequence[str] = (),
    backtest_rows: Path | None = None,
) -> tuple[BookingForecast, str]:
    """The forecast of ``period`` (``2026Q1``...) at ``as_of`` (default: the data's
    extraction, or the period's start if that is later) with the deal-win champion;
    returns it and the champion's version.  With ``backtest_rows`` (a ``backtest.csv`` of
    the same organisation) each level's range is also given widened by its back-tested
    record (:mod:`~spm_ml.forecast.widening`)."""
    chosen = parse_period(period, tables)
    extracted = extraction_time(tables)
    if as_of is None:
        as_of = max(chosen.start, extracted)
        if as_of >= chosen.close:
            raise SpmMlError(
                f"{chosen.label} closed on {chosen.end:%Y-%m-%d}, before the data's extraction "
                f"({extracted:%Y-%m-%d}): its bookings are facts; pass --as-of a date inside "
                "it to see the forecast as of then (spm-ml backtest replays it blind)"
            )
    as_of = pd.Timestamp(as_of)
    if as_of > extracted:
        raise SpmMlError(
            f"--as-of {as_of:%Y-%m-%d} is after the data's extraction ({extracted:%Y-%m-%d}): "
            "nothing is known then"
        )
    champion = champion_scorer(tables, workdir)
    forecast = forecast_with(champion, chosen, as_of, config=config, exclude=exclude)
    rows = read_backtest_rows(backtest_rows, forecast) if backtest_rows else None
    if rows is not None:
        fraction = chosen.fraction(as_of)
        forecast.widening = widening_at(rows, as_of, fraction, LEVELS)
    return forecast, champion.version


def read_backtest_rows(path: Path, forecast: BookingForecast) -> pd.DataFrame | None:
    """The back-test rows at ``path`` (``spm-ml backtest`` writes them), if they exist and
    are of this organisation: most of their reps must be the forecast's (a back-test of
    another organisation would widen the range by someone else's record)."""
    path = Path(path)
    if not path.exists():
        logger.info("no back-test at %s: the range is the draws' own", path)
        return None
    rows = pd.read_csv(path, parse_dates=["period_start", "as_of"])
    if "period_close" in rows:
        rows["period_close"] = pd.to_datetime(rows["period_close"])
    reps = set(rows.loc[rows["level"] == "rep", "id"].astype(str))
    ours = set(forecast.reps["rep_id"].astype(str))
    if not reps or len(reps & ours) < 0.5 * len(ours):
        logger.warning(
            "the back-test at %s is not of this organisation (%d of its reps are the "
            "forecast's %d): not used",
            path,
            len(reps & ours),
            len(ours),
        )
        return None
    return rows


def forecast_document(forecast: BookingForecast, deal_model_version: str) -> dict:
    """The forecast as JSON-able data (rows of :meth:`BookingForecast.summary`)."""
    rows = forecast.summary()
    records = json.loads(rows.to_json(orient="records", double_precision=6))
    return {
        "period": forecast.period.label,
        "period_start": f"{forecast.period.start:%Y-%m-%d}",
        "period_end": f"{forecast.period.end:%Y-%m-%d}",
        "as_of": forecast.as_of.isoformat(),
        "fraction_elapsed": round(forecast.period.fraction(forecast.as_of), 4),
        "sims": forecast.config.sims,
        "seed": forecast.config.seed,
        "excluded_deals": list(forecast.excluded),
        "backtested_range": {
            level: {"sigma": None if np.isnan(sigma) else round(sigma, 4), "periods": periods}
            for level, (sigma, periods) in forecast.widening.items()
        }
        or None,
        "deal_model": {"name": DEAL_MODEL, "version": deal_model_version},
        "rows": records,
    }


def write_forecast(forecast: BookingForecast, document: dict, out: Path) -> dict[str, Path]:
    """``forecast.csv`` (every level), ``forecast_deals.csv`` (the open deals drawn, with
    their probabilities), ``forecast.json`` and ``forecast_fan.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table": out / "forecast.csv",
        "deals": out / "forecast_deals.csv",
        "json": out / "forecast.json",
        "fan_chart": out / "forecast_fan.png",
    }
    forecast.summary().to_csv(paths["table"], index=False)
    forecast.deals.to_csv(paths["deals"], index=False)
    paths["json"].write_text(json.dumps(document, indent=2))
    fan_chart(forecast, paths["fan_chart"])
    return paths


def run_backtest(
    tables: Tables,
    workdir: Path,
    *,
    config: BacktestConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> BacktestResult:
    """:func:`~spm_ml.forecast.backtest.backtest` with the deal-win champion's feature set
    (tables prepared for it) when ``workdir`` has one."""
    config = config or BacktestConfig()
    try:
        champion = champion_scorer(tables, workdir)
    except ModelNotFoundError as err:
        logger.info("no deal-win champion (%s): default deal features, no email tone", err)
    else:
        tables = champion.tables
        config = replace(config, deal_features=champion.deal_config)
    return backtest(tables, config, progress=progress)


def write_backtest(result: BacktestResult, out: Path) -> dict[str, Path]:
    """``backtest.csv`` (every replayed row) and ``backtest.png`` (company) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"rows": out / "backtest.csv", "chart": out / "backtest.png"}
    result.rows.to_csv(paths["rows"], index=False)
    backtest_chart(result.rows, paths["chart"])
    return paths
