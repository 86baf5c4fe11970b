"""One training path for every model family: a family is data, the procedure is written once.

A :class:`FamilySpec` says what differs between deal win, quota risk and attrition: how the
tables are prepared, how labelled rows and their time split are built, which estimator
learns from them, how results are sliced and what the data must hold.  :func:`train_family`
is the rest, identical for all: fit on the time split -> references (prior, tuned logistic
regression) on the same rows -> held-out metrics with grouped bootstrap intervals, slices
and plots -> an MLflow run carrying the model's :class:`~spm_ml.models.record.TrainingRecord`
-> registered version and alias.  A family with its own copy of that procedure is a defect:
add a spec instead.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from spm_ml import registry
from spm_ml.data.tables import Tables
from spm_ml.errors import ModelNotFoundError
from spm_ml.models.evaluation import evaluate, flat_metrics, metrics_document
from spm_ml.models.gbm import CalibratedGBM
from spm_ml.models.metrics import reliability_bins
from spm_ml.models.record import TrainingRecord, digest, frame_digest
from spm_ml.models.references import PriorModel, tuned_logistic_reference
from spm_ml.models.slices import slice_metrics
from spm_ml.training.split import TimeSplit

logger = logging.getLogger(__name__)


class FamilyConfig(Protocol):
    """What the generic path reads from a family's training configuration (a dataclass)."""

    seed: int
    bootstrap_samples: int
    model_name: str
    model: dict
    features: Any
    """The feature configuration (a dataclass with a ``version``), stored with the model."""
    label: Any
    """The label definition (``description``, ``as_dict()``), stored with the model."""


@dataclass
class LabelledRows:
    """A family's training and test rows, built by its spec: everything the path fits on."""

    snapshots: pd.DataFrame
    """One row per (entity, as_of), with the label column; ``split`` positions index it."""
    split: TimeSplit
    features: pd.DataFrame
    """The snapshots' features, row for row (ids and times included)."""
    X: pd.DataFrame
    """The model's inputs from ``features``."""
    record_extra: dict = field(default_factory=dict)
    """Family facts the model must carry to be scored as trained (e.g. screened fields)."""
    document_extra: dict = field(default_factory=dict)
    """Family sections of the metrics document (censoring, data sufficiency...)."""
    extra: dict = field(default_factory=dict)
    """Family data the spec's later hooks read (quota risk's open deals); never logged."""
    artifacts: dict[str, dict] = field(default_factory=dict)
    """JSON documents logged with the run beside the model, ``{file name: content}``, that
    scoring reads back (quota risk's Monte Carlo rates)."""


@dataclass(frozen=True)
class FamilySpec:
    """A model family, described as data for :func:`train_family`."""

    name: str
    """Family name: MLflow experiment, ``model_family`` tag and the record's ``family``."""
    entity: str
    """Column of the snapshots naming the entity (``deal_id``, ``rep_id``): rows of one
    entity are one group for calibration folds and the bootstrap."""
    label: str
    """Column of the snapshots holding the 0/1 label."""
    dataset: str
    """Name of the training dataset in MLflow (``deal_snapshots``)."""
    estimator: type[CalibratedGBM]
    prepare: Callable[[Tables, FamilyConfig, Path, Any], tuple[Tables, str | None]]
    """``(tables, config, workdir, progress) -> (tables, sentiment fingerprint or None)``:
    derived inputs computed once before anything else (email tone)."""
    rows: Callable[[Tables, FamilyConfig], LabelledRows]
    categorical: Callable[[pd.DataFrame], tuple[str, ...]]
    """The input columns the estimator treats as categories."""
    slices: Callable[[Tables, LabelledRows], dict[str, np.ndarray]]
    """Held-out slices: ``{slice name: per-test-row group label}``."""
    evaluation_rows: Callable[[Tables, list[TrainingRecord], int], EvaluationRows]
    """``(tables, records, every_days)``: labelled rows on which models of this family
    trained with ``records`` are compared (promotion): after every cut-off, labels known."""
    score: Callable[[Any, Tables, pd.DataFrame], np.ndarray]
    """``(loaded model, tables, rows) -> probabilities``, the features built the way that
    model was trained (its record)."""
    prepare_for: Callable[[Tables, list[TrainingRecord], Path], Tables]
    """``(tables, records, workdir)``: :attr:`prepare` for models already trained (the
    derived inputs any of them reads, e.g. email tone)."""
    alternatives: (
        Callable[[Tables, LabelledRows, Any, dict[str, np.ndarray]], dict[str, np.ndarray]] | None
    ) = None
    """``(tables, rows, config, {name: test probabilities so far}) -> {name: probability per
    test row}``: other estimators of the same label judged on the same held-out rows (quota
    risk's Monte Carlo, a blend with the model).  Each gets its own block beside ``model`` in
    the metrics document, with the same bootstrap.  It may add to ``rows.record_extra`` (the
    record is written after it)."""
    alternative_references: tuple[str, ...] = ()
    """Names among :attr:`alternatives` that are references (reported under
    ``references``, not beside ``model``)."""
    report: Callable[[Tables, LabelledRows, dict[str, np.ndarray]], dict] | None = None
    """``(tables, rows, {name: probability per test row}) -> sections``: the family's own
    held-out figures (lead time, precision among top performers), merged into the metrics
    document."""


