"""Early warnings for managers: which reps will miss quota this period, and since when.

``spm-ml warnings`` calls :func:`quota_warnings`: every rep with a quota period open at
``as_of`` is scored by the quota-risk champion (its open deals by the deal-win champion,
exactly as training weighted pipeline), weekly from the period's start to ``as_of``, so
each warning says from which date it has held.  Drivers come in plain words
(:data:`PHRASES`), never as feature names.  Attrition warnings join here when the
attrition family is trained (:func:`attrition_warnings`, if a champion exists).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from spm_ml import registry
from spm_ml.data.tables import Tables
from spm_ml.errors import SpmMlError
from spm_ml.features.attainment import period_close
from spm_ml.features.reps import manager_at
from spm_ml.features.snapshots import extraction_time

if TYPE_CHECKING:
    from spm_ml.features.context import DealContext
    from spm_ml.registry import LoadedModel
    from spm_ml.training.quota_risk import QuotaInputs

WARNING_PROBABILITY = 0.5
"""A rep is warned about from this P(miss) on (the lead time in training uses the same)."""
HISTORY_EVERY_DAYS = 7
"""Earlier scores, to date a warning, are taken weekly from the period's start."""


def _percent(value: float) -> str:
    return f"{value:.0%}"


PHRASES: dict[str, Callable[[float], str]] = {
    "attainment_to_date": lambda v: f"{_percent(v)} of quota booked so far",
    "remaining_quota_share": lambda v: f"{_percent(v)} of quota still to book",
    "pipeline_coverage": lambda v: f"pipeline covers {_percent(v)} of remaining quota",
    "pipeline_share": lambda v: f"open pipeline worth {_percent(v)} of quota",
    "pipeline_due_share": lambda v: f"pipeline due to close this period: {_percent(v)} of quota",
    "pipeline_late_share": lambda v: f"late-stage pipeline: {_percent(v)} of quota",
    "pipeline_early_share": lambda v: f"early-stage pipeline: {_percent(v)} of quota",
    "weighted_pipeline_share": lambda v: (
        f"win-probability-weighted pipeline: {_percent(v)} of quota"
    ),
    "weighted_due_share": lambda v: (
        f"win-probability-weighted pipeline due this period: {_percent(v)} of quota"
    ),
    "expected_attainment_simple": lambda v: (
        f"booked plus weighted pipeline due this period: {_percent(v)} of quota"
    ),
    "open_deals": lambda v: f"{v:.0f} open deals",
    "deals_created_in_period": lambda v: f"{v:.0f} deals created this period",
    "days_left": lambda v: (
        f"{v / 7:.0f} weeks left in the period" if v >= 14 else f"{v:.0f} days left in the period"
    ),
    "fraction_elapsed": lambda v: f"{_percent(v)} of the period gone",
    "log_quota": lambda v: f"quota of {np.expm1(v):,.0f}",
    "tenure_days": lambda v: f"{v / 365.25:.1f} years in the company",
    "last_attainment": lambda v: f"last period's attainment {_percent(v)}",
    "mean_attainment_4": lambda v: f"attainment over the last 4 periods {_percent(v)}",
    "attainment_trend_4": lambda v: f"attainment trend {v:+.0%} per period",
    "attainment_rank_pct": lambda v: f"ranks above {_percent(v)} of peers on attainment",
    "quota_change_pct": lambda v: f"quota changed {v:+.0%} from the period before",
    "quota_vs_peers": lambda v: f"quota {v:.1f} times the peers' median",
    "activity_30d_vs_baseline": lambda v: f"activity in the last 30 days {v:.1f} times usual",
    "manager_changes_365d": lambda v: f"{v:.0f} manager changes in a year",
    "large_losses_90d": lambda v: f"large deals lost in 90 days: {_percent(v)} of quota",
    "periods_with_quota": lambda v: f"{v:.0f} past periods with a quota",
    "paid_vs_target_incentive_4": lambda v: (
        f"incentive paid over the last 4 periods: {_percent(v)} of target"
    ),
    "days_since_pay_change": lambda v: f"{v / 30.4:.0f} months since the last pay change",
    "base_pay_vs_peers": lambda v: f"base pay {v:.2f} times the peers' median",
    "days_since_manager_change": lambda v: f"{v / 30.4:.0f} months since the manager changed",
    "manager_voluntary_exits_365d": lambda v: (
        f"{v:.0f} voluntary exits under the same manager in a year"
    ),
    "rep_activity_14d_vs_90d": lambda v: (
        f"calls, emails and tasks in the last 14 days: {v:.1f} times the usual pace"
    ),
    "rep_activity_per_inbound_21d": lambda v: (
        f"own activities per buyer email (21 days): {np.expm1(v):.1f}"
    ),
    "rep_activity_per_inbound_21d_vs_180d": lambda v: (
        f"own activities per buyer email against the last 6 months: {v:+.2f}"
    ),
}
"""How each quota-risk and attrition feature reads to a manager, given its value."""


