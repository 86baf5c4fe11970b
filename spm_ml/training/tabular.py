"""Training a probability model on any flat export (closed deals, or employees), end to end.

file -> read as text -> outcome column to 0/1 -> column screening (kinds, ids, constants,
outcome leaks, protected attributes for models about people; :mod:`spm_ml.features.tabular`)
-> evaluation -> final fit on every row -> MLflow pyfunc in ``--model-out`` + an MLflow run
in experiment ``<family>-tabular`` (``deal-win-tabular``, ``attrition-tabular``).

**Time budget.**  ``time_budget`` (``--time-budget``, default 120 s) bounds the whole run
from reading the file to the logged run, evaluation included.  :data:`FINISH_SECONDS` are
kept for saving and logging; the rest is shared between the evaluation fits and the final
fit, each a :class:`~spm_ml.models.tabular.TabularClassifier` whose LightGBM search stops
when its next trial would not leave time for the refits (estimated from measured fit times).

**Protocol, scaled to the data** (:func:`evaluation_protocol`).  Evaluation repeats the whole
:class:`~spm_ml.models.tabular.TabularClassifier` procedure (inner splits, search, model
choice, calibration) on training rows only:

- ``time`` (``--time-col`` given, any size): rows before the 75th percentile of the time
  column train, the later 25% test; inside, the latest 20% of training rows are the
  validation slice.  Then the chosen model is refitted on all rows (``refit``: no second
  search).
- ``cv`` (no time column, fewer than :data:`CV_MAX_ROWS` = 3,000 rows): repeated stratified
  k-fold (up to 3 x 5 by default).  The budget is planned for one repeat and the final fit:
  each fold of the first repeat gets an equal share of the time left (the final fit 1.25
  shares); a further repeat runs, with the same per-fold limits, only when the first
  repeat's measured time says it and the final fit still fit (small tables, whose searches
  end at ``max_trials``, get all three; the run says how many ran).  Each repeat scores
  every row once out of fold; metrics are computed per repeat and averaged, and the 95%
  intervals come from one set of row resamples applied to every repeat and every model.
  The final model is a full fit on all rows with the time left.
- ``holdout`` (no time column, :data:`CV_MAX_ROWS` rows or more): one stratified 25% test
  split, bootstrap intervals resampling whole groups of the first ``--id-col`` when one is
  given (rows of one account or person are not independent), else rows; then ``refit``.

In the metrics document ``n_train`` is the (mean) training size and ``n_test`` the rows
scored (per repeat); ``cv`` holds the folds, the repeats and the rows, which the CLI prints
as "5-fold CV over 448 rows".  The leak screen looks at every row's outcome once, before
any split: it only removes columns, never tunes anything.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split

from spm_ml import registry
from spm_ml.errors import SchemaError, SourceError, SpmMlError, TrainingError
from spm_ml.features.tabular import (
    ColumnDecision,
    infer_kind,
    parse_dates,
    parse_numbers,
    preprocessor_for,
    screen_columns,
)
from spm_ml.models.evaluation import evaluate, flat_metrics, metrics_document
from spm_ml.models.learner_search import Deadline
from spm_ml.models.metrics import METRIC_NAMES, expected_calibration_error, interval
from spm_ml.models.tabular import LOGISTIC, PRIOR, TabularClassifier, save_tabular_model

logger = logging.getLogger(__name__)

MIN_ROWS = 50
MIN_PER_CLASS = 10
FEW_ROWS = 400
"""Below this many rows training works but the intervals are wide (Einstein refuses)."""
NA_VALUES = ["", "NULL", "null", "NaN", "nan", "N/A", "n/a", "#N/A"]
"""Cells read as missing.  Not ``NA``: it is also North America."""
LITERAL_NONE = "None"
"""Missing too, unless it is a column's only missing marker: then it is a value ("None" as the
competitor, the discount type...), read as a category and said so in the column table."""
NONE_AS_VALUE = "none_as_value"
"""``frame.attrs`` key: the columns whose literal "None" was kept as a value."""
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
DEFAULT_TIME_BUDGET = 120.0
"""Seconds a ``--table`` run may take by default, on 2 cores, evaluation included."""
CV_MAX_ROWS = 3_000
"""Below this many rows: repeated cross-validation; from it on, one held-out split."""
FINISH_SECONDS = (8.0, 0.12, 15.0)
"""Kept from the budget for what follows the fits (saving the model, the MLflow run, plots):
12% of the budget, at least 8 s and at most 15 s (measured: 7 s on 1,470 rows at load
average 3, 14 s at load average 11, on 2 cores)."""
FINAL_FIT_WEIGHT = 1.25
"""The final fit's share of the time left, relative to one fold's (it sees 5/4 the rows)."""


@dataclass(frozen=True)
class TabularTrainConfig:
    """Everything that decides a tabular training run; logged to MLflow in full."""

    target: str
    positive: str
    negatives: tuple[str, ...] = ()
    sep: str = ","
    time_col: str | None = None
    id_cols: tuple[str, ...] = ()
    keep_cols: tuple[str, ...] = ()
    drop_cols: tuple[str, ...] = ()
    learner: str = "auto"
    cv_folds: int = 5
    cv_repeats: int = 3
    test_fraction: float = 0.25
    valid_fraction: float = 0.2
    inner_folds: int = 3
    bootstrap_samples: int = 200
    seed: int = 0
    time_budget: float | None = DEFAULT_TIME_BUDGET
    """Seconds for the whole run (``None``: no limit); see the module docstring."""
    max_trials: int = 40
    """At most this many LightGBM search trials per fit."""
    family: str = "deal-win"
    """What the model predicts: its MLflow experiment is ``<family>-tabular``."""
    exclude_protected: bool = False
    """A model about people (attrition): protected attributes are never features."""

    @property
    def experiment(self) -> str:
        return f"{self.family}-tabular"


@dataclass
class TabularData:
    """A screened export, ready to train on (what the CLI prints before training)."""

    source: str
    frame: pd.DataFrame
    y: np.ndarray
    labels: tuple[str, str]
    decisions: list[ColumnDecision]
    times: pd.Series | None
    n_read: int
    left_out: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class TabularRun:
    """What a tabular training run produced."""

    model: TabularClassifier
    metrics: dict
    run_id: str
    model_dir: Path
    fold_choices: dict[str, int]
    split_params: dict
    seconds: float
    model_version: str | None = None
    """Registry version, when the run was asked to register the model (``register``)."""
    alias: str | None = None
    predictions: dict = field(default_factory=dict)
    """The evaluation's held-out predictions: ``rows`` (positions in the frame), ``y`` and
    ``p`` (``{name: probabilities}``; under CV, the first repeat's out-of-fold ones)."""


# -- reading --------------------------------------------------------------------------------------
def read_table(path: str | Path, sep: str = ",") -> pd.DataFrame:
    """Every cell of a CSV (or Parquet) export as text; a BOM is fine, clear errors otherwise."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"no such file: {path}")
    if path.is_dir():
        raise SourceError(f"{path} is a folder; --table wants one CSV file (or Parquet)")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types
            raise SourceError(f"cannot read {path} as Parquet: {err}") from err
    head = path.open("rb").read(4096)
    if head.startswith(b"PK\x03\x04") and path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        raise SourceError(f"{path} is an Excel workbook; save the sheet as CSV and pass that")
    compressed = path.suffix.lower() in (".gz", ".bz2", ".zip", ".xz", ".zst")
    if b"\x00" in head and not compressed:
        raise SourceError(f"{path} is not a text file (binary content); --table wants a CSV")
    try:
        frame = _read_csv(path, sep, "utf-8-sig")
    except UnicodeDecodeError:
        logger.warning("%s is not UTF-8; reading it as Windows-1252", path)
        frame = _read_csv(path, sep, "cp1252")
    frame = _literal_none(frame)
    if frame.shape[1] == 1:
        header = head.decode("utf-8", errors="replace").splitlines()[0] if head else ""
        others = [s for s in SEPARATORS if s != sep and s in header]
        if others:
            guess = others[0]
            raise SchemaError(
                f"read a single column from {path} with separator {sep!r}, but the header "
                f"contains {SEPARATORS[guess]}s: try --sep {guess!r}"
                + (" (e.g. --sep $'\\t')" if guess == "\t" else "")
            )
    return frame


def _literal_none(frame: pd.DataFrame) -> pd.DataFrame:
    """ "None" cells as missing, except in columns with no other missing marker, where they
    are a value; those columns are listed in ``frame.attrs[NONE_AS_VALUE]``."""
    kept = []
    for column in frame.columns:
        is_none = (frame[column] == LITERAL_NONE).fillna(False).to_numpy(dtype=bool)
        if not is_none.any():
            continue
        if frame[column].isna().any():
            frame[column] = frame[column].mask(is_none)
        else:
            kept.append(column)
    frame.attrs[NONE_AS_VALUE] = tuple(kept)
    return frame


def _read_csv(path: Path, sep: str, encoding: str) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=NA_VALUES,
            encoding=encoding,
        )
    except pd.errors.EmptyDataError as err:
        raise SourceError(f"{path} is empty") from err
    except pd.errors.ParserError as err:
        raise SourceError(
            f"cannot parse {path} as CSV with separator {sep!r}: {err}; check --sep and quoting"
        ) from err


# -- outcome and screening ------------------------------------------------------------------------
def binary_outcome(
    frame: pd.DataFrame,
    target: str,
    positive: str,
    negatives: tuple[str, ...] = (),
    *,
    source: str = "the table",
) -> tuple[pd.DataFrame, np.ndarray, tuple[str, str], dict[str, int]]:
    """Rows to train on, their 0/1 outcome, class names and the rows left out (by value).

    Without ``negatives`` the target must hold exactly ``positive`` and one other value;
    with them, rows holding any other value are left out (and counted, never silently).
    """
    if target not in frame.columns:
        close = difflib.get_close_matches(target, [str(c) for c in frame.columns], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SchemaError(
            f"no column {target!r} in {source}{hint} available columns: "
            f"{', '.join(map(str, frame.columns))}"
        )
    values = frame[target].astype("object").where(frame[target].notna())
    values = values.map(lambda v: None if v is None or pd.isna(v) else str(v).strip() or None)
    missing = np.flatnonzero(values.isna().to_numpy())
    if len(missing):
        lines = ", ".join(str(i + 2) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise SchemaError(
            f"{len(missing)} of {len(frame)} rows have no value in target {target!r} "
            f"(file lines {lines}, counting the header as line 1); a closed deal has an "
            "outcome: remove open deals or fill the outcome, then retry"
        )
    counts = values.value_counts()
    seen = ", ".join(f"{v!r} ({n})" for v, n in counts.head(20).items())
    for wanted, option in [(positive, "--positive"), *((n, "--negative") for n in negatives)]:
        if wanted not in counts.index:
            same = [v for v in counts.index if str(v).lower() == str(wanted).lower()]
            hint = f" (did you mean {same[0]!r}? values are case-sensitive)" if same else ""
            raise SchemaError(
                f"{option} {wanted!r} is not a value of {target!r}{hint}; values seen: {seen}"
            )
    left_out: dict[str, int] = {}
    if negatives:
        keep = values.isin([positive, *negatives]).to_numpy()
        left_out = {str(v): int(n) for v, n in counts.items() if v not in (positive, *negatives)}
        frame, values = frame.loc[keep], values[keep]
        counts = values.value_counts()
    elif len(counts) > 2:
        raise SchemaError(
            f"target {target!r} has {len(counts)} values ({seen}); with --positive {positive!r} "
            "every other value would count as a loss, open deals included. Filter the export "
            "to closed deals, or name the losing values with --negative (rows with other "
            "values are then left out and counted)"
        )
    if len(counts) < 2:
        raise TrainingError(
            f"target {target!r} has one outcome only ({seen}); need won and lost deals"
        )
    y = (values == positive).to_numpy().astype(int)
    negative_label = "/".join(negatives) if negatives else str(counts.index.drop(positive)[0])
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if len(y) < MIN_ROWS or min(n_pos, n_neg) < MIN_PER_CLASS:
        raise TrainingError(
            f"too little data: {len(y)} rows ({n_pos} {positive!r}, {n_neg} {negative_label!r}); "
            f"need at least {MIN_ROWS} rows and {MIN_PER_CLASS} of each outcome to train and "
            f"measure a model ({FEW_ROWS}+ rows for tight figures)"
        )
    return frame.reset_index(drop=True), y, (negative_label, str(positive)), left_out


def load_tabular(source: str | Path | pd.DataFrame, config: TabularTrainConfig) -> TabularData:
    """Read, label and screen an export; raises :class:`SpmMlError` with the fix on bad input."""
    if isinstance(source, pd.DataFrame):
        frame, name = source.reset_index(drop=True), "the table"
    else:
        frame, name = read_table(source, config.sep), str(source)
    none_as_value = frame.attrs.get(NONE_AS_VALUE, ())
    n_read = len(frame)
    frame, y, labels, left_out = binary_outcome(
        frame, config.target, config.positive, config.negatives, source=name
    )
    times = _times(frame, config.time_col, name) if config.time_col else None
    decisions = screen_columns(
        frame,
        y,
        target=config.target,
        labels=labels,
        id_cols=config.id_cols,
        keep_cols=config.keep_cols,
        drop_cols=config.drop_cols,
        seed=config.seed,
        exclude_protected=config.exclude_protected,
    )
    for decision in decisions:
        if decision.column in none_as_value and decision.kind in ("category", "text"):
            decision.reason += '; "None" read as a value (the column has no other missing marker)'
    if not any(d.used for d in decisions):
        summary = "; ".join(f"{d.column}: {d.reason}" for d in decisions if d.kind != "target")
        raise TrainingError(
            f"nothing to learn from: no column of {name} is usable as a feature ({summary})"
        )
    notes = []
    if len(y) < FEW_ROWS:
        notes.append(
            f"{len(y)} rows: fewer than {FEW_ROWS}, so expect wide intervals; "
            "small-data settings are used (shallow trees, early stopping, strong regularisation)"
        )
    return TabularData(name, frame, y, labels, decisions, times, n_read, left_out, notes)


def _times(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    if column not in frame.columns:
        raise SchemaError(
            f"--time-col {column!r} is not a column of {source}; available: "
            f"{', '.join(map(str, frame.columns))}"
        )
    kind, _, fmt = infer_kind(frame[column])
    if kind == "datetime":
        times = parse_dates(frame[column], fmt)
    elif kind == "numeric":
        times = parse_numbers(frame[column])
    else:
        raise SchemaError(
            f"--time-col {column!r} holds neither dates nor numbers (read as {kind}); "
            "pass a date column such as the created or engaged date"
        )
    missing = np.flatnonzero(times.isna().to_numpy())
    if len(missing):
        lines = ", ".join(str(i + 2) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise SchemaError(
            f"{len(missing)} rows have no usable value in --time-col {column!r} (lines {lines} "
            "of the rows kept); fill or remove them, or drop --time-col for cross-validation"
        )
    return times


# -- training -------------------------------------------------------------------------------------
def evaluation_protocol(n_rows: int, has_times: bool) -> str:
    """``"time"`` with a time column; else ``"cv"`` below :data:`CV_MAX_ROWS` rows, else
    ``"holdout"`` (the rule is stated in the module docstring and printed by the CLI)."""
    if has_times:
        return "time"
    return "cv" if n_rows < CV_MAX_ROWS else "holdout"


def protocol_text(n_rows: int, config: TabularTrainConfig) -> str:
    """The protocol a run of ``n_rows`` rows will use, and why, for people."""
    protocol = evaluation_protocol(n_rows, config.time_col is not None)
    if protocol == "time":
        return f"time split on {config.time_col!r} (later {config.test_fraction:.0%} of rows test)"
    if protocol == "cv":
        return (
            f"{config.cv_repeats}x{config.cv_folds} repeated stratified cross-validation "
            f"(fewer than {CV_MAX_ROWS:,} rows)"
        )
    groups = f", intervals resampling {config.id_cols[0]!r} groups" if config.id_cols else ""
    return (
        f"one stratified {config.test_fraction:.0%} test split ({CV_MAX_ROWS:,} rows or "
        f"more{groups})"
    )


def train_tabular(
    data: TabularData,
    config: TabularTrainConfig,
    *,
    model_out: Path,
    workdir: Path,
    progress=None,
    register: str | None = None,
    tracking_uri: str | None = None,
    deadline: Deadline | None = None,
) -> TabularRun:
    """Evaluate, fit on all rows, save the pyfunc to ``model_out`` and log an MLflow run.

    With ``register``, the logged model is also a version of registered model ``register``,
    with the alias the registry's rule gives a new version (``champion`` for the first,
    else ``challenger``): served, promoted and loaded like any other family's.
    ``tracking_uri`` logs to that MLflow store instead of ``workdir``'s.  ``deadline`` is
    the run's time budget when it started earlier (the CLI starts it before reading the
    file); by default ``config.time_budget`` from now.
    """
    import mlflow

    started = time.perf_counter()
    if deadline is None:
        deadline = Deadline(config.time_budget)
    model_out = Path(model_out)
    _check_model_out(model_out)
    template = TabularClassifier(
        preprocessor=preprocessor_for(data.decisions),
        learner=config.learner,
        inner_folds=config.inner_folds,
        valid_fraction=config.valid_fraction,
        max_trials=config.max_trials,
        random_state=config.seed,
    )
    protocol = evaluation_protocol(len(data.y), data.times is not None)
    if protocol == "cv":
        evaluation, sizes, split_params, choices, plotted, model = _cv_evaluation(
            template, data, config, progress, deadline
        )
    else:
        evaluation, sizes, split_params, choices, plotted, model = _holdout_evaluation(
            template, data, config, progress, deadline
        )
    _report(progress, "final model", 1, 1)
    split_params["search_trials_final"] = model.search_.get("trials", 0)
    split_params["time_budget"] = config.time_budget
    split_params["seconds_before_logging"] = round(deadline.elapsed(), 1)

    metadata = {
        "target": config.target,
        "positive": config.positive,
        "chosen_model": model.chosen_,
        "columns": [d.as_dict() for d in data.decisions],
    }
    _save_model(model, model_out, data.frame, metadata)

    registry.use_local_store(workdir, tracking_uri)
    if not os.environ.get("MLFLOW_RUN_ID"):  # inside `mlflow run`, log into its run
        registry.ensure_experiment(config.experiment, workdir)
    with mlflow.start_run() as run:
        _log_run(data, config, model, evaluation, split_params, choices)
        _log_plots(model, data, plotted, config.seed)
        document = metrics_document(
            evaluation,
            n_train=sizes[0],
            n_test=sizes[1],
            split=split_params["split"],
            run_id=run.info.run_id,
        )
        if split_params["split"] == "cv":  # how many rows, folds and repeats, for people
            document["cv"] = {
                "folds": split_params["cv_folds"],
                "repeats": split_params["cv_repeats"],
                "rows": split_params["n_scored_per_repeat"],
            }
        mlflow.log_dict(document, "metrics.json")
        mlflow.log_artifacts(str(model_out), "model")
    version = alias = None
    if register:
        version, alias = registry.register_logged_model(run.info.run_id, "model", register)
    rows, y_plot, p_plot = plotted
    return TabularRun(
        model=model,
        metrics=document,
        run_id=run.info.run_id,
        model_dir=model_out,
        fold_choices=choices,
        split_params=split_params,
        seconds=time.perf_counter() - started,
        model_version=version,
        alias=alias,
        predictions={"rows": rows, "y": y_plot, "p": p_plot},
    )


def _holdout_evaluation(
    template, data: TabularData, config: TabularTrainConfig, progress, deadline
):
    """One held-out split (time-ordered with ``data.times``, else stratified); the search runs
    on the training rows, then the chosen model is refitted on all rows."""
    y = data.y
    n = len(y)
    ((train, test),) = evaluation_splits(data, config)
    names = (
        ("training (earlier)", "test (later)") if data.times is not None else ("training", "test")
    )
    for name, rows in zip(names, (train, test), strict=True):
        if len(rows) == 0 or len(np.unique(y[rows])) < 2:
            raise TrainingError(
                f"the {'time-based' if data.times is not None else 'held-out'} split leaves the "
                f"{name} rows with one outcome or none; need both outcomes on each side"
                + (" (or drop --time-col)" if data.times is not None else "")
            )
    # leave time for the refit on all rows (n / len(train) of the training fit's refit)
    fit_times = None if data.times is None else data.times.iloc[train]
    model = (
        clone(template)
        .set_params(time_limit=_time_left(deadline), refit_reserve=1 + n / len(train))
        .fit(data.frame.iloc[train], y[train], times=fit_times)
    )
    _report(progress, "evaluation", 1, 1)
    X_test = data.frame.iloc[test]
    probabilities = {
        "model": model.predict_proba(X_test)[:, 1],
        "prior": np.full(len(test), y[train].mean()),
        "logistic_regression": model.reference_proba(X_test)[:, 1],
    }
    groups = _groups(data, config)
    evaluation = evaluate(
        y[test],
        probabilities,
        groups=None if groups is None else groups[test],
        n_boot=config.bootstrap_samples,
        seed=config.seed,
    )
    split_params = {
        "split": "time" if data.times is not None else "holdout",
        "n_train": len(train),
        "n_test": len(test),
        "evaluation_model_choice": model.chosen_,
        "search_trials_evaluation": model.search_.get("trials", 0),
    }
    if data.times is not None:
        start = data.times.iloc[test].min()
        split_params["split_time_col"] = config.time_col
        split_params["split_test_start"] = str(start.date() if hasattr(start, "date") else start)
    elif groups is not None:
        split_params["bootstrap_groups"] = config.id_cols[0]
    final = model.refit(data.frame, y)
    return (
        evaluation,
        (len(train), len(test)),
        split_params,
        {model.chosen_: 1},
        (test, y[test], probabilities),
        final,
    )


def evaluation_splits(
    data: TabularData, config: TabularTrainConfig
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (training rows, test rows) of the evaluation :func:`evaluation_protocol` picks:
    one pair for a held-out split, ``cv_repeats x folds`` pairs (repeat by repeat) for CV.
    Benchmarks use it to score other learners on exactly the same rows."""
    y = data.y
    protocol = evaluation_protocol(len(y), data.times is not None)
    if protocol == "cv":
        minority = int(min(y.sum(), len(y) - y.sum()))
        folds = RepeatedStratifiedKFold(
            n_splits=max(2, min(config.cv_folds, minority)),
            n_repeats=config.cv_repeats,
            random_state=config.seed,
        )
        return list(folds.split(np.zeros(len(y)), y))
    if protocol == "time":
        times = data.times
        numeric = times.astype("int64") if pd.api.types.is_datetime64_any_dtype(times) else times
        values = numeric.to_numpy(dtype=float)
        cut = float(np.quantile(values, 1 - config.test_fraction))
        return [(np.flatnonzero(values < cut), np.flatnonzero(values >= cut))]
    train, test = train_test_split(
        np.arange(len(y)), test_size=config.test_fraction, stratify=y, random_state=config.seed
    )
    return [(np.sort(train), np.sort(test))]