@dataclass(frozen=True)
class EvaluationRows:
    """Rows two models of a family are compared on, and the dates they span."""

    rows: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp


def rows_after_cutoffs(
    snapshots: pd.DataFrame,
    records: list[TrainingRecord],
    end: pd.Timestamp,
    *,
    rows_named: str,
    window: str,
) -> EvaluationRows:
    """The ``snapshots`` dated from the later of the models' training cut-offs to ``end``
    (the extraction minus the label's horizon): judging a model on rows it trained on
    flatters it.  ``rows_named`` and ``window`` word the error when there are none."""
    start = max(r.training_cutoff for r in records)
    rows = snapshots[(snapshots["as_of"] >= start) & (snapshots["as_of"] <= end)]
    if rows.empty:
        raise ModelNotFoundError(
            f"no evaluation data: promotion needs {rows_named} after both models' training "
            f"cut-off ({start.date()}) whose {window} has passed by the data's extraction "
            f"({end.date()} at the latest); pass newer data with --data"
        )
    return EvaluationRows(rows.reset_index(drop=True), start, end)


@dataclass
class TrainingRun:
    """What a training run produced, for the caller to print or chain."""

    model: CalibratedGBM
    metrics: dict
    slices: list[dict]
    """Held-out metrics per slice."""
    held_out: pd.DataFrame | None
    """The test snapshots (entity, ``as_of``, label) with each model's probability."""
    run_id: str
    model_version: str | None
    alias: str | None
    split: TimeSplit | None
    seconds: float
    snapshots: pd.DataFrame | None
    """The snapshots used (train and test rows); ``split`` positions index into them."""
    features: pd.DataFrame | None
    """Their features, row for row."""
    record: TrainingRecord
    reused: bool = False
    """True when an identical registered version was returned instead of training; then
    ``held_out``, ``split``, ``snapshots`` and ``features`` are ``None``."""


