"""The quota-risk family: P(a rep ends the period below quota), as a :class:`FamilySpec`.

snapshots of every quota period at fractions of it elapsed (label: final attainment below a
threshold) -> the period so far and the pipeline held then, weighted by out-of-fold deal
probabilities -> a calibrated classifier, judged beside two other estimators of the same
label on the same held-out periods:

- ``monte_carlo``: the deal-level draw of :mod:`spm_ml.forecast.monte_carlo`, with slip,
  amount-change and new-deal rates learned from the training periods;
- ``stage_weighted_pipeline`` (a reference): bookings to date plus open pipeline times the
  historical in-period win rate of its stage, turned into a probability by a one-feature
  logistic regression fitted on the training periods: what a spreadsheet forecast knows.

Fitting, the prior and logistic references, metrics, MLflow and the registry are the
generic path's (:mod:`spm_ml.training.family`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from spm_ml.data.tables import Tables
from spm_ml.errors import ModelNotFoundError, TrainingError
from spm_ml.features.asof import entity_codes, take
from spm_ml.features.attainment import Bookings, period_close
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig, deal_features, pipeline_state
from spm_ml.features.quota import (
    QuotaFeatureConfig,
    QuotaLabel,
    open_deal_rows,
    quota_features,
    quota_snapshots,
)
from spm_ml.features.reps import rep_history_features
from spm_ml.forecast.monte_carlo import AttainmentDraws, SnapshotDraws, draw_snapshots
from spm_ml.forecast.rates import PeriodRates
from spm_ml.models.gbm import CalibratedGBM
from spm_ml.models.metrics import binary_metrics, calibrated_ece_floor
from spm_ml.models.record import TrainingRecord
from spm_ml.registry import LoadedModel
from spm_ml.training.deal_scores import out_of_fold_probabilities
from spm_ml.training.deal_win import prepare_tables
from spm_ml.training.family import (
    EvaluationRows,
    FamilySpec,
    LabelledRows,
    TrainingRun,
    train_family,
)
from spm_ml.training.split import split_snapshots

logger = logging.getLogger(__name__)

MODEL_NAME = "quota-risk"
RATES_ARTIFACT = "period_rates.json"
"""The Monte Carlo's learned rates, logged with every quota-risk run (read back to serve)."""
ID_COLUMNS = ("rep_id", "as_of", "period_start", "period_end")
WARNING_PROBABILITY = 0.5
"""P(miss) from which a rep is flagged: lead times are measured from the first snapshot at
or above it that the later snapshots of the period confirm."""


class QuotaRiskModel(CalibratedGBM):
    """Calibrated LightGBM over :func:`spm_ml.features.quota.quota_features` output.

    Its hyper-parameters are :class:`CalibratedGBM`'s; training passes
    :data:`SMALL_DATA_MODEL` (the configuration's ``model``).
    """


SMALL_DATA_MODEL = {
    "n_estimators": 400,
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_child_samples": 40,
}
"""The classifier's default hyper-parameters (:class:`QuotaRiskTrainConfig.model`): a few
thousand rows per organisation want shallow trees and many rows per leaf."""


@dataclass(frozen=True)
class QuotaRiskTrainConfig:
    """Everything that decides a quota-risk training run; logged to MLflow in full."""

    test_fraction: float = 0.25
    valid_fraction: float = 0.2
    bootstrap_samples: int = 200
    seed: int = 0
    model_name: str = MODEL_NAME
    label: QuotaLabel = field(default_factory=QuotaLabel)
    features: QuotaFeatureConfig = field(default_factory=QuotaFeatureConfig)
    deal_features: DealFeatureConfig = field(default_factory=DealFeatureConfig)
    deal_folds: int = 3
    draws: int = 2000
    """Monte Carlo draws per snapshot."""
    model: dict = field(default_factory=lambda: dict(SMALL_DATA_MODEL))


