"""Searching learners within a time limit: the deadline, LightGBM tuning and the blend.

What :class:`~spm_ml.models.tabular.TabularClassifier` uses to spend a flat export's time
budget well:

- :class:`Deadline`: seconds left of a budget (``None``: no limit), so every stage can ask
  whether the next step still fits before starting it.
- :func:`tune_lightgbm`: a small hyper-parameter search (Optuna's TPE sampler, seeded) over
  LightGBM's shape, learning rate and regularisation, judged by the same inner held-out log
  loss as every other candidate.  It starts from the data-sized default (a completed first
  trial), asks for the next trial only while the measured mean trial time plus the time
  reserved for the final refits still fits, and keeps the best trial so far: stopping is
  always clean.
- :func:`cross_fitted_search`: the search's held-out probabilities for the model choice,
  each held-out part scored by the trial that won on the *other* parts.  The best of 40
  trials on the same rows is optimistic (on 400 rows by about 0.01 log loss, enough to beat
  an additive GBM that predicts new rows better); judged cross-fitted, the search competes
  with the other candidates on an equal footing, and only the model it ships is the overall
  best trial.
- :func:`cross_fitted_blend`: the weighted average, on the log-odds scale, of the two best
  candidates' held-out probabilities, its weight chosen on *other* inner splits than the
  rows it is scored on, so the blend competes on out-of-fold predictions like the rest.

Why Optuna rather than FLAML as a library: the search here must use the trainer's own
inner splits (time-ordered when the export has times), early stopping and calibration, and
its trials must be comparable with the logistic regression and the additive GBM by one
rule.  Optuna's ask/tell interface samples parameters and nothing else, so the protocol
stays ours; FLAML's ``AutoML`` brings its own resampling, learners and stopping rules.
FLAML is only a peer in ``benchmarks/flat_export_quality.py``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedKFold

logger = logging.getLogger(__name__)

BLEND_WEIGHTS = tuple(np.round(np.arange(0.1, 0.91, 0.1), 2))
"""Weights of the better candidate tried for the blend (0 and 1 are the candidates alone)."""


class Deadline:
    """A time budget that started at ``started`` (``time.perf_counter()``); ``None``: none."""

    def __init__(self, seconds: float | None, *, started: float | None = None) -> None:
        self.seconds = seconds
        self.started = time.perf_counter() if started is None else started

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def remaining(self) -> float:
        """Seconds left (``inf`` without a limit; negative once overrun)."""
        return math.inf if self.seconds is None else self.seconds - self.elapsed()

    def within(self, seconds: float | None) -> Deadline:
        """A deadline starting now that ends at ``seconds`` or at this one, the earlier."""
        limit = self.remaining()
        if seconds is not None:
            limit = min(limit, seconds)
        return Deadline(None if math.isinf(limit) else max(limit, 0.0))


@dataclass
class GbmRun:
    """One LightGBM configuration fitted on every inner split: what the choice needs."""

    params: dict
    margin: np.ndarray
    """Held-out raw margins, inner splits concatenated."""
    rounds: list[int]
    held_p: np.ndarray
    """Held-out probabilities after a Platt curve fitted on ``margin``."""
    platt: object
    loss: float
    seconds: float
    """Wall time of all its inner fits."""
    extra: dict = field(default_factory=dict)


def paired_standard_error(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> float:
    """Standard error of the mean per-row log-loss difference between ``p_a`` and ``p_b``."""
    y = np.asarray(y, dtype=int)

    def per_row(p):
        p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))

    difference = per_row(p_a) - per_row(p_b)
    return float(np.std(difference, ddof=1) / np.sqrt(len(difference)))


def log_loss_of(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def search_space(trial, n_rows: int) -> dict:
    """LightGBM parameters around the data-sized default, wide enough for 500 to 100,000
    training rows; rounds are early-stopped on the held-out split."""
    return {
        "n_estimators": 2000,
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 2, 96, log=True),
        "min_child_samples": trial.suggest_int(
            "min_child_samples", 3, max(10, min(300, n_rows // 20)), log=True
        ),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 50.0, log=True),
        "early_stopping_rounds": 50,
    }


def tune_lightgbm(
    run_params: Callable[[dict], GbmRun | None],
    first: GbmRun,
    *,
    n_rows: int,
    deadline: Deadline,
    reserve: Callable[[GbmRun], float],
    max_trials: int,
    seed: int = 0,
    y_held: np.ndarray | None = None,
    parts: list[np.ndarray] | None = None,
) -> tuple[GbmRun, dict]:
    """The best LightGBM configuration found before ``deadline`` (at most ``max_trials``).

    ``run_params(params)`` fits one configuration on the inner splits (``None`` when it had
    to stop for the deadline); ``first`` is the data-sized default, already fitted;
    ``reserve(best)`` is the time to leave for what follows (the refits of the chosen
    model).  With ``y_held`` (the held-out outcomes), the best trial replaces ``first``
    only when its log loss is lower by more than one paired standard error.  Returns the
    chosen run and a summary (trials run, stop reason, seconds, whether the default was kept).
    With ``parts`` too (a partition of the held-out rows), the chosen run's
    ``extra["selection_p"]`` holds the search's cross-fitted held-out probabilities
    (:func:`cross_fitted_search`), the figure the model choice should judge it by.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    distributions = _distributions(n_rows)
    study.add_trial(
        optuna.trial.create_trial(
            params=_first_trial_params(first.params),
            distributions=distributions,
            value=first.loss,
        )
    )
    best, durations, stop = first, [first.seconds], "max trials"
    runs = [first]
    trials = 0
    while trials < max_trials:
        needed = reserve(best) + 1.2 * float(np.mean(durations))
        if deadline.remaining() < needed:
            stop = "time budget"
            break
        trial = study.ask(distributions)
        t0 = time.perf_counter()
        run = run_params(search_space(trial, n_rows))
        if run is None:  # it met the deadline midway: nothing learned, stop cleanly
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            stop = "time budget"
            break
        trials += 1
        durations.append(time.perf_counter() - t0)
        study.tell(trial, run.loss)
        runs.append(run)
        if run.loss < best.loss:
            best = run
    # the best of many trials on the same held-out rows is optimistic: like every choice
    # here, it replaces the default only when better by more than a paired standard error
    kept_default = (
        best is not first
        and y_held is not None
        and first.loss - best.loss <= paired_standard_error(y_held, first.held_p, best.held_p)
    )
    if kept_default:
        best = first
    if y_held is not None and parts is not None:
        best.extra["selection_p"] = cross_fitted_search(runs, y_held, parts)
    summary = {
        "kept_default": kept_default,
        "trials": trials,
        "stopped_by": stop,
        "seconds": round(time.perf_counter() - started, 2),
        "best_loss": round(best.loss, 5),
        "default_loss": round(first.loss, 5),
        "best_params": {k: v for k, v in best.params.items() if k != "n_estimators"},
    }
    logger.info("LightGBM search: %s", summary)
    return best, summary