def train_family(
    spec: FamilySpec,
    tables: Tables,
    *,
    workdir: Path,
    config: FamilyConfig,
    register: bool = True,
    data_description: str = "",
    progress=None,
    reuse_identical: bool = False,
) -> TrainingRun:
    """Train, evaluate, log and (optionally) register a model of family ``spec``.

    With ``reuse_identical``, a registered version trained on the same data, configuration,
    sentiment model and code is returned (``run.reused``) instead of training a duplicate.
    """
    import mlflow

    started = time.perf_counter()
    step = _stepper(spec.name, progress, total=5)

    tables, sentiment_model = spec.prepare(tables, config, workdir, progress)
    data_digest = tables_digest(tables)
    recipe = recipe_digest(data_digest, config, sentiment_model)
    if reuse_identical and register:
        reused = _reuse_identical_version(spec, config.model_name, recipe, workdir, started)
        if reused is not None:
            return reused
    rows = spec.rows(tables, config)
    split, X = rows.split, rows.X
    step("features")
    y = rows.snapshots[spec.label].to_numpy().astype(int)
    groups = rows.snapshots[spec.entity].to_numpy()
    model = fit_on_split(spec, X, y, groups, split, config)
    step("model")

    prior = PriorModel().fit(X.iloc[split.train], y[split.train])
    logistic, logistic_C = logistic_on_split(spec, X, y, split, config)
    step("references")

    X_test, y_test, test_groups = X.iloc[split.test], y[split.test], groups[split.test]
    probabilities = {
        "model": model.predict_proba(X_test)[:, 1],
        "prior": prior.predict_proba(X_test)[:, 1],
        "logistic_regression": logistic.predict_proba(X_test)[:, 1],
    }
    evaluation = evaluate(
        y_test, probabilities, groups=test_groups, n_boot=config.bootstrap_samples, seed=config.seed
    )
    alternatives = (
        spec.alternatives(tables, rows, config, dict(probabilities)) if spec.alternatives else {}
    )
    alternative_evaluation = evaluate(
        y_test, alternatives, groups=test_groups, n_boot=config.bootstrap_samples, seed=config.seed
    )
    probabilities.update(alternatives)
    slices = slice_metrics(
        y_test,
        {k: v for k, v in probabilities.items() if k != "prior"},
        spec.slices(tables, rows),
        groups=test_groups,
    )
    step("evaluation")

    record = TrainingRecord(
        family=spec.name,
        feature_config=asdict(config.features),
        label=config.label.as_dict(),
        cutoffs=split.cutoffs(),
        sentiment_model=sentiment_model,
        data_digest=data_digest,
        recipe_digest=recipe,
        extra=rows.record_extra,
    )
    document = metrics_document(
        evaluation, n_train=len(split.train), n_test=len(split.test), split="time", run_id=None
    )
    for name, metrics in alternative_evaluation.items():
        block = {**metrics, "n_train": len(split.train), "n_test": len(split.test)}
        if name in spec.alternative_references:
            document["references"][name] = block
        else:
            document[name] = block
    document["label"] = config.label.as_dict()
    # the held-out reliability of every estimator, as data: the manager's page plots it
    document["reliability"] = {
        name: reliability_bins(y_test, p) for name, p in probabilities.items() if name != "prior"
    }
    document.update(rows.document_extra)
    if spec.report:
        document.update(spec.report(tables, rows, probabilities))

    registry.use_local_store(workdir)
    if not os.environ.get("MLFLOW_RUN_ID"):  # inside `mlflow run`, log into its run
        registry.ensure_experiment(spec.name, workdir)
    with mlflow.start_run() as run:
        document["mlflow_run_id"] = run.info.run_id
        _log_run(
            spec,
            config,
            split,
            model,
            rows.features,
            {**evaluation, **alternative_evaluation},
            record,
            data_description,
        )
        mlflow.log_param("logistic_regression_C", logistic_C)
        _log_plots(model, X_test, y_test, probabilities, slices, config.seed)
        info = _log_model(model, X_test, config.model_name if register else None, record)
        mlflow.log_dict(document, "metrics.json")
        mlflow.log_dict({"slices": slices}, "slices.json")
        for path, content in rows.artifacts.items():
            mlflow.log_dict(content, path)
    version = alias = None
    if register:
        version = str(info.registered_model_version)
        registry.tag_version(config.model_name, version, {"recipe_digest": recipe})
        alias = registry.assign_new_version_alias(config.model_name, version)
    step("logged")
    used = rows.snapshots.reset_index(drop=True)
    return TrainingRun(
        model=model,
        metrics=document,
        slices=slices,
        held_out=used.iloc[split.test][[spec.entity, "as_of", spec.label]]
        .astype({spec.label: int})
        .reset_index(drop=True)
        .assign(**probabilities),
        run_id=run.info.run_id,
        model_version=version,
        alias=alias,
        split=split,
        seconds=time.perf_counter() - started,
        snapshots=used,
        features=rows.features,
        record=record,
    )