@dataclass
class QuotaInputs:
    """A set of quota snapshots featurised: the model's rows and the open deals behind them."""

    snapshots: pd.DataFrame
    X: pd.DataFrame
    deals: pd.DataFrame
    """Open deals per snapshot: ``snapshot``, ``deal_id``, ``stage``, ``amount``,
    ``days_to_expected_close``, ``days_left``, ``p_win``."""
    bookings: Bookings


DealScorer = Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]
"""``(rows (deal_id, as_of), their deal features) -> win probabilities``."""


def quota_inputs(
    tables: Tables,
    snapshots: pd.DataFrame,
    *,
    deal_config: DealFeatureConfig,
    score_deals: DealScorer,
    context: DealContext | None = None,
    deal_scores: pd.Series | None = None,
    scores_as_of: pd.Timestamp | None = None,
) -> QuotaInputs:
    """Features of ``snapshots``, their open deals featurised with ``deal_config`` and scored
    by ``score_deals`` (out-of-fold models in training, the deal-win champion in use), or
    weighted by ``deal_scores`` (by ``deal_id``, the probabilities at ``scores_as_of`` the
    caller computed already: the batch job's) where those have them.

    The pipeline's stage, amount and close date are :func:`~spm_ml.features.deals.
    pipeline_state`'s (the deal features' own values, from the history alone)."""
    bookings = Bookings.build(tables)
    rows = open_deal_rows(tables, snapshots)
    context = context or DealContext.build(tables, deal_config)
    state = pipeline_state(tables, rows[["deal_id", "as_of"]], context)
    score = deal_probabilities(
        tables,
        score_deals,
        deal_scores,
        scores_as_of=scores_as_of,
        deal_config=deal_config,
        context=context,
    )
    p_win = score(rows) if len(rows) else np.zeros(0)
    booked = bookings.between(snapshots["rep_id"], snapshots["period_start"], snapshots["as_of"])
    deals = open_deal_frame(snapshots, rows, state, p_win, booked)
    history = rep_history_features(tables, snapshots[["rep_id", "as_of"]])
    X = pd.concat([quota_features(tables, snapshots, deals, bookings), history], axis=1)
    return QuotaInputs(snapshots, X, deals, bookings)


def deal_probabilities(
    tables: Tables,
    score_deals: DealScorer,
    deal_scores: pd.Series | None,
    *,
    scores_as_of: pd.Timestamp | None,
    deal_config: DealFeatureConfig,
    context: DealContext,
) -> Callable[[pd.DataFrame], np.ndarray]:
    """Open deal rows (``deal_id``, ``as_of``) -> win probabilities: ``deal_scores`` (by
    ``deal_id``, made at ``scores_as_of``) for rows at that moment, the rest featurised with
    ``deal_config`` and scored by ``score_deals``: a deal scored once already is not
    featurised and scored again (a million deals' features cost half a minute)."""

    def score(rows: pd.DataFrame) -> np.ndarray:
        p_win = np.full(len(rows), np.nan)
        if deal_scores is not None:
            at = rows["as_of"].to_numpy(dtype="datetime64[ns]")
            now = np.flatnonzero(at == np.datetime64(pd.Timestamp(scores_as_of), "ns"))
            p_win[now] = deal_scores.reindex(rows["deal_id"].to_numpy()[now]).to_numpy(
                dtype=np.float64
            )
        missing = np.flatnonzero(np.isnan(p_win))
        if len(missing):
            if deal_scores is not None:
                logger.info("%d open deal rows not scored before: scored now", len(missing))
            lacking = rows.iloc[missing].reset_index(drop=True)
            features = deal_features(tables, lacking[["deal_id", "as_of"]], deal_config, context)
            p_win[missing] = score_deals(lacking, features)
        return p_win

    return score


