"""The attrition family (organisation mode): what is particular to it, as :data:`ATTRITION`.

every employed AE at each month start (label "leaves voluntarily within H days") -> rep
features as of each snapshot (:mod:`spm_ml.features.reps`) -> time split on when labels
became known; slices by top performer and tenure; a report of what a retention programme
asks: how well the riskiest top performers are found (:func:`precision_at_k_per_date`) and
how early a leaver is flagged (:func:`lead_time_days`).  Fitting, references, held-out
metrics, MLflow and the registry are the generic path's (:mod:`spm_ml.training.family`).

The flat-export mode (``spm-ml train attrition --table``) is :mod:`spm_ml.training.tabular`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.errors import ModelNotFoundError
from spm_ml.features.rep_snapshots import (
    AttritionLabel,
    attrition_snapshots,
    top_performers,
)
from spm_ml.features.reps import RepFeatureConfig, rep_history_features
from spm_ml.features.snapshots import extraction_time
from spm_ml.models.attrition import AttritionModel, attrition_categoricals, attrition_inputs
from spm_ml.models.metrics import binary_metrics
from spm_ml.models.record import TrainingRecord
from spm_ml.registry import LoadedModel
from spm_ml.training.family import (
    EvaluationRows,
    FamilySpec,
    LabelledRows,
    TrainingRun,
    rows_after_cutoffs,
    train_family,
)
from spm_ml.training.split import TimeSplit, split_snapshots

logger = logging.getLogger(__name__)

MODEL_NAME = "attrition"
PRECISION_AT = 10
"""Top performers a manager can talk to in a month: the report's precision at 10."""
PRECISION_DEFINITION = (
    "per test date, the 10 top performers with the highest probability; precision = share "
    "of them who leave voluntarily within the horizon, averaged over the dates"
)
WARNING_SHARE = 0.1
"""The warning rule of :func:`lead_time_days`: the riskiest tenth of the reps scored on a date."""
MIN_VOLUNTARY_EXITS = 20
"""Below this many voluntary exits known before the training date, the data is thin: a
few dozen positives already give ROC AUC intervals about 0.1 wide."""
TENURE_BANDS = ((183, "< 6 months"), (548, "6-18 months"), (np.inf, "18+ months"))
"""Slices by tenure: new hires, the ramped, and reps past 18 months (when poaching starts)."""


@dataclass(frozen=True)
class AttritionTrainConfig:
    """Everything that decides an attrition training run; logged to MLflow in full."""

    test_fraction: float = 0.3
    valid_fraction: float = 0.25
    bootstrap_samples: int = 200
    seed: int = 0
    model_name: str = MODEL_NAME
    top_performer_share: float = 0.25
    """A top performer: trailing attainment in this top share of the company at ``as_of``."""
    label: AttritionLabel = field(default_factory=AttritionLabel)
    features: RepFeatureConfig = field(default_factory=RepFeatureConfig)
    model: dict = field(default_factory=dict)
    """Hyper-parameters for :class:`AttritionModel` overriding its defaults."""


def attrition_features(tables: Tables, snapshots: pd.DataFrame) -> pd.DataFrame:
    """The snapshots' ids and times with their rep features, row for row."""
    snapshots = snapshots.reset_index(drop=True)
    return pd.concat(
        [snapshots[["rep_id", "as_of"]], rep_history_features(tables, snapshots)], axis=1
    )


def attrition_rows(tables: Tables, config: AttritionTrainConfig) -> LabelledRows:
    """Monthly snapshots of every employed AE, labelled, split by time and featurised.

    The snapshots also carry ``top_performer`` (for slices and the report; not an input).
    """
    every = attrition_snapshots(tables, config.label)
    observable_end = extraction_time(tables) - pd.Timedelta(days=config.label.horizon_days)
    snapshots, split = split_snapshots(
        every,
        "left",
        observable_end=observable_end,
        test_fraction=config.test_fraction,
        valid_fraction=config.valid_fraction,
    )
    features = attrition_features(tables, snapshots)
    snapshots["top_performer"] = top_performers(
        features["attainment_rank_pct"], config.top_performer_share
    )
    sufficiency = data_sufficiency(snapshots, split)
    if sufficiency["thin"]:
        logger.warning("%s", sufficiency["message"])
    return LabelledRows(
        snapshots=snapshots,
        split=split,
        features=features,
        X=attrition_inputs(features),
        record_extra={"top_performer_share": config.top_performer_share},
        document_extra={
            "censoring": censoring_report(split),
            "data_sufficiency": sufficiency,
            "top_performer_definition": (
                f"trailing attainment (mean of the last 4 closed quota periods) in the top "
                f"{config.top_performer_share:.0%} of the reps with a quota in the same last "
                "closed period, at as_of"
            ),
        },
    )