def in_words(driver: dict, phrases: dict[str, Callable[[float], str]]) -> str:
    """One driver (``feature``, ``value``, ``direction``) as a sentence a manager can read."""
    feature, value = driver["feature"], driver["value"]
    phrase = phrases.get(feature)
    if phrase is None or value is None or (isinstance(value, float) and np.isnan(value)):
        known = value is not None and value == value  # NaN is not equal to itself
        text = f"{feature.replace('_', ' ')}: {value if known else 'no history yet'}"
    else:
        text = phrase(float(value))
    effect = "raises" if driver["direction"] == "raises" else "lowers"
    return f"{text} ({effect} the risk)"


def current_period_snapshots(tables: Tables, as_of: pd.Timestamp) -> pd.DataFrame:
    """For every rep with a quota period open at ``as_of`` (and employed then: hired before
    it, not yet gone), a snapshot at ``as_of`` and weekly ones from the period's start (or
    the hire, if later): to date when a warning began.

    The ``as_of`` rows come first, in rep order: the Monte Carlo reads its random numbers
    row by row, so they are drawn exactly as when they are scored alone (the coaching's
    what-ifs, :mod:`spm_ml.coaching.reps`, reuse those draws)."""
    quotas = tables.quotas
    close = period_close(quotas["period_end"])
    open_now = (quotas["period_start"] < as_of) & (as_of < close) & (quotas["quota_amount"] > 0)
    current = quotas[open_now.to_numpy()].reset_index(drop=True)
    reps = tables.reps.set_index("rep_id")
    hired = (current["rep_id"].map(reps["hire_date"]) < as_of).to_numpy()
    gone = (current["rep_id"].map(reps["exit_date"]) < as_of).to_numpy()
    current = current[hired & ~gone].reset_index(drop=True)
    rows = []
    for row in current.itertuples(index=False):
        dates = pd.date_range(row.period_start, as_of, freq=f"{HISTORY_EVERY_DAYS}D")[1:]
        # as training's snapshots (features/quota.py): never a moment before the hire
        hire = reps.at[row.rep_id, "hire_date"]
        dates = [d for d in dates if hire < d < as_of] + [as_of]
        length = (period_close(row.period_end) - row.period_start) / pd.Timedelta(days=1)
        for when in dates:
            rows.append(
                {
                    "rep_id": row.rep_id,
                    "period_start": row.period_start,
                    "period_end": row.period_end,
                    "quota_amount": row.quota_amount,
                    "as_of": when,
                    "fraction_elapsed": (when - row.period_start) / pd.Timedelta(days=1) / length,
                }
            )
    columns = ["rep_id", "period_start", "period_end", "quota_amount", "as_of", "fraction_elapsed"]
    frame = pd.DataFrame(rows, columns=columns)
    later = (frame["as_of"] != as_of).to_numpy()
    return frame.iloc[np.argsort(later, kind="stable")].reset_index(drop=True)


WARNING_COLUMNS = [
    "manager_id",
    "rep_id",
    "rep_name",
    "kind",
    "probability",
    "warned",
    "warning_since",
    "expected_attainment",
    "attainment_p10",
    "attainment_p90",
    "days_left",
    "period_end",
    "drivers",
    "estimator",
    "model_version",
    "as_of",
]


