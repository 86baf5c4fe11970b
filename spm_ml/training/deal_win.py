"""The deal-win family: what is particular to it, as a :class:`FamilySpec` (:data:`DEAL_WIN`).

snapshots of every deal (calendar grid, label "won within H days") -> features as of each
snapshot -> time split on when labels became known; slices by segment, size, rep history
and stage; email tone scored first.  Fitting, references, held-out metrics, MLflow and the
registry are the generic path's (:mod:`spm_ml.training.family`).  The CLI, the MLproject
entry point and quickstart all call :func:`train_deal_win`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.errors import ModelNotFoundError
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.snapshots import LabelDefinition, deal_snapshots, extraction_time
from spm_ml.models.deal_win import (
    DealWinModel,
    categorical_columns,
    custom_fields_of,
    feature_config_of,
    model_inputs,
)
from spm_ml.models.record import TrainingRecord
from spm_ml.models.slices import deal_slices
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

MODEL_NAME = "deal-win"
MIN_CLOSED_PER_CLASS = 200
"""Below this many won or lost deals closed before the training date, the data is thin.

Salesforce Einstein's opportunity scoring asks for 200 won and 200 lost; Dynamics 365's
predictive scoring starts at 40 and 40.  spm-ml trains anyway, says so in the output and
the metrics JSON, and the bootstrap intervals show how little the figures can be trusted."""


@dataclass(frozen=True)
class DealWinTrainConfig:
    """Everything that decides a deal-win training run; logged to MLflow in full."""

    snapshot_every_days: int = 7
    test_fraction: float = 0.25
    valid_fraction: float = 0.2
    bootstrap_samples: int = 200
    seed: int = 0
    model_name: str = MODEL_NAME
    label: LabelDefinition = field(default_factory=LabelDefinition)
    features: DealFeatureConfig = field(default_factory=DealFeatureConfig)
    model: dict = field(default_factory=dict)
    """Hyper-parameters for :class:`DealWinModel` overriding its defaults."""


DealWinRun = TrainingRun
"""A deal-win training run (the generic :class:`~spm_ml.training.family.TrainingRun`)."""


def deal_win_rows(tables: Tables, config: DealWinTrainConfig) -> LabelledRows:
    """Weekly snapshots of every deal, labelled, split by time and featurised."""
    snapshots, split = labelled_snapshots(tables, config)
    context = DealContext.build(tables, config.features)  # custom fields screened here
    features = deal_features(tables, snapshots, config.features, context)
    sufficiency = data_sufficiency(tables, split.test_start)
    if sufficiency["thin"]:
        logger.warning("%s", sufficiency["message"])
    return LabelledRows(
        snapshots=snapshots,
        split=split,
        features=features,
        X=model_inputs(features),
        record_extra={"custom_fields": [asdict(f) for f in context.custom_fields]},
        document_extra={"censoring": censoring_report(split), "data_sufficiency": sufficiency},
    )


def deal_win_slices(tables: Tables, rows: LabelledRows) -> dict[str, np.ndarray]:
    """Held-out slices by segment, size band, rep history and stage."""
    split = rows.split
    deals = rows.snapshots["deal_id"].to_numpy()[split.test]
    return deal_slices(
        rows.X.iloc[split.test], rows.X.iloc[split.train], segments=_segments(tables, deals)
    )


def _prepare(
    tables: Tables, config: DealWinTrainConfig, workdir: Path, progress=None
) -> tuple[Tables, str | None]:
    return prepare_tables(tables, config.features, workdir, progress)


def _prepare_for(tables: Tables, records: list[TrainingRecord], workdir: Path) -> Tables:
    """Email tone scored when any of the models reads it."""
    uses_sentiment = any(r.feature_config.get("email_sentiment") for r in records)
    return prepare_tables(tables, DealFeatureConfig(email_sentiment=uses_sentiment), workdir)[0]


def deal_win_evaluation_rows(
    tables: Tables, records: list[TrainingRecord], every_days: int = 7
) -> EvaluationRows:
    """Snapshots after every model's training cut-off whose outcome window has passed.

    Judging a model on rows it trained on flatters it; so both models are scored only on
    snapshots dated from the later of their cut-offs to the extraction time minus the
    horizon, where every open deal has a known label.
    """
    horizons = {r.horizon_days for r in records}
    if len(horizons) != 1:
        raise ModelNotFoundError(
            f"the models predict different things (label horizons {sorted(horizons)} days); "
            "promotion compares models of the same label only"
        )
    label = LabelDefinition(horizon_days=horizons.pop())
    end = extraction_time(tables) - pd.Timedelta(days=label.horizon_days)
    return rows_after_cutoffs(
        deal_snapshots(tables, every_days=every_days, label=label),
        records,
        end,
        rows_named="snapshots",
        window=f"{label.horizon_days}-day outcome window",
    )


def deal_win_scores(loaded: LoadedModel, tables: Tables, rows: pd.DataFrame) -> np.ndarray:
    """A version's probabilities on ``rows``, its features built with its own configuration."""
    config = feature_config_of(loaded.record)
    context = DealContext.build(tables, config, custom_fields=custom_fields_of(loaded.record))
    return loaded.model.predict_proba(model_inputs(deal_features(tables, rows, config, context)))[
        :, 1
    ]