def attrition_slices(tables: Tables, rows: LabelledRows) -> dict[str, pd.Series]:
    """Held-out slices: top performer or not, and tenure band."""
    test = rows.split.test
    snapshots = rows.snapshots.iloc[test]
    ranked = rows.features["attainment_rank_pct"].iloc[test].notna().to_numpy()
    performer = np.select(
        [snapshots["top_performer"].to_numpy(dtype=bool), ranked],
        ["top performer", "others"],
        "no closed quota period",
    ).astype(object)
    tenure = rows.features["tenure_days"].iloc[test].to_numpy(dtype=np.float64)
    names = [name for _, name in TENURE_BANDS]
    band = np.select([tenure < limit for limit, _ in TENURE_BANDS], names, "(missing)")
    index = snapshots.index
    return {
        "performer": pd.Series(performer, index=index),
        "tenure_band": pd.Series(pd.Categorical(band, categories=[*names, "(missing)"]), index),
    }


def attrition_report(
    tables: Tables, rows: LabelledRows, probabilities: dict[str, np.ndarray]
) -> dict:
    """The family's own held-out figures, for the model and the logistic reference.

    - ``precision_at_10_top_performers`` (the model's): see :func:`precision_at_k_per_date`.
    - ``top_performers``: ROC AUC among top-performer test snapshots, and precision at 10
      of each model beside the base rate (what picking 10 at random would give).
    - ``lead_time_days``: see :func:`lead_time_days`.
    """
    test = rows.snapshots.iloc[rows.split.test].reset_index(drop=True)
    exits = tables.reps.set_index("rep_id")["exit_date"]
    top = test["top_performer"].to_numpy(dtype=bool)
    y = test["left"].to_numpy(dtype=int)
    models = [m for m in ("model", "logistic_regression") if m in probabilities]
    precision = {m: precision_at_k_per_date(test, probabilities[m], top) for m in models}
    lead = {m: lead_time_days(test, probabilities[m], exits) for m in models}
    return {
        "precision_at_10_top_performers": precision["model"],
        "top_performers": {
            "rows": int(top.sum()),
            "positives": int(y[top].sum()),
            "reps": int(test.loc[top, "rep_id"].nunique()),
            "roc_auc": {
                m: _finite(binary_metrics(y[top], probabilities[m][top])["roc_auc"]) for m in models
            },
            "precision_at_10": {**precision, "base_rate": _finite(_base_rate_at_k(test, top))},
            "precision_definition": PRECISION_DEFINITION,
        },
        "lead_time_days": {**lead["model"], "references": {m: lead[m] for m in models[1:]}},
    }


def precision_at_k_per_date(
    test: pd.DataFrame, probability: np.ndarray, among: np.ndarray, k: int = PRECISION_AT
) -> float | None:
    """Per test date, the ``k`` top performers with the highest probability; precision is the
    share of them who leave voluntarily within the horizon, averaged over the dates.

    All of them when a date has fewer than ``k``; dates without one are skipped (``None`` if
    every date is).  ``test`` has ``as_of`` and the label ``left``; ``among`` marks the rows
    in the population (the top performers)."""
    frame = pd.DataFrame(
        {"as_of": test["as_of"].to_numpy(), "left": test["left"].to_numpy(), "p": probability}
    )[np.asarray(among, dtype=bool)]
    if frame.empty:
        return None
    top = frame.sort_values("p", ascending=False, kind="stable").groupby("as_of").head(k)
    return float(top.groupby("as_of")["left"].mean().mean())


def _base_rate_at_k(test: pd.DataFrame, among: np.ndarray) -> float:
    """Expected precision of ``k`` picked at random: the per-date positive rate, averaged."""
    frame = test[np.asarray(among, dtype=bool)]
    return float(frame.groupby("as_of")["left"].mean().mean()) if len(frame) else np.nan


def lead_time_days(
    test: pd.DataFrame,
    probability: np.ndarray,
    exits: pd.Series,
    share: float = WARNING_SHARE,
) -> dict:
    """How long before a voluntary exit the warning first fired and held.

    The warning rule: on each date, the ``share`` (10%) of the reps scored with the highest
    probability are flagged: what a monthly "riskiest tenth" list would show, and a rule that
    needs no threshold carried over from earlier data.  For each rep who left voluntarily
    within the horizon of a test snapshot (the true positives), over their test snapshots in
    that horizon: if the last one before the exit is flagged, the lead time is the exit date
    minus the first date of the unbroken run of flags that ends there; else the rep was
    missed.  Returns ``median``, ``q1``, ``q3`` (days; ``None`` when nobody was warned),
    ``leavers`` and ``warned``.
    """
    frame = pd.DataFrame(
        {
            "rep_id": test["rep_id"].to_numpy(),
            "as_of": test["as_of"].to_numpy(),
            "left": test["left"].to_numpy(),
            "p": probability,
        }
    )
    per_date = frame.groupby("as_of")["p"]
    flagged_count = np.maximum(1, np.round(per_date.transform("size") * share))
    frame["flag"] = per_date.rank(ascending=False, method="first") <= flagged_count
    positives = frame[frame["left"] == 1].sort_values(["rep_id", "as_of"], kind="stable")
    leads = []
    for rep, rows in positives.groupby("rep_id", sort=False):
        flags = rows["flag"].to_numpy()
        if not flags[-1]:
            continue
        run_start = len(flags) - np.argmin(flags[::-1]) if not flags.all() else 0
        first = rows["as_of"].iloc[run_start]
        leads.append((pd.Timestamp(exits[rep]) - pd.Timestamp(first)).days)
    quartiles = np.percentile(leads, [25, 50, 75]).tolist() if leads else [None] * 3
    return {
        "median": quartiles[1],
        "q1": quartiles[0],
        "q3": quartiles[2],
        "leavers": int(positives["rep_id"].nunique()),
        "warned": len(leads),
        "rule": f"flagged: the {share:.0%} highest-probability reps of each test date; "
        "lead = exit minus the first date of the flag run that lasts until the exit",
    }