def fit_on_split(
    spec: FamilySpec,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    split: TimeSplit,
    config: FamilyConfig,
) -> CalibratedGBM:
    """The family's estimator fitted as training fits it: early stopping on the valid fold,
    refit and calibration grouped by entity.  Benchmarks fit their ceilings through it."""
    model = spec.estimator(
        categorical_features=spec.categorical(X), random_state=config.seed, **config.model
    )
    return model.fit(
        X.iloc[split.fit],
        y[split.fit],
        eval_set=(X.iloc[split.valid], y[split.valid]),
        groups=groups[split.fit],
        eval_groups=groups[split.valid],
    )


def logistic_on_split(
    spec: FamilySpec, X: pd.DataFrame, y: np.ndarray, split: TimeSplit, config: FamilyConfig
):
    """The tuned logistic reference as training fits it: C chosen on the valid fold, refit
    on fit + valid.  Returns the pipeline and its C (benchmarks fit their ceilings with it)."""
    return tuned_logistic_reference(
        X.iloc[split.fit],
        y[split.fit],
        X.iloc[split.valid],
        y[split.valid],
        spec.categorical(X),
        seed=config.seed,
    )


def tables_digest(tables: Tables, per_table: dict[str, str] | None = None) -> str:
    """Digest of every table's content and the extraction time (text columns included);
    ``per_table``: :func:`table_digests` of ``tables``, when the caller has them."""
    return digest(per_table or table_digests(tables), str(tables.extracted_at))


def table_digests(tables: Tables) -> dict[str, str]:
    """Each table's :func:`~spm_ml.models.record.frame_digest`, by name: hashing tens of
    millions of rows of text is the cost, so a caller that reports them also keeps them."""
    return {name: frame_digest(frame) for name, frame in tables.items()}


def recipe_digest(data_digest: str, config: FamilyConfig, sentiment_model: str | None) -> str:
    """Same data, configuration, sentiment model and code: same digest (same model)."""
    from spm_ml import __version__

    return digest(
        data_digest, asdict(config), sentiment_model, registry.git_commit() or __version__
    )


def write_metrics_json(document: dict, path: Path) -> None:
    """Write the ``--metrics-json`` document (atomically, so CI never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(document, f, indent=2)
        tmp = Path(f.name)
    tmp.replace(path)


def _reuse_identical_version(
    spec: FamilySpec, name: str, recipe: str, workdir: Path, started: float
) -> TrainingRun | None:
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
    logger.info("%s version %s was trained on identical data and code: reused", spec.name, version)
    return TrainingRun(
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


def _stepper(family: str, progress, total: int):
    done = [0]

    def step(name: str) -> None:
        done[0] += 1
        logger.info("%s training: %s done", family, name)
        if progress is not None:
            progress(f"training {family}", done[0], total)

    return step


def _log_run(spec, config, split, model, features, evaluation, record, data_description) -> None:
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
        "model_family": spec.name,
        "data": data_description or "unspecified",
        "recipe_digest": record.recipe_digest,
        "sentiment_model": record.sentiment_model or "none",
    }
    if commit:
        tags["git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    mlflow.set_tags(tags)
    digest_ = f"{int(pd.util.hash_pandas_object(features, index=False).sum()) & (2**48 - 1):012x}"
    schema_only = features.drop(columns=[spec.entity, "as_of"]).head(0)
    # MLflow 3.17 cannot hash pandas 3 string columns; we give it our digest and object dtypes
    schema_only = schema_only.astype(
        {c: object for c in schema_only.columns if pd.api.types.is_string_dtype(schema_only[c])}
    )
    dataset = mlflow.data.from_pandas(schema_only, name=spec.dataset, digest=digest_)
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
    model: CalibratedGBM,
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