def _groups(data: TabularData, config: TabularTrainConfig) -> np.ndarray | None:
    """The bootstrap's resampling units: the first ``--id-col``'s values, else ``None``."""
    if config.id_cols and config.id_cols[0] in data.frame.columns:
        return data.frame[config.id_cols[0]].astype(str).to_numpy()
    return None


def _time_left(deadline: Deadline, share: float = 1.0) -> float | None:
    """``share`` of the seconds left once :data:`FINISH_SECONDS` are kept (``None``: no
    budget); never below one second, so a spent budget still yields the cheapest model."""
    if deadline.seconds is None:
        return None
    return max(1.0, (deadline.remaining() - finish_seconds(deadline)) * share)


def finish_seconds(deadline: Deadline) -> float:
    """The seconds :data:`FINISH_SECONDS` keeps from ``deadline``'s budget."""
    if deadline.seconds is None:
        return 0.0
    low, share, high = FINISH_SECONDS
    return float(np.clip(share * deadline.seconds, low, high))


def _cv_evaluation(template, data: TabularData, config: TabularTrainConfig, progress, deadline):
    y = data.y
    splits = evaluation_splits(data, config)
    n_folds = len(splits)
    per_repeat = n_folds // config.cv_repeats
    oof = {name: np.full((config.cv_repeats, len(y)), np.nan) for name in _NAMES}
    choices: dict[str, int] = {}
    train_sizes, trials = [], []
    limits: list[float | None] = []
    repeats_done, repeat_started, first_repeat = 0, time.perf_counter(), 0.0
    for i, (train, test) in enumerate(splits):
        repeat = i // per_repeat
        if i % per_repeat == 0 and repeat > 0:
            # another repeat (same per-fold limits as the first) only if it and the final fit
            # still fit in the budget, judged by the first repeat's measured time
            repeats_done = repeat
            first_repeat = first_repeat or time.perf_counter() - repeat_started
            left = deadline.remaining() - finish_seconds(deadline)
            if left < first_repeat * (1 + FINAL_FIT_WEIGHT / per_repeat):
                break
        if repeat == 0:  # the budget is planned for one repeat and the final fit
            limit = _time_left(deadline, 1 / (per_repeat - i + FINAL_FIT_WEIGHT))
            limits.append(limit)
        else:
            limit = limits[i % per_repeat]
        model = clone(template).set_params(time_limit=limit).fit(data.frame.iloc[train], y[train])
        X_test = data.frame.iloc[test]
        oof["model"][repeat, test] = model.predict_proba(X_test)[:, 1]
        oof["prior"][repeat, test] = y[train].mean()
        oof["logistic_regression"][repeat, test] = model.reference_proba(X_test)[:, 1]
        choices[model.chosen_] = choices.get(model.chosen_, 0) + 1
        train_sizes.append(len(train))
        trials.append(model.search_.get("trials", 0))
        _report(progress, "cross-validation", i + 1, n_folds)
    else:
        repeats_done = config.cv_repeats
    oof = {name: values[:repeats_done] for name, values in oof.items()}
    evaluation = evaluate_repeated(y, oof, n_boot=config.bootstrap_samples, seed=config.seed)
    split_params = {
        "split": "cv",
        "cv_folds": per_repeat,
        "cv_repeats": repeats_done,
        "cv_repeats_asked": config.cv_repeats,
        "n_train_mean": int(round(np.mean(train_sizes))),
        "n_scored_per_repeat": len(y),
        "search_trials_evaluation": int(np.sum(trials)),
    }
    if repeats_done < config.cv_repeats:
        _report(progress, "cross-validation", n_folds, n_folds)
    final = clone(template).set_params(time_limit=_time_left(deadline)).fit(data.frame, y)
    plotted = (np.arange(len(y)), y, {name: values[0] for name, values in oof.items()})
    return (
        evaluation,
        (int(round(np.mean(train_sizes))), len(y)),
        split_params,
        choices,
        plotted,
        final,
    )