def open_deal_frame(
    snapshots: pd.DataFrame,
    rows: pd.DataFrame,
    state: pd.DataFrame,
    p_win: np.ndarray,
    booked: np.ndarray | None = None,
) -> pd.DataFrame:
    """:attr:`QuotaInputs.deals` from :func:`open_deal_rows`' ``rows``, their deal features
    ``state`` (at least :data:`~spm_ml.features.deals.PIPELINE_STATE`, row for row) and
    their win probabilities; with ``booked`` (per snapshot, money booked in the period
    before ``as_of``) also the owning rep's standing then (:func:`rep_standing`)."""
    close = period_close(snapshots["period_end"]).to_numpy(dtype="datetime64[ns]")
    as_of = snapshots["as_of"].to_numpy(dtype="datetime64[ns]")
    days_left = (close - as_of) / np.timedelta64(1, "D")
    snapshot = rows["snapshot"].to_numpy()
    deals = pd.DataFrame(
        {
            "snapshot": snapshot,
            "deal_id": rows["deal_id"].to_numpy(),
            "as_of": rows["as_of"].to_numpy(),
            "stage": state["stage"].to_numpy(dtype=object),
            "amount": state["amount"].to_numpy(dtype=np.float64),
            "days_to_expected_close": state["days_to_expected_close"].to_numpy(dtype=np.float64),
            "days_left": days_left[snapshot],
            "p_win": p_win,
        }
    )
    if booked is not None:
        deals = deals.assign(**rep_standing(snapshots, snapshot, booked))
    return deals


def rep_standing(
    snapshots: pd.DataFrame, snapshot: np.ndarray, booked: np.ndarray
) -> dict[str, np.ndarray]:
    """Per open deal (``snapshot``: its snapshot's position), where its owner stood at
    ``as_of``: ``rep_attainment`` (booked in the period so far / quota, NaN without a
    quota) and ``rep_elapsed`` (the share of the period gone).  Reps manage deal timing
    around the period's end (below quota they pull next period's wins in, far above it
    they let late wins slip out), so the slip model reads these
    (:class:`~spm_ml.forecast.rates.PeriodRates`); both are facts at ``as_of``.  The
    quota is the snapshots' ``quota`` (the forecast's, whose draws are in money) or their
    ``quota_amount`` (quota risk's)."""
    column = "quota" if "quota" in snapshots else "quota_amount"
    quota = snapshots[column].to_numpy(dtype=np.float64)
    quota = np.where(quota > 0, quota, np.nan)
    return {
        "rep_attainment": (np.asarray(booked, dtype=np.float64) / quota)[snapshot],
        "rep_elapsed": snapshots["fraction_elapsed"].to_numpy(dtype=np.float64)[snapshot],
    }


def out_of_fold_inputs(
    tables: Tables,
    snapshots: pd.DataFrame,
    *,
    cutoff: pd.Timestamp,
    deal_config: DealFeatureConfig,
    folds: int,
    seed: int,
) -> QuotaInputs:
    """:func:`quota_inputs` with pipeline scored by deal models blind to each deal and to
    labels known at or after ``cutoff`` (:mod:`spm_ml.training.deal_scores`)."""
    context = DealContext.build(tables, deal_config)

    def score(rows: pd.DataFrame, row_features: pd.DataFrame) -> np.ndarray:
        return out_of_fold_probabilities(
            tables,
            rows,
            row_features,
            cutoff=cutoff,
            config=deal_config,
            context=context,
            folds=folds,
            seed=seed,
        )

    return quota_inputs(
        tables, snapshots, deal_config=deal_config, score_deals=score, context=context
    )