def cross_fitted_search(runs: list[GbmRun], y: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """Held-out probabilities of the search as a procedure: each part of the held-out rows
    scored by the run the search would have kept had it seen only the other parts (the
    lowest log loss there, ``runs[0]`` - the default - unless beaten by more than one paired
    standard error, as :func:`tune_lightgbm` decides).

    Like the blend's weight, the choice among trials never sees the rows it is scored on,
    so the search's loss is out of fold like the other candidates'.
    """
    y = np.asarray(y, dtype=int)
    out = np.empty(len(y))
    for part in parts:
        others = np.setdiff1d(np.arange(len(y)), part)
        losses = [log_loss_of(y[others], run.held_p[others]) for run in runs]
        pick = int(np.argmin(losses))
        default_p, pick_p = runs[0].held_p[others], runs[pick].held_p[others]
        if losses[0] - losses[pick] <= paired_standard_error(y[others], default_p, pick_p):
            pick = 0
        out[part] = runs[pick].held_p[part]
    return out


def _distributions(n_rows: int) -> dict:
    import optuna

    recorder = _Recorder()
    search_space(recorder, n_rows)
    return {
        name: (
            optuna.distributions.IntDistribution(low, high, log=log)
            if kind == "int"
            else optuna.distributions.FloatDistribution(low, high, log=log)
        )
        for name, (kind, low, high, log) in recorder.seen.items()
    }


def _first_trial_params(params: dict) -> dict:
    """The default configuration as a trial of the search (clipped into its ranges)."""
    return {
        "learning_rate": float(np.clip(params["learning_rate"], 0.02, 0.2)),
        "num_leaves": int(np.clip(params["num_leaves"], 2, 96)),
        "min_child_samples": int(params["min_child_samples"]),
        "subsample": float(params["subsample"]),
        "colsample_bytree": float(params["colsample_bytree"]),
        "reg_lambda": float(params["reg_lambda"]),
    }


class _Recorder:
    """Stands in for a trial to read the search space's names and ranges."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple] = {}

    def suggest_float(self, name, low, high, log=False):
        self.seen[name] = ("float", low, high, log)
        return low

    def suggest_int(self, name, low, high, log=False):
        self.seen[name] = ("int", low, high, log)
        return low


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def blend_margin(p_a: np.ndarray, p_b: np.ndarray, weight: float) -> np.ndarray:
    """``weight`` x log-odds of ``p_a`` + (1 - ``weight``) x log-odds of ``p_b``."""
    return weight * logit(p_a) + (1 - weight) * logit(p_b)


def cross_fitted_blend(
    p_a: np.ndarray,
    p_b: np.ndarray,
    y: np.ndarray,
    parts: list[np.ndarray],
) -> tuple[np.ndarray, float]:
    """Held-out blend margins whose weight never saw the rows they score, and the weight
    chosen on all rows (for the final model).

    ``parts`` partition the held-out rows (one part per inner split; a single holdout is
    cut in two stratified halves by :func:`blend_parts`).  Each part is scored with the
    weight that minimises the log loss on the other parts.
    """
    y = np.asarray(y, dtype=int)
    margin = np.empty(len(y))
    for part in parts:
        others = np.setdiff1d(np.arange(len(y)), part)
        w = _best_weight(p_a[others], p_b[others], y[others])
        margin[part] = blend_margin(p_a[part], p_b[part], w)
    return margin, _best_weight(p_a, p_b, y)


def _best_weight(p_a: np.ndarray, p_b: np.ndarray, y: np.ndarray) -> float:
    losses = {
        w: log_loss_of(y, 1 / (1 + np.exp(-blend_margin(p_a, p_b, w)))) for w in BLEND_WEIGHTS
    }
    return float(min(losses, key=losses.get))


def blend_parts(sizes: list[int], y: np.ndarray, seed: int) -> list[np.ndarray]:
    """The held-out rows' parts for :func:`cross_fitted_blend`: one per inner split, or two
    stratified halves of a single validation split."""
    if len(sizes) > 1:
        ends = np.cumsum(sizes)
        return [np.arange(end - size, end) for size, end in zip(sizes, ends, strict=True)]
    halves = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    return [held for _, held in halves.split(np.zeros(len(y)), y)]