_NAMES = ("model", "prior", "logistic_regression")


def evaluate_repeated(
    y: np.ndarray, oof: dict[str, np.ndarray], *, n_boot: int = 200, seed: int = 0
) -> dict[str, dict]:
    """Metrics of repeated out-of-fold probabilities ``{name: (repeats, rows)}``.

    Each metric is computed per repeat and averaged; the 95% interval comes from resampling
    rows (the same resamples for every repeat and every model, so comparisons are paired).
    """
    y = np.asarray(y, dtype=int)
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, len(y), len(y)) for _ in range(n_boot)]
    out = {}
    for name, P in oof.items():
        point = _mean_metrics(y, P, slice(None))
        if n_boot:
            draws = {m: [] for m in METRIC_NAMES}
            for index in resamples:
                for metric, value in _mean_metrics(y, P, index).items():
                    draws[metric].append(value)
            point["ci95"] = {
                m: [round(bound, 4) for bound in interval(m, v, point[m])] for m, v in draws.items()
            }
        out[name] = point
    return out


def _mean_metrics(y: np.ndarray, P: np.ndarray, index) -> dict[str, float]:
    per_repeat = [fast_binary_metrics(y[index], p[index]) for p in P]
    return {m: float(np.mean([r[m] for r in per_repeat])) for m in METRIC_NAMES}