def quota_warnings(
    tables: Tables,
    workdir: Path,
    *,
    as_of: pd.Timestamp | None = None,
    manager: str | None = None,
    models: dict[str, LoadedModel] | None = None,
    context: DealContext | None = None,
    deal_scores: pd.Series | None = None,
) -> pd.DataFrame:
    """Every rep with an open quota period at ``as_of`` (default: the data's extraction),
    scored by the champions, with drivers in words and the date the warning has held since.

    Columns: ``manager_id, rep_id, rep_name, kind, probability, warned, warning_since,
    expected_attainment, attainment_p10, attainment_p90, days_left, period_end, drivers,
    estimator, model_version, as_of``; sorted by manager, then probability.

    ``models`` (``quota-risk`` and ``deal-win``, loaded by the caller) and ``context`` (the
    deal model's, over tables with email scores) let a caller that holds them already (the
    batch job) score with exactly those versions, without loading or indexing twice;
    ``deal_scores`` (by ``deal_id``, the deal-win champion's at ``as_of``) spares
    featurising and scoring the open deals again at ``as_of``.
    """
    as_of = pd.Timestamp(as_of) if as_of is not None else extraction_time(tables)
    models = models or quota_champions(workdir)
    quota_model = models["quota-risk"]
    snapshots = current_period_snapshots(tables, as_of)
    if manager is not None:
        bosses = manager_at(tables, snapshots["rep_id"].to_numpy(), snapshots["as_of"].to_numpy())
        if manager not in set(tables.reps["rep_id"]):
            raise SpmMlError(f"no rep or manager {manager!r} in the data")
        snapshots = snapshots[bosses == manager].reset_index(drop=True)
    if snapshots.empty:
        return pd.DataFrame()
    _, scored, context = score_quota_snapshots(
        tables, snapshots, workdir, models=models, context=context, deal_scores=deal_scores
    )
    tables = context.tables
    scored["warned"] = scored["p_miss"] >= WARNING_PROBABILITY
    now = scored[scored["as_of"] == as_of].copy()
    now["manager_id"] = manager_at(tables, now["rep_id"].to_numpy(), now["as_of"].to_numpy())
    now["days_left"] = (period_close(now["period_end"]) - now["as_of"]).dt.days
    now = now.assign(
        kind="quota_risk", probability=now["p_miss"], model_version=quota_model.version
    )
    return _as_warnings(now, scored, tables)


def quota_champions(workdir: Path) -> dict[str, LoadedModel]:
    """The quota-risk and deal-win champions of ``workdir``'s MLflow store."""
    registry.use_local_store(workdir)
    return {name: registry.load_model(name) for name in ("quota-risk", "deal-win")}


def score_quota_snapshots(
    tables: Tables,
    snapshots: pd.DataFrame,
    workdir: Path,
    *,
    models: dict[str, LoadedModel],
    context: DealContext | None = None,
    deal_scores: pd.Series | None = None,
) -> tuple[QuotaInputs, pd.DataFrame, DealContext]:
    """``snapshots`` (``rep_id, period_start, period_end, quota_amount, as_of,
    fraction_elapsed``) scored as the quota-risk champion serves them, their open deals by
    the deal-win champion: the inputs (features, open deals with ``p_win``), the snapshots
    with :func:`~spm_ml.training.quota_risk.score_quota_risk`'s columns, and the deal
    model's context (built here over the tables with email scores unless given).
    ``deal_scores``: the deal-win champion's probabilities by ``deal_id`` at the snapshots'
    latest ``as_of``, when the caller made them already (the batch job)."""
    from spm_ml.features.context import DealContext
    from spm_ml.models.deal_win import custom_fields_of, feature_config_of, model_inputs
    from spm_ml.training.deal_win import prepare_tables
    from spm_ml.training.quota_risk import quota_inputs, score_quota_risk

    quota_model, deal_model = models["quota-risk"], models["deal-win"]
    deal_config = feature_config_of(deal_model.record)
    if context is None:
        tables = prepare_tables(tables, deal_config, workdir)[0]
        context = DealContext.build(
            tables, deal_config, custom_fields=custom_fields_of(deal_model.record)
        )

    def champion(rows: pd.DataFrame, row_features: pd.DataFrame) -> np.ndarray:
        return deal_model.model.predict_proba(model_inputs(row_features))[:, 1]

    inputs = quota_inputs(
        context.tables,
        snapshots,
        deal_config=deal_config,
        score_deals=champion,
        context=context,
        deal_scores=deal_scores,
        scores_as_of=snapshots["as_of"].max() if len(snapshots) else None,
    )
    scored = pd.concat([snapshots, score_quota_risk(quota_model, inputs)], axis=1)
    return inputs, scored, context


ATTRITION_HISTORY_MONTHS = 6
"""Month starts scored before ``as_of`` to date an attrition warning."""