def data_sufficiency(snapshots: pd.DataFrame, split: TimeSplit) -> dict:
    """Voluntary leavers among the training and test labels, against the documented minimum."""
    train = snapshots.iloc[split.train]
    test = snapshots.iloc[split.test]
    train_leavers = int(train.loc[train["left"] == 1, "rep_id"].nunique())
    test_leavers = int(test.loc[test["left"] == 1, "rep_id"].nunique())
    thin = train_leavers < MIN_VOLUNTARY_EXITS
    message = (
        f"thin data: {train_leavers} voluntary leavers in the training labels and "
        f"{test_leavers} in the test window (fewer than {MIN_VOLUNTARY_EXITS} to learn from); "
        "the model was trained anyway, read its intervals before trusting it"
        if thin
        else f"{train_leavers} voluntary leavers in the training labels, {test_leavers} in the "
        "test window"
    )
    return {
        "voluntary_leavers_train": train_leavers,
        "voluntary_leavers_test": test_leavers,
        "minimum": MIN_VOLUNTARY_EXITS,
        "thin": thin,
        "message": message,
    }


def censoring_report(split: TimeSplit) -> dict:
    """How many snapshots were right-censored or left out, and how each kind was treated."""
    return {
        **split.censoring,
        "train": int(len(split.train)),
        "test": int(len(split.test)),
        "population": "every AE employed on the test dates",
        "treatment": (
            "test: every AE employed on a date from test_start to observable_end (extraction "
            "minus the horizon), stayers, leavers and reps let go alike; training: snapshots "
            "whose label was known before test_start; reps still employed at extraction whose "
            "horizon has not passed are censored_at_extraction and left out"
        ),
    }


def attrition_evaluation_rows(
    tables: Tables, records: list[TrainingRecord], every_days: int = 30
) -> EvaluationRows:
    """Month-start snapshots after every model's training cut-off whose window has passed.

    ``every_days`` is ignored: the rows are the family's monthly grid.
    """
    labels = {(r.horizon_days, tuple(r.label.get("roles", ("AE",)))) for r in records}
    if len(labels) != 1:
        raise ModelNotFoundError(
            "the models predict different things (label horizons or roles differ); "
            "promotion compares models of the same label only"
        )
    horizon, roles = labels.pop()
    end = extraction_time(tables) - pd.Timedelta(days=horizon)
    return rows_after_cutoffs(
        attrition_snapshots(tables, AttritionLabel(horizon_days=horizon, roles=roles)),
        records,
        end,
        rows_named="month starts",
        window=f"{horizon}-day window",
    )


def attrition_scores(loaded: LoadedModel, tables: Tables, rows: pd.DataFrame) -> np.ndarray:
    """A version's probabilities on ``rows`` (the rep feature set has no options)."""
    return loaded.model.predict_proba(attrition_inputs(attrition_features(tables, rows)))[:, 1]


def _unchanged(tables: Tables, config, workdir: Path, progress=None) -> tuple[Tables, None]:
    """Nothing to derive before training: no email tone in rep features."""
    return tables, None


def _unchanged_for(tables: Tables, records: list[TrainingRecord], workdir: Path) -> Tables:
    return tables


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


ATTRITION = FamilySpec(
    name="attrition",
    entity="rep_id",
    label="left",
    dataset="rep_snapshots",
    estimator=AttritionModel,
    prepare=_unchanged,
    rows=attrition_rows,
    categorical=attrition_categoricals,
    slices=attrition_slices,
    evaluation_rows=attrition_evaluation_rows,
    score=attrition_scores,
    prepare_for=_unchanged_for,
    report=attrition_report,
)
"""The attrition family: employed AEs monthly, "leaves voluntarily within H days"."""


def train_attrition(
    tables: Tables, *, config: AttritionTrainConfig | None = None, **options
) -> TrainingRun:
    """Train, evaluate, log and (optionally) register an attrition model on ``tables``:
    :func:`~spm_ml.training.family.train_family` with :data:`ATTRITION` (``options``: its
    ``workdir``, ``register``, ``data_description``, ``progress``, ``reuse_identical``)."""
    return train_family(ATTRITION, tables, config=config or AttritionTrainConfig(), **options)