DEAL_WIN = FamilySpec(
    name="deal-win",
    entity="deal_id",
    label="won",
    dataset="deal_snapshots",
    estimator=DealWinModel,
    prepare=_prepare,
    rows=deal_win_rows,
    categorical=categorical_columns,
    slices=deal_win_slices,
    evaluation_rows=deal_win_evaluation_rows,
    score=deal_win_scores,
    prepare_for=_prepare_for,
)
"""The deal-win family: open deals on a weekly grid, "won within H days"."""


def train_deal_win(
    tables: Tables,
    *,
    workdir: Path,
    config: DealWinTrainConfig | None = None,
    register: bool = True,
    data_description: str = "",
    progress=None,
    reuse_identical: bool = False,
) -> TrainingRun:
    """Train, evaluate, log and (optionally) register a deal-win model on ``tables``
    (:func:`~spm_ml.training.family.train_family` with :data:`DEAL_WIN`)."""
    return train_family(
        DEAL_WIN,
        tables,
        workdir=workdir,
        config=config or DealWinTrainConfig(),
        register=register,
        data_description=data_description,
        progress=progress,
        reuse_identical=reuse_identical,
    )


def labelled_snapshots(
    tables: Tables, config: DealWinTrainConfig
) -> tuple[pd.DataFrame, TimeSplit]:
    """The snapshots a run trains and tests on, and the split whose positions index them.

    Snapshots in no fold (labels unknown at the training date, or after the last date whose
    outcome window has passed) are counted in ``split.censoring`` and not featurised.
    """
    every = deal_snapshots(tables, every_days=config.snapshot_every_days, label=config.label)
    return split_snapshots(
        every,
        "won",
        observable_end=extraction_time(tables) - pd.Timedelta(days=config.label.horizon_days),
        test_fraction=config.test_fraction,
        valid_fraction=config.valid_fraction,
    )


def censoring_report(split: TimeSplit) -> dict:
    """How many snapshots were right-censored or left out, and how each kind was treated."""
    c = split.censoring
    return {
        **c,
        "train": int(len(split.train)),
        "test": int(len(split.test)),
        "treatment": (
            "test: every snapshot dated from test_start to observable_end (extraction minus "
            "the horizon), so every deal open on a test date is judged, including deals "
            "still open at extraction (label 0: not won within the horizon); training: "
            "snapshots whose label was known before test_start; censored_at_extraction "
            "(deal still open, horizon not passed) and unknown_at_training_date snapshots "
            "are left out of training, after_observable_end ones out of the test"
        ),
    }


def _segments(tables: Tables, deal_ids: np.ndarray) -> np.ndarray | None:
    """The deals' ``segment`` column, when the data has one, to slice results by."""
    if "segment" not in tables.deals.columns:
        return None
    return tables.deals.set_index("deal_id")["segment"].reindex(deal_ids).to_numpy(dtype=object)


def data_sufficiency(tables: Tables, before: pd.Timestamp) -> dict:
    """Won and lost deals closed before the training date, against the documented minimum."""
    deals = tables.deals
    closed = deals["closed_at"] < before
    won = int((closed & (deals["outcome"] == "won")).sum())
    lost = int((closed & (deals["outcome"] == "lost")).sum())
    thin = min(won, lost) < MIN_CLOSED_PER_CLASS
    message = (
        f"thin data: {won} won and {lost} lost deals closed before {before.date()} "
        f"(fewer than {MIN_CLOSED_PER_CLASS} of each); the model was trained anyway, "
        "read its intervals before trusting it"
        if thin
        else f"{won} won and {lost} lost deals closed before {before.date()}"
    )
    return {
        "won_closed_deals": won,
        "lost_closed_deals": lost,
        "minimum_each": MIN_CLOSED_PER_CLASS,
        "thin": thin,
        "message": message,
    }


def prepare_tables(
    tables: Tables, features: DealFeatureConfig, workdir: Path, progress=None
) -> tuple[Tables, str | None]:
    """Score email sentiment when the feature set uses it (cached per work folder; bodies
    are dropped); returns the tables and the sentiment model's fingerprint (or ``None``)."""
    if not features.email_sentiment:
        return tables, None
    from spm_ml import settings
    from spm_ml.nlp import sentiment_fingerprint
    from spm_ml.nlp.batch import resolve_model
    from spm_ml.nlp.signals import FINGERPRINT_ATTR, with_email_scores

    model = resolve_model(None)  # the default model, loaded once per process
    cache = settings.email_scores_path(workdir)
    scored = with_email_scores(tables, cache=cache, model=model, progress=progress)
    # scores made before (score_emails) name their model; else it is the default one
    return scored, scored.emails.attrs.get(FINGERPRINT_ATTR) or sentiment_fingerprint(model)