def attrition_warnings(
    tables: Tables,
    workdir: Path,
    *,
    as_of: pd.Timestamp | None = None,
    manager: str | None = None,
    model: LoadedModel | None = None,
) -> pd.DataFrame:
    """Top performers at attrition risk at ``as_of``, scored by the attrition champion
    (or ``model``, when the caller loaded it).

    Every AE employed at ``as_of`` is scored (and at the previous month starts, to date the
    warning); a rep is warned about when a top performer (trailing attainment in the
    company's top quarter, the training's definition) *and* among the riskiest tenth of the
    AEs scored that day (the rule the model card's lead time uses).  Same columns as
    :func:`quota_warnings`; the attainment and period columns are empty.
    """
    from spm_ml.features.rep_snapshots import attrition_snapshots, top_performers
    from spm_ml.models.attrition import attrition_inputs
    from spm_ml.training.attrition import WARNING_SHARE, AttritionTrainConfig, attrition_features

    as_of = pd.Timestamp(as_of) if as_of is not None else extraction_time(tables)
    if model is None:
        registry.use_local_store(workdir)
        model = registry.load_model("attrition")
    loaded = model
    share = loaded.record.extra.get("top_performer_share", AttritionTrainConfig.top_performer_share)
    starts = pd.date_range(end=as_of, periods=ATTRITION_HISTORY_MONTHS + 1, freq="MS")
    dates = pd.DatetimeIndex(sorted({*starts[starts < as_of], as_of}))
    snapshots = attrition_snapshots(tables, dates=dates)[["rep_id", "as_of"]]
    if snapshots.empty:
        return pd.DataFrame()
    features = attrition_features(tables, snapshots)
    probability, drivers = loaded.model.score_and_explain(attrition_inputs(features), 3)
    scored = features[["rep_id", "as_of"]].assign(
        probability=probability,
        drivers=drivers,
        top=top_performers(features["attainment_rank_pct"], share),
    )
    per_date = scored.groupby("as_of")["probability"]
    flagged = np.maximum(1, np.round(per_date.transform("size") * WARNING_SHARE))
    riskiest = per_date.rank(ascending=False, method="first") <= flagged
    scored["warned"] = (riskiest & scored["top"]).to_numpy()
    scored["period_start"] = pd.NaT  # one run of months per rep for _held_since
    now = scored[scored["as_of"] == as_of].copy()
    now["manager_id"] = manager_at(tables, now["rep_id"].to_numpy(), now["as_of"].to_numpy())
    if manager is not None:
        now = now[now["manager_id"] == manager]
    now = now[now["top"]].assign(kind="attrition", estimator="model", model_version=loaded.version)
    return _as_warnings(now, scored, tables)


def _as_warnings(now: pd.DataFrame, scored: pd.DataFrame, tables: Tables) -> pd.DataFrame:
    """The rows scored at ``as_of`` as warnings: the date each has held since (from the
    earlier ``scored`` rows), names, drivers in words, :data:`WARNING_COLUMNS` (a column
    a kind does not have stays empty), sorted by manager, then probability."""
    now = now.copy()
    now["warning_since"] = [
        _held_since(scored, rep, start)
        for rep, start in zip(now["rep_id"], now["period_start"], strict=True)
    ]
    reps = tables.reps.set_index("rep_id")
    now["rep_name"] = now["rep_id"].map(reps["name"]) if "name" in reps else now["rep_id"]
    now["drivers"] = [[in_words(d, PHRASES) for d in row] for row in now["drivers"]]
    return (
        now.reindex(columns=WARNING_COLUMNS)
        .sort_values(["manager_id", "probability"], ascending=[True, False], kind="stable")
        .reset_index(drop=True)
    )


def _held_since(scored: pd.DataFrame, rep: str, period_start: pd.Timestamp):
    """The first date of the latest unbroken run of warnings up to ``as_of`` (None if the
    rep is not warned now)."""
    same_period = (
        scored["period_start"].isna()
        if pd.isna(period_start)
        else scored["period_start"] == period_start
    )
    mine = scored[(scored["rep_id"] == rep) & same_period]
    mine = mine.sort_values("as_of")
    warned = mine["warned"].to_numpy()
    if not warned[-1]:
        return None
    broken = np.flatnonzero(~warned)
    first = broken[-1] + 1 if len(broken) else 0
    return mine["as_of"].iloc[first]