def quota_risk_rows(tables: Tables, config: QuotaRiskTrainConfig) -> LabelledRows:
    """Snapshots of every closed quota period, split by time and featurised."""
    every, report = quota_snapshots(tables, config.label, config.features.fractions)
    labelled = every[every["miss"].notna()].reset_index(drop=True)
    if labelled.empty:
        raise TrainingError("no quota period has closed yet: nothing to learn quota risk from")
    snapshots, split = split_snapshots(
        labelled,
        "miss",
        observable_end=labelled["as_of"].max(),
        test_fraction=config.test_fraction,
        valid_fraction=config.valid_fraction,
    )
    inputs = out_of_fold_inputs(
        tables,
        snapshots,
        cutoff=split.test_start,
        deal_config=config.deal_features,
        folds=config.deal_folds,
        seed=config.seed,
    )
    features = pd.concat([snapshots[list(ID_COLUMNS)], inputs.X], axis=1)
    return LabelledRows(
        snapshots=snapshots,
        split=split,
        features=features,
        X=inputs.X,
        record_extra={
            "deal_features": asdict(config.deal_features),
            "deal_folds": config.deal_folds,
        },
        document_extra={"censoring": {**report, **split.censoring}},
        extra={"inputs": inputs},
    )


def quota_risk_slices(tables: Tables, rows: LabelledRows) -> dict[str, pd.Series]:
    """Held-out slices by fraction of the period elapsed (25/50/75%...)."""
    test = rows.X.iloc[rows.split.test]
    return {"fraction_elapsed": test["fraction_elapsed"].map(lambda f: f"{f:.1%}")}