def fast_binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """:func:`~spm_ml.models.metrics.binary_metrics` in plain NumPy (same definitions and
    clipping, ties included), ~30x faster: the bootstrap calls it thousands of times."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    out = {
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "ece": expected_calibration_error(y, p),
    }
    if n_pos == 0 or n_neg == 0:
        return {"roc_auc": float("nan"), "pr_auc": float("nan"), **out}
    from scipy.stats import rankdata

    ranks = rankdata(p)
    auc = (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p_sorted) - 1]
    tp = np.cumsum(y_sorted)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    recall_step = np.diff(np.r_[0, tp]) / n_pos
    ap = float(np.sum(recall_step * tp / (tp + fp)))
    return {"roc_auc": float(auc), "pr_auc": ap, **out}


def _report(progress, stage: str, done: int, total: int) -> None:
    logger.info("tabular training: %s %d/%d", stage, done, total)
    if progress is not None:
        progress(stage, done, total)


# -- saving and logging ---------------------------------------------------------------------------
def _save_model(model: TabularClassifier, out: Path, frame: pd.DataFrame, metadata: dict) -> None:
    """Save into a fresh sibling folder, then swap: a failed save never destroys the old model."""
    _check_model_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    staging.rmdir()  # MLflow wants to create the folder itself
    try:
        save_tabular_model(model, staging, frame, metadata=metadata)
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.replace(out)


def _check_model_out(out: Path) -> None:
    """A new or empty folder, or a previous model (replaced); never someone's other files."""
    if out.exists() and not out.is_dir():
        raise SpmMlError(f"--model-out {out} is a file; pass a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "MLmodel").exists():
        raise SpmMlError(
            f"--model-out {out} exists and is not an MLflow model; pass a new or empty folder "
            "(an existing model folder is replaced)"
        )


def _log_run(data, config, model, evaluation, split_params, choices) -> None:
    import mlflow

    params = {
        **{k: _param(v) for k, v in asdict(config).items()},
        **split_params,
        "source_file": Path(data.source).name,
        "n_rows_read": data.n_read,
        "n_rows": len(data.y),
        "n_positive": int(data.y.sum()),
        "rows_left_out": _param(data.left_out),
        "n_features": len(model.feature_names_in_),
        "chosen_model": model.chosen_,
        "logistic_regression_C": model.logistic_C_,
        "calibration_method": getattr(model.calibrator_, "method", "none"),
        "fold_choices": _param(choices),
        "search_trials": model.search_.get("trials", 0),
        "search_stopped_by": model.search_.get("stopped_by", ""),
        "search_best_params": _param(model.search_.get("best_params", {})),
        "blend": _param(
            {"parts": model.blend_["parts"], "weight": model.blend_["weight"]}
            if model.blend_
            else {}
        ),
    }
    for decision in data.decisions:
        state = "used" if decision.used else "dropped"
        text = f"{decision.kind}, {state}: {decision.reason}"
        if decision.warning:
            text += f" | WARNING {decision.warning}"
        params[f"column.{_param_key(decision.column)}"] = text[:500]
    mlflow.log_params(params)
    mlflow.log_metrics(flat_metrics(evaluation))
    for name, loss in model.selection_.items():
        mlflow.log_metric(f"selection_log_loss_{name}", loss)
        mlflow.log_metric(f"selection_log_loss_se_{name}", model.selection_own_se_[name])
        mlflow.log_metric(f"selection_log_loss_paired_se_{name}", model.selection_se_[name])
    tags = {"model_family": config.experiment, "data": Path(data.source).name}
    commit = registry.git_commit()
    if commit:
        tags["git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    mlflow.set_tags(tags)
    mlflow.log_dict({"columns": [d.as_dict() for d in data.decisions]}, "columns.json")
    mlflow.log_dict({"features": list(model.feature_names_in_)}, "features.json")


def _log_plots(model: TabularClassifier, data: TabularData, plotted, seed: int) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    from spm_ml.models.plots import reliability_plot, roc_pr_plot, shap_summary_plot

    _, y, probabilities = plotted
    figures = {
        "plots/reliability.png": reliability_plot(y, probabilities),
        "plots/roc_pr.png": roc_pr_plot(y, probabilities),
    }
    if model.chosen_ not in (LOGISTIC, PRIOR):
        sample = data.frame.sample(min(1000, len(data.frame)), random_state=seed)
        features = model.preprocessor_.transform(sample)
        figures["plots/shap_summary.png"] = shap_summary_plot(model.explain(sample), features)
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)
        plt.close(figure)


def _param(value: object) -> object:
    if isinstance(value, (list, tuple, dict)):
        import json

        return json.dumps(value)
    return "" if value is None else value


def _param_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(name))[:200] or "_"
