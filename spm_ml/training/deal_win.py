"""Training the deal-win model on an organisation's history, end to end.

snapshots of every deal (calendar grid, label "won within H days") -> features as of each
snapshot -> time split on when labels became known -> calibrated LightGBM beside the prior
and a logistic regression -> held-out metrics on every deal open at the test dates, with
bootstrap intervals and plots -> MLflow run with the model's own context (feature config,
label, cut-offs, sentiment fingerprint) -> registered version, alias.  The CLI, the MLproject
entry point and quickstart all call :func:`train_deal_win`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml import registry
from spm_ml.data.tables import Tables
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.snapshots import LabelDefinition, deal_snapshots, extraction_time
from spm_ml.models.deal_win import DealWinModel, categorical_columns, model_inputs
from spm_ml.models.evaluation import evaluate, flat_metrics, metrics_document
from spm_ml.models.record import TrainingRecord, digest, frame_digest
from spm_ml.models.references import PriorModel, tuned_logistic_reference
from spm_ml.models.slices import deal_slices, slice_metrics
from spm_ml.training.split import TimeSplit, time_split

logger = logging.getLogger(__name__)

MODEL_NAME = "deal-win"
EXPERIMENT = "deal-win"
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


@dataclass
class DealWinRun:
    """What a training run produced, for the caller to print or chain."""

    model: DealWinModel
    metrics: dict
    slices: list[dict]
    """Held-out metrics per segment, size band, rep history and stage."""
    held_out: pd.DataFrame
    """The test snapshots (``deal_id``, ``as_of``, ``won``) with each model's probability."""
    run_id: str
    model_version: str | None
    alias: str | None
    split: TimeSplit
    seconds: float
    snapshots: pd.DataFrame
    """The snapshots used (train and test rows); ``split`` positions index into them."""
    features: pd.DataFrame
    """Their features, row for row."""
    record: TrainingRecord
    reused: bool = False
    """True when an identical registered version was returned instead of training; then
    ``held_out``, ``split``, ``snapshots`` and ``features`` are ``None``."""