def learn_rates(
    tables: Tables, inputs: QuotaInputs, train: np.ndarray, cutoff, **slip
) -> PeriodRates:
    """:class:`PeriodRates` from the training snapshots (labels known before ``cutoff``);
    ``slip``: :meth:`PeriodRates.learn`'s slip options (the bookings forecast's choices)."""
    snapshots = inputs.snapshots.iloc[train]
    deals = inputs.deals[np.isin(inputs.deals["snapshot"].to_numpy(), train)]
    outcome, closed = deal_outcomes(tables, deals["deal_id"])
    won = (outcome == "won") & (closed < np.datetime64(pd.Timestamp(cutoff), "ns"))
    close = period_close(inputs.snapshots["period_end"]).to_numpy(dtype="datetime64[ns]")
    in_period = won & (closed < close[deals["snapshot"].to_numpy()])
    at_close = pd.Series(inputs.bookings.amounts, index=inputs.bookings.deals["deal_id"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = at_close.reindex(deals["deal_id"]).to_numpy() / deals["amount"].to_numpy()
    deals = deals.assign(won=won, won_in_period=in_period, close_amount_ratio=ratio)
    new_share = new_deal_shares(inputs.bookings, snapshots)
    teams = inputs.X["team"].to_numpy(dtype=object)[train]
    return PeriodRates.learn(deals, snapshots.assign(new_deal_share=new_share, team=teams), **slip)


def deal_outcomes(tables: Tables, deal_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each deal's ``outcome`` (object; None if unknown) and ``closed_at``
    (``datetime64[ns]``) from the deals table, by a hash look-up of the ids (Arrow's for
    Arrow strings): reindexing a text index took a fifth of a forecast's time at a
    million open deals."""
    rows = entity_codes(deal_ids, pd.Index(tables.deals["deal_id"]))
    outcome = take(tables.deals["outcome"], rows).astype(object)
    closed = take(tables.deals["closed_at"], rows).astype("datetime64[ns]")
    return outcome, closed


def new_deal_shares(bookings: Bookings, snapshots: pd.DataFrame) -> np.ndarray:
    """Per snapshot, bookings in the rest of its period from deals created after ``as_of``,
    as a share of quota (a fact of the past only for snapshots of closed periods)."""
    keys = snapshots[["rep_id", "as_of", "period_end", "quota_amount"]].reset_index(drop=True)
    keys["row"] = np.arange(len(keys))
    won = bookings.deals.assign(amount=bookings.amounts)
    pairs = keys.merge(won, on="rep_id", how="inner")
    close = period_close(pairs["period_end"])
    new = (pairs["created_at"] >= pairs["as_of"]) & (pairs["closed_at"] < close)
    sums = pairs[new].groupby("row")["amount"].sum()
    return sums.reindex(np.arange(len(keys)), fill_value=0.0).to_numpy() / keys[
        "quota_amount"
    ].to_numpy(dtype=np.float64)


def monte_carlo(
    inputs: QuotaInputs,
    rows: np.ndarray,
    rates: PeriodRates,
    *,
    threshold: float,
    draws: int,
    seed: int,
) -> AttainmentDraws:
    """The Monte Carlo's attainment draws for snapshots ``rows`` of ``inputs`` (the shared
    engine, :func:`~spm_ml.forecast.monte_carlo.draw_snapshots`, in shares of quota)."""
    return monte_carlo_draws(inputs, rows, rates, draws=draws, seed=seed).attainment(threshold)


def monte_carlo_draws(
    inputs: QuotaInputs, rows: np.ndarray, rates: PeriodRates, *, draws: int, seed: int
) -> SnapshotDraws:
    """The draws behind :func:`monte_carlo` (booked, open pipeline and new deals, shares of
    quota), for what-ifs that reuse them (:mod:`spm_ml.coaching.reps`)."""
    deals = inputs.deals[np.isin(inputs.deals["snapshot"].to_numpy(), rows)]
    position = pd.Series(np.arange(len(rows)), index=rows).reindex(deals["snapshot"]).to_numpy()
    order = np.argsort(position, kind="stable")
    deals = deals.iloc[order].assign(snapshot=position[order])
    booked = inputs.X["attainment_to_date"].to_numpy()[rows]
    return _draw_rows(inputs, deals, rows, booked, rates, draws=draws, seed=seed)


def each_deal_draws(
    inputs: QuotaInputs, deals: pd.DataFrame, rates: PeriodRates, *, draws: int, seed: int
) -> np.ndarray:
    """``(n_deals, draws)``: what each of ``deals`` (``snapshot``: a position in ``inputs``)
    books, each drawn as a snapshot of its own.  The engine reads its uniforms row by row,
    so with the same deals, order and seed these are the draws each deal contributes to
    :func:`monte_carlo_draws`' pipeline (what-ifs on single deals reuse them)."""
    position = deals["snapshot"].to_numpy(dtype=np.int64)
    own = deals.assign(snapshot=np.arange(len(deals)))
    booked = np.zeros(len(deals))
    return _draw_rows(inputs, own, position, booked, rates, draws=draws, seed=seed).pipeline


def _draw_rows(
    inputs: QuotaInputs,
    deals: pd.DataFrame,
    rows: np.ndarray,
    booked: np.ndarray,
    rates: PeriodRates,
    *,
    draws: int,
    seed: int,
) -> SnapshotDraws:
    """:func:`~spm_ml.forecast.monte_carlo.draw_snapshots` of rows taking their quota,
    point of the period and team from snapshots ``rows`` of ``inputs``."""
    return draw_snapshots(
        deals,
        booked,
        inputs.snapshots["quota_amount"].to_numpy(dtype=np.float64)[rows],
        inputs.snapshots["fraction_elapsed"].to_numpy()[rows],
        inputs.X["team"].to_numpy(dtype=object)[rows],
        rates,
        draws=draws,
        seed=seed,
    )


def stage_weighted_expectation(inputs: QuotaInputs, rows: np.ndarray, rates: PeriodRates):
    """Bookings to date plus open amount times its stage's in-period win rate, plus the mean
    new-deal bookings at this point of a period (shares of quota)."""
    deals = inputs.deals
    quota = inputs.snapshots["quota_amount"].to_numpy(dtype=np.float64)
    weighted = np.nan_to_num(deals["amount"].to_numpy()) * rates.stage_rate(
        deals["stage"].to_numpy(dtype=object)
    )
    per_snapshot = (
        np.bincount(deals["snapshot"].to_numpy(), weights=weighted, minlength=len(quota)) / quota
    )
    fractions = inputs.snapshots["fraction_elapsed"].to_numpy()
    new = rates.mean_new_deal_share(fractions)
    expected = inputs.X["attainment_to_date"].to_numpy() + per_snapshot + new
    return expected[rows]


def _alternatives(
    tables: Tables, rows: LabelledRows, config: QuotaRiskTrainConfig, fitted: dict
) -> dict[str, np.ndarray]:
    inputs: QuotaInputs = rows.extra["inputs"]
    split = rows.split
    y = rows.snapshots["miss"].to_numpy(dtype=int)
    rates = learn_rates(tables, inputs, split.train, split.test_start)
    rows.artifacts[RATES_ARTIFACT] = rates.to_dict()
    draws = monte_carlo(
        inputs,
        split.test,
        rates,
        threshold=config.label.threshold,
        draws=config.draws,
        seed=config.seed,
    )
    rows.extra["monte_carlo_test"] = draws
    reference = LogisticRegression().fit(
        stage_weighted_expectation(inputs, split.train, rates)[:, None], y[split.train]
    )
    expected_test = stage_weighted_expectation(inputs, split.test, rates)
    choice = choose_serving_estimator(tables, rows, config)
    rows.record_extra["serving_estimator"] = choice["choice"]
    rows.document_extra["serving_estimator"] = choice
    model_test = fitted["model"]
    return {
        "monte_carlo": draws.p_miss,
        "blend": (model_test + draws.p_miss) / 2,
        "stage_weighted_pipeline": reference.predict_proba(expected_test[:, None])[:, 1],
    }


def choose_serving_estimator(
    tables: Tables, rows: LabelledRows, config: QuotaRiskTrainConfig
) -> dict:
    """Which estimator serves P(miss): the classifier, the Monte Carlo or their mean, by log
    loss on the validation periods, each learned from the fit periods only (never the test)."""
    from sklearn.metrics import log_loss

    inputs: QuotaInputs = rows.extra["inputs"]
    split = rows.split
    y = rows.snapshots["miss"].to_numpy(dtype=int)
    groups = rows.snapshots["rep_id"].to_numpy()
    fit, valid = split.fit, split.valid
    early, late = np.array_split(
        fit[np.argsort(rows.snapshots["as_of"].to_numpy()[fit])], [int(len(fit) * 0.8)]
    )
    classifier = QuotaRiskModel(random_state=config.seed, refit=False, **config.model).fit(
        rows.X.iloc[early],
        y[early],
        eval_set=(rows.X.iloc[late], y[late]),
        groups=groups[early],
        eval_groups=groups[late],
    )
    rates = learn_rates(tables, inputs, fit, split.valid_start)
    simulated = monte_carlo(
        inputs, valid, rates, threshold=config.label.threshold, draws=config.draws, seed=config.seed
    ).p_miss
    candidates = {
        "model": classifier.predict_proba(rows.X.iloc[valid])[:, 1],
        "monte_carlo": simulated,
    }
    candidates["blend"] = (candidates["model"] + candidates["monte_carlo"]) / 2
    losses = {
        name: round(float(log_loss(y[valid], np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])), 4)
        for name, p in candidates.items()
    }
    return {
        "choice": min(losses, key=losses.get),
        "valid_log_loss": losses,
        "rule": "lowest log loss on the validation periods, each estimator learned from the "
        "fit periods only",
    }


def _report(tables: Tables, rows: LabelledRows, probabilities: dict[str, np.ndarray]) -> dict:
    """Lead time of the warnings and the Monte Carlo interval's coverage."""
    test = rows.snapshots.iloc[rows.split.test].reset_index(drop=True)
    draws: AttainmentDraws = rows.extra["monte_carlo_test"]
    final = test["final_attainment"].to_numpy()
    served = rows.record_extra["serving_estimator"]
    inside = (final >= draws.p10) & (final <= draws.p90)
    return {
        "served_by_elapsed": served_by_elapsed(test, probabilities[served], served),
        "lead_time_days": {**lead_time_days(test, probabilities[served]), "estimator": served},
        "lead_time_days_by_estimator": {
            name: lead_time_days(test, probabilities[name])
            for name in ("model", "monte_carlo", "blend")
        },
        "monte_carlo_interval": {
            "nominal": 0.8,
            "coverage": round(float(inside.mean()), 4),
            "mean_width": round(float(np.mean(draws.p90 - draws.p10)), 4),
        },
    }


def served_by_elapsed(test: pd.DataFrame, probability: np.ndarray, estimator: str) -> dict:
    """The served estimator's ROC AUC and ECE at each fraction of the period elapsed, with
    the ECE a perfectly calibrated score would show on as many rows (its noise floor): a
    few hundred rows per fraction put that floor near the 0.05 a reader might hold it to."""
    y = test["miss"].to_numpy(dtype=int)
    fractions = test["fraction_elapsed"].to_numpy()
    out = {"estimator": estimator}
    for fraction in np.unique(fractions):
        rows = fractions == fraction
        metrics = binary_metrics(y[rows], probability[rows])
        out[f"{fraction:g}"] = {
            "rows": int(rows.sum()),
            "roc_auc": round(metrics["roc_auc"], 4),
            "ece": round(metrics["ece"], 4),
            "ece_floor": round(calibrated_ece_floor(probability[rows]), 4),
        }
    return out


def lead_time_days(test: pd.DataFrame, probability: np.ndarray) -> dict:
    """Days before the period's close from which the warning (P(miss) at or above
    :data:`WARNING_PROBABILITY`) held at every later snapshot, for periods that missed."""
    frame = test.assign(
        p=probability, days_left=(period_close(test["period_end"]) - test["as_of"]).dt.days
    )
    leads, warned, missed = [], 0, 0
    for _, period in frame[frame["miss"] == 1].groupby(["rep_id", "period_start"]):
        missed += 1
        period = period.sort_values("as_of")
        above = period["p"].to_numpy() >= WARNING_PROBABILITY
        if not above[-1]:
            continue
        # the first snapshot of the final run of warnings
        first = len(above) - int(np.argmin(above[::-1])) if not above.all() else 0
        warned += 1
        leads.append(int(period["days_left"].iloc[first]))
    if not leads:
        return {"median": None, "q1": None, "q3": None, "warned": 0, "missed": missed}
    q1, median, q3 = np.percentile(leads, [25, 50, 75])
    return {
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "warned": warned,
        "missed": missed,
        "threshold": WARNING_PROBABILITY,
    }


def quota_risk_evaluation_rows(
    tables: Tables, records: list[TrainingRecord], every_days: int = 7
) -> EvaluationRows:
    """Snapshots of quota periods closed after every model's training cut-off."""
    start = max(r.training_cutoff for r in records)
    snapshots, _ = quota_snapshots(tables)
    rows = snapshots[(snapshots["as_of"] >= start) & snapshots["miss"].notna()]
    if rows.empty:
        raise ModelNotFoundError(
            f"no evaluation data: promotion needs quota periods closed after {start.date()}"
        )
    return EvaluationRows(rows.reset_index(drop=True), start, rows["as_of"].max())


def quota_risk_scores(loaded: LoadedModel, tables: Tables, rows: pd.DataFrame) -> np.ndarray:
    """A version's P(miss) on ``rows``, pipeline scored blind to its training cut-off."""
    record = loaded.record
    inputs = out_of_fold_inputs(
        tables,
        rows.reset_index(drop=True),
        cutoff=record.training_cutoff,
        deal_config=DealFeatureConfig(**record.extra.get("deal_features", {})),
        folds=record.extra.get("deal_folds", 3),
        seed=0,
    )
    return loaded.model.predict_proba(inputs.X)[:, 1]


def _prepare(tables: Tables, config: QuotaRiskTrainConfig, workdir: Path, progress=None):
    return prepare_tables(tables, config.deal_features, workdir, progress)


def _prepare_for(tables: Tables, records: list[TrainingRecord], workdir: Path) -> Tables:
    uses = any(r.extra.get("deal_features", {}).get("email_sentiment") for r in records)
    return prepare_tables(tables, DealFeatureConfig(email_sentiment=uses), workdir)[0]


QUOTA_RISK = FamilySpec(
    name="quota-risk",
    entity="rep_id",
    label="miss",
    dataset="quota_snapshots",
    estimator=QuotaRiskModel,
    prepare=_prepare,
    rows=quota_risk_rows,
    categorical=lambda X: tuple(c for c in X.columns if c == "team"),
    slices=quota_risk_slices,
    evaluation_rows=quota_risk_evaluation_rows,
    score=quota_risk_scores,
    prepare_for=_prepare_for,
    alternatives=_alternatives,
    alternative_references=("stage_weighted_pipeline",),
    report=_report,
)
"""The quota-risk family: rep-periods at fractions elapsed, "below quota at period end"."""


def train_quota_risk(
    tables: Tables, *, config: QuotaRiskTrainConfig | None = None, **options
) -> TrainingRun:
    """Train, evaluate, log and (optionally) register a quota-risk model on ``tables``:
    :func:`~spm_ml.training.family.train_family` with :data:`QUOTA_RISK` (``options``: its
    ``workdir``, ``register``, ``data_description``, ``progress``, ``reuse_identical``)."""
    return train_family(QUOTA_RISK, tables, config=config or QuotaRiskTrainConfig(), **options)


def score_quota_risk(
    loaded: LoadedModel, inputs: QuotaInputs, *, draws: int = 2000, seed: int = 0, k: int = 3
) -> pd.DataFrame:
    """P(miss) of each snapshot as the version serves it, with the attainment interval and
    the classifier's top drivers.

    The estimator is the one the training run chose on its validation periods (the record's
    ``serving_estimator``); the Monte Carlo uses the rates learned in that run.  Returns
    ``p_miss``, ``estimator``, ``expected_attainment``, ``attainment_p10``,
    ``attainment_p90`` and ``drivers`` (SHAP of the classifier, whichever estimator serves:
    the classifier is what explains the features).
    """
    record = loaded.record
    rates = PeriodRates.from_dict(loaded.run_document(RATES_ARTIFACT))
    rows = np.arange(len(inputs.snapshots))
    threshold = record.label.get("threshold", 1.0)
    simulated = monte_carlo(inputs, rows, rates, threshold=threshold, draws=draws, seed=seed)
    classifier, drivers = loaded.model.score_and_explain(inputs.X, k)
    estimator = serving_estimator(loaded)
    p_miss = served_p_miss(estimator, classifier, simulated.p_miss)
    return pd.DataFrame(
        {
            "p_miss": p_miss,
            "estimator": estimator,
            "expected_attainment": simulated.expected,
            "attainment_p10": simulated.p10,
            "attainment_p90": simulated.p90,
            "drivers": drivers,
        },
        index=inputs.snapshots.index,
    )


def serving_estimator(loaded: LoadedModel) -> str:
    """Which estimator a quota-risk version serves (its record's ``serving_estimator``)."""
    return loaded.record.extra.get("serving_estimator", "model")


def served_p_miss(estimator: str, classifier: np.ndarray, monte_carlo: np.ndarray) -> np.ndarray:
    """P(miss) as ``estimator`` serves it from the classifier's and the Monte Carlo's."""
    return {
        "model": classifier,
        "monte_carlo": monte_carlo,
        "blend": (classifier + monte_carlo) / 2,
    }[estimator]
