"""Training the deal-win model on an organisation's history, end to end.

snapshots (calendar grid) -> features as of each snapshot -> time split -> calibrated
LightGBM beside the prior and a logistic regression -> held-out metrics with bootstrap
intervals and plots -> MLflow run, registered version, alias.  The CLI, the MLproject entry
point and quickstart all call :func:`train_deal_win`.
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
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.snapshots import deal_snapshots
from spm_ml.models.deal_win import DealWinModel, categorical_columns, model_inputs
from spm_ml.models.evaluation import evaluate, flat_metrics, metrics_document
from spm_ml.models.references import PriorModel, tuned_logistic_reference
from spm_ml.models.slices import deal_slices, slice_metrics
from spm_ml.training.split import TimeSplit, time_split

logger = logging.getLogger(__name__)

MODEL_NAME = "deal-win"
EXPERIMENT = "deal-win"


@dataclass(frozen=True)
class DealWinTrainConfig:
    """Everything that decides a deal-win training run; logged to MLflow in full."""

    snapshot_every_days: int = 7
    test_fraction: float = 0.25
    valid_fraction: float = 0.2
    bootstrap_samples: int = 200
    seed: int = 0
    model_name: str = MODEL_NAME
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


def train_deal_win(
    tables: Tables,
    *,
    workdir: Path,
    config: DealWinTrainConfig | None = None,
    register: bool = True,
    data_description: str = "",
    progress=None,
) -> DealWinRun:
    """Train, evaluate, log and (optionally) register a deal-win model on ``tables``."""
    import mlflow

    config = config or DealWinTrainConfig()
    started = time.perf_counter()
    step = _stepper(progress, total=5)

    tables = prepare_tables(tables, config.features, workdir, progress)
    snapshots = deal_snapshots(tables, every_days=config.snapshot_every_days)
    features = deal_features(tables, snapshots, config.features)
    step("features")
    y = snapshots["won"].to_numpy()
    split = time_split(
        snapshots["as_of"],
        snapshots["closed_at"],
        test_fraction=config.test_fraction,
        valid_fraction=config.valid_fraction,
    )
    X = model_inputs(features)
    categorical = categorical_columns(X)
    model = DealWinModel(categorical_features=categorical, random_state=config.seed, **config.model)
    deals = snapshots["deal_id"].to_numpy()
    model.fit(
        X.iloc[split.fit],
        y[split.fit],
        eval_set=(X.iloc[split.valid], y[split.valid]),
        groups=deals[split.fit],
        eval_groups=deals[split.valid],
    )
    step("model")

    train_rows = np.concatenate([split.fit, split.valid])
    prior = PriorModel().fit(X.iloc[train_rows], y[train_rows])
    logistic, logistic_C = tuned_logistic_reference(
        X.iloc[split.fit],
        y[split.fit],
        X.iloc[split.valid],
        y[split.valid],
        categorical,
        seed=config.seed,
    )
    step("references")

    X_test, y_test = X.iloc[split.test], y[split.test]
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
        deal_slices(X_test, X.iloc[train_rows]),
        groups=deals[split.test],
    )
    step("evaluation")

    registry.use_local_store(workdir)
    if not os.environ.get("MLFLOW_RUN_ID"):  # inside `mlflow run`, log into its run
        registry.ensure_experiment(EXPERIMENT, workdir)
    with mlflow.start_run() as run:
        _log_run(run, config, split, model, features, evaluation, data_description)
        mlflow.log_param("logistic_regression_C", logistic_C)
        _log_plots(model, X_test, y_test, probabilities, slices, config.seed)
        info = _log_model(model, X_test, config.model_name if register else None)
        document = metrics_document(
            evaluation,
            n_train=len(train_rows),
            n_test=len(split.test),
            split="time",
            run_id=run.info.run_id,
        )
        mlflow.log_dict(document, "metrics.json")
        mlflow.log_dict({"slices": slices}, "slices.json")
    version = alias = None
    if register:
        version = str(info.registered_model_version)
        alias = registry.assign_new_version_alias(config.model_name, version)
    step("logged")
    return DealWinRun(
        model=model,
        metrics=document,
        slices=slices,
        held_out=snapshots.iloc[split.test][["deal_id", "as_of", "won"]]
        .reset_index(drop=True)
        .assign(**probabilities),
        run_id=run.info.run_id,
        model_version=version,
        alias=alias,
        split=split,
        seconds=time.perf_counter() - started,
    )


def prepare_tables(
    tables: Tables, features: DealFeatureConfig, workdir: Path, progress=None
) -> Tables:
    """Score email sentiment when the feature set uses it (cached per work folder; bodies
    are dropped)."""
    if not features.email_sentiment:
        return tables
    from spm_ml import settings
    from spm_ml.nlp.signals import with_email_scores

    cache = settings.email_scores_path(workdir)
    return with_email_scores(tables, cache=cache, progress=progress)


def _stepper(progress, total: int):
    done = [0]

    def step(name: str) -> None:
        done[0] += 1
        logger.info("deal-win training: %s done", name)
        if progress is not None:
            progress("training deal-win", done[0], total)

    return step


def _log_run(run, config, split, model, features, evaluation, data_description) -> None:
    import mlflow

    params = {
        **_flatten(asdict(config)),
        **split.params(),
        "early_stopping_iteration": model.early_stopping_iteration_,
        "best_iteration": model.best_iteration_,
        "calibration_method": getattr(model.calibrator_, "method", "none"),
        "n_features": len(model.feature_names_in_),
        "feature_set": config.features.version,
    }
    mlflow.log_params(params)
    mlflow.log_metrics(flat_metrics(evaluation))
    for method, brier in model.calibration_scores_.items():
        mlflow.log_metric(f"calibration_cv_brier_{method}", brier)
    commit = registry.git_commit()
    tags = {"model_family": "deal-win", "data": data_description or "unspecified"}
    if commit:
        tags["git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    mlflow.set_tags(tags)
    digest = f"{int(pd.util.hash_pandas_object(features, index=False).sum()) & (2**48 - 1):012x}"
    schema_only = features.drop(columns=["deal_id", "as_of"]).head(0)
    # MLflow 3.17 cannot hash pandas 3 string columns; we give it our digest and object dtypes
    schema_only = schema_only.astype(
        {c: object for c in schema_only.columns if pd.api.types.is_string_dtype(schema_only[c])}
    )
    dataset = mlflow.data.from_pandas(schema_only, name="deal_snapshots", digest=digest)
    mlflow.log_input(dataset, context="training")
    mlflow.set_tag("dataset_digest", digest)
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


def _log_model(model: DealWinModel, X_example: pd.DataFrame, registered_name: str | None):
    from spm_ml.models.pyfunc import log_probability_model

    return log_probability_model(
        model, X_example, name="model", registered_model_name=registered_name
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