def train_deal_win(
    tables: Tables,
    *,
    workdir: Path,
    config: DealWinTrainConfig | None = None,
    register: bool = True,
    data_description: str = "",
    progress=None,
    reuse_identical: bool = False,
) -> DealWinRun:
    """Train, evaluate, log and (optionally) register a deal-win model on ``tables``.

    With ``reuse_identical``, a registered version trained on the same data, configuration,
    sentiment model and code is returned (``run.reused``) instead of training a duplicate.
    """
    import mlflow

    config = config or DealWinTrainConfig()
    started = time.perf_counter()
    step = _stepper(progress, total=5)

    tables, sentiment_model = prepare_tables(tables, config.features, workdir, progress)
    data_digest = tables_digest(tables)
    recipe = recipe_digest(data_digest, config, sentiment_model)
    if reuse_identical and register:
        reused = _reuse_identical_version(config.model_name, recipe, workdir, started)
        if reused is not None:
            return reused
    snapshots, split = labelled_snapshots(tables, config)
    context = DealContext.build(tables, config.features)  # custom fields screened here
    features = deal_features(tables, snapshots, config.features, context)
    step("features")
    y = snapshots["won"].to_numpy()
    sufficiency = data_sufficiency(tables, split.test_start)
    if sufficiency["thin"]:
        logger.warning("%s", sufficiency["message"])
    X = model_inputs(features)
    categorical = categorical_columns(X)
    model = DealWinModel(categorical_features=categorical, random_state=config.seed, **config.model)
    deals = snapshots["deal_id"].to_numpy()
    model.fit(
        X.iloc[split.fit],
        y[split.fit].astype(int),
        eval_set=(X.iloc[split.valid], y[split.valid].astype(int)),
        groups=deals[split.fit],
        eval_groups=deals[split.valid],
    )
    step("model")

    train_rows = split.train
    prior = PriorModel().fit(X.iloc[train_rows], y[train_rows].astype(int))
    logistic, logistic_C = tuned_logistic_reference(
        X.iloc[split.fit],
        y[split.fit].astype(int),
        X.iloc[split.valid],
        y[split.valid].astype(int),
        categorical,
        seed=config.seed,
    )
    step("references")

    X_test, y_test = X.iloc[split.test], y[split.test].astype(int)
    probabilities = {
        "model": model.predict_proba(X_test)[:, 1],
        "prior": prior.predict_proba(X_test)[:, 1],
        "logistic_regression": logistic.predict_proba(X_test)[:, 1],
    }
    evaluation = evaluate(
        y_test,
        probabilities,
        groups=deals[split.test],
        n_boot=config.bootstrap_samples,
        seed=config.seed,
    )
    slices = slice_metrics(
        y_test,
        {k: v for k, v in probabilities.items() if k != "prior"},
        deal_slices(X_test, X.iloc[train_rows], segments=_segments(tables, deals[split.test])),
        groups=deals[split.test],
    )
    step("evaluation")

    record = TrainingRecord(
        family="deal-win",
        feature_config=asdict(config.features),
        label=config.label.as_dict(),
        cutoffs=split.cutoffs(),
        sentiment_model=sentiment_model,
        data_digest=data_digest,
        recipe_digest=recipe,
        extra={"custom_fields": [asdict(f) for f in context.custom_fields]},
    )
    document = metrics_document(
        evaluation,
        n_train=len(train_rows),
        n_test=len(split.test),
        split="time",
        run_id=None,
    )
    document["label"] = config.label.as_dict()
    document["censoring"] = censoring_report(split)
    document["data_sufficiency"] = sufficiency

    registry.use_local_store(workdir)
    if not os.environ.get("MLFLOW_RUN_ID"):  # inside `mlflow run`, log into its run
        registry.ensure_experiment(EXPERIMENT, workdir)
    with mlflow.start_run() as run:
        document["mlflow_run_id"] = run.info.run_id
        _log_run(config, split, model, features, evaluation, record, data_description)
        mlflow.log_param("logistic_regression_C", logistic_C)
        _log_plots(model, X_test, y_test, probabilities, slices, config.seed)
        info = _log_model(model, X_test, config.model_name if register else None, record)
        mlflow.log_dict(document, "metrics.json")
        mlflow.log_dict({"slices": slices}, "slices.json")
    version = alias = None
    if register:
        version = str(info.registered_model_version)
        registry.tag_version(config.model_name, version, {"recipe_digest": recipe})
        alias = registry.assign_new_version_alias(config.model_name, version)
    step("logged")
    used = snapshots.reset_index(drop=True)
    return DealWinRun(
        model=model,
        metrics=document,
        slices=slices,
        held_out=used.iloc[split.test][["deal_id", "as_of", "won"]]
        .astype({"won": int})
        .reset_index(drop=True)
        .assign(**probabilities),
        run_id=run.info.run_id,
        model_version=version,
        alias=alias,
        split=split,
        seconds=time.perf_counter() - started,
        snapshots=used,
        features=features,
        record=record,
    )


def labelled_snapshots(
    tables: Tables, config: DealWinTrainConfig
) -> tuple[pd.DataFrame, TimeSplit]:
    """The snapshots a run trains and tests on, and the split whose positions index them.

    Snapshots in no fold (labels unknown at the training date, or after the last date whose
    outcome window has passed) are counted in ``split.censoring`` and not featurised.
    """
    every = deal_snapshots(tables, every_days=config.snapshot_every_days, label=config.label)
    observable_end = extraction_time(tables) - pd.Timedelta(days=config.label.horizon_days)
    split = time_split(
        every["as_of"],
        every["label_known_at"],
        every["won"].to_numpy(),
        observable_end=observable_end,
        test_fraction=config.test_fraction,
        valid_fraction=config.valid_fraction,
    )
    used = np.concatenate([split.fit, split.valid, split.test])
    snapshots = every.iloc[used].reset_index(drop=True)
    n_fit, n_valid = len(split.fit), len(split.valid)
    positions = np.arange(len(used))
    compact = TimeSplit(
        fit=positions[:n_fit],
        valid=positions[n_fit : n_fit + n_valid],
        test=positions[n_fit + n_valid :],
        valid_start=split.valid_start,
        test_start=split.test_start,
        observable_end=split.observable_end,
        censoring=split.censoring,
    )
    return snapshots, compact


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


def tables_digest(tables: Tables) -> str:
    """Digest of every table's content and the extraction time (text columns included)."""
    return digest(
        {name: frame_digest(frame) for name, frame in tables.items()}, str(tables.extracted_at)
    )


def recipe_digest(data_digest: str, config: DealWinTrainConfig, sentiment_model: str | None) -> str:
    """Same data, configuration, sentiment model and code: same digest (same model)."""
    from spm_ml import __version__

    return digest(
        data_digest, asdict(config), sentiment_model, registry.git_commit() or __version__
    )


def _reuse_identical_version(
    name: str, recipe: str, workdir: Path, started: float
) -> DealWinRun | None:
    """The registered version trained on the same recipe, as a run result, if there is one.

    Re-running quickstart on identical data would otherwise register a duplicate version.
    """
    import mlflow

    registry.use_local_store(workdir)
    version = registry.version_with_tag(name, "recipe_digest", recipe)
    if version is None:
        return None
    loaded = registry.load_model(name, version=version.version)
    run_id = version.run_id
    logger.info("deal-win version %s was trained on identical data and code: reused", version)
    return DealWinRun(
        model=loaded.model,
        metrics=mlflow.artifacts.load_dict(f"runs:/{run_id}/metrics.json"),
        slices=mlflow.artifacts.load_dict(f"runs:/{run_id}/slices.json")["slices"],
        held_out=None,
        run_id=run_id,
        model_version=str(version.version),
        alias=registry.aliases_of(name, str(version.version)),
        split=None,
        seconds=time.perf_counter() - started,
        snapshots=None,
        features=None,
        record=loaded.record,
        reused=True,
    )


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


def _stepper(progress, total: int):
    done = [0]

    def step(name: str) -> None:
        done[0] += 1
        logger.info("deal-win training: %s done", name)
        if progress is not None:
            progress("training deal-win", done[0], total)

    return step


def _log_run(config, split, model, features, evaluation, record, data_description) -> None:
    import mlflow

    params = {
        **_flatten(asdict(config)),
        **split.params(),
        "early_stopping_iteration": model.early_stopping_iteration_,
        "best_iteration": model.best_iteration_,
        "calibration_method": getattr(model.calibrator_, "method", "none"),
        "n_features": len(model.feature_names_in_),
        "feature_set": config.features.version,
        "label": config.label.description,
    }
    mlflow.log_params(params)
    mlflow.log_metrics(flat_metrics(evaluation))
    for method, brier in model.calibration_scores_.items():
        mlflow.log_metric(f"calibration_cv_brier_{method}", brier)
    commit = registry.git_commit()
    tags = {
        "model_family": "deal-win",
        "data": data_description or "unspecified",
        "recipe_digest": record.recipe_digest,
        "sentiment_model": record.sentiment_model or "none",
    }
    if commit:
        tags["git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    mlflow.set_tags(tags)
    digest_ = f"{int(pd.util.hash_pandas_object(features, index=False).sum()) & (2**48 - 1):012x}"
    schema_only = features.drop(columns=["deal_id", "as_of"]).head(0)
    # MLflow 3.17 cannot hash pandas 3 string columns; we give it our digest and object dtypes
    schema_only = schema_only.astype(
        {c: object for c in schema_only.columns if pd.api.types.is_string_dtype(schema_only[c])}
    )
    dataset = mlflow.data.from_pandas(schema_only, name="deal_snapshots", digest=digest_)
    mlflow.log_input(dataset, context="training")
    mlflow.set_tag("dataset_digest", digest_)
    mlflow.log_dict({"features": list(model.feature_names_in_)}, "features.json")


def _log_plots(model, X_test, y_test, probabilities, slices, seed) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    from spm_ml.models.plots import reliability_plot, roc_pr_plot, shap_summary_plot, slice_plot

    sample = X_test.sample(min(2000, len(X_test)), random_state=seed)
    figures = {
        "plots/reliability.png": reliability_plot(y_test, probabilities),
        "plots/roc_pr.png": roc_pr_plot(y_test, probabilities),
        "plots/shap_summary.png": shap_summary_plot(model.explain(sample), sample),
        "plots/slices.png": slice_plot(slices),
    }
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)
        plt.close(figure)


def _log_model(
    model: DealWinModel,
    X_example: pd.DataFrame,
    registered_name: str | None,
    record: TrainingRecord,
):
    from spm_ml.models.pyfunc import log_probability_model

    return log_probability_model(
        model,
        X_example,
        name="model",
        registered_model_name=registered_name,
        metadata=record.to_metadata(),
    )


def _flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, (list, tuple)) else value
    return flat


def write_metrics_json(document: dict, path: Path) -> None:
    """Write the ``--metrics-json`` document (atomically, so CI never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(document, f, indent=2)
        tmp = Path(f.name)
    tmp.replace(path)
