"""``TabularClassifier``: the win probability from any flat export, with an honest model choice.

On a few hundred rows a gradient-boosted model is not automatically better than a
regularised logistic regression, and a user should not have to guess.  ``fit`` runs one
fixed procedure on the rows it is given (so cross-validation can repeat it per fold),
within ``time_limit`` seconds when given:

1. **Inner splits** of the training rows: stratified 3-fold; one stratified 20% validation
   split from ``holdout_rows`` (20,000) rows on; or - when row times are given - one split
   with the latest 20% held out (training never sees later rows).
2. **Candidates**, each fitted per inner split with early stopping on the held-out part:
   ``logistic_regression`` (``C`` tuned over a grid), ``gbm_additive`` (depth-1 trees: an
   additive model, strong on small tabular data), ``gbm`` (LightGBM: the data-sized default
   - ``num_leaves`` 4..31, ``min_child_samples`` 5..50 from the row count - then a seeded
   Optuna search over its shape, learning rate and regularisation while time is left; see
   :mod:`spm_ml.models.learner_search`), and ``blend``: the best pair of the three best on
   the log-odds scale, the weight cross-fitted across the held-out parts.
3. **Choice** by held-out log loss (GBM margins and the blend through a 2-parameter Platt
   curve, the logistic regression's own probabilities; the searched GBM's cross-fitted -
   each held-out part scored by the trial that won on the other parts,
   :func:`~spm_ml.models.learner_search.cross_fitted_search` - so that the best of 40
   trials is not judged on the rows that picked it) with the one-standard-error rule: the
   simplest single candidate (class rate < logistic regression < additive GBM < GBM) whose
   loss is within one paired standard error of the best; then the blend instead, when its
   out-of-fold loss beats every single candidate's, its parts included
   (:func:`choose_candidate`); recorded in ``selection_``.  With ``learner="auto"`` the
   class rate competes too: when nothing clearly beats it, the model *is* the class rate
   (``chosen_ == "prior"``, never a blend) and the run says so.
4. **Refit** of the chosen candidate on all rows (GBM: the mean early-stopped round count),
   calibrated on the held-out margins by the project's one rule
   (:func:`~spm_ml.models.calibration.fit_calibrator`: isotonic or Platt, whichever has the
   lower cross-validated Brier score), its ties broken by the margin
   (:func:`~spm_ml.models.calibration.keep_order`: isotonic steps must not undo the
   model's ranking).  The tuned logistic regression is always refitted
   too (``logistic_``): it is the reference every run reports, tuned on the same inner
   splits.  The search leaves time for this refit (``refit_reserve`` times an estimate from
   the measured fit times), so it never makes the fit overrun its limit.

Raw rows go in; the fitted :class:`~spm_ml.features.tabular.TabularPreprocessor` inside turns
them into features, so the saved model applies the decisions learned at training.
"""

from __future__ import annotations

import itertools
import logging
import time

import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from spm_ml.errors import TrainingError
from spm_ml.features.tabular import TabularPreprocessor
from spm_ml.models.calibration import fit_calibrator, keep_order
from spm_ml.models.gbm import CalibratedGBM
from spm_ml.models.learner_search import (
    Deadline,
    GbmRun,
    blend_margin,
    blend_parts,
    cross_fitted_blend,
    log_loss_of,
    tune_lightgbm,
)
from spm_ml.models.pyfunc import ProbabilityModel
from spm_ml.models.references import (
    LOGISTIC_CS,
    PriorModel,
    logistic_reference,
    split_columns,
)

logger = logging.getLogger(__name__)

LEARNERS = ("auto", "gbm", "logistic")
GBM_CANDIDATES = ("gbm", "gbm_additive")
LOGISTIC = "logistic_regression"
PRIOR = "prior"
DEFAULT_CS = LOGISTIC_CS


def gbm_params(n_rows: int, shape: str) -> dict:
    """LightGBM hyper-parameters scaled to ``n_rows`` training rows (small data, strong priors)."""
    return {
        "n_estimators": 2000,
        "learning_rate": 0.05,
        "num_leaves": 2 if shape == "gbm_additive" else int(np.clip(n_rows // 150, 4, 31)),
        "min_child_samples": int(np.clip(n_rows // 40, 5, 50)),
        "subsample": 0.8,
        "colsample_bytree": 0.7,
        "reg_lambda": 5.0,
        "early_stopping_rounds": 50,
    }


BLEND = "blend"
SIMPLEST_FIRST = (PRIOR, LOGISTIC, "gbm_additive", "gbm", BLEND)
"""The one-standard-error rule's order, simplest first."""


def choose_candidate(
    y: np.ndarray, held_p: dict[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, float], str]:
    """The model choice: the one-standard-error rule among the single candidates, then the
    blend instead when its held-out log loss beats every single candidate's (its two parts
    included) and the data has signal (the rule did not choose the class rate).

    The blend's weight was cross-fitted (``learner_search.cross_fitted_blend``), so its
    held-out loss is out of fold like the others'; an average of two models adds little
    variance, so beating both is asked of it, not a further standard error.  Returns the
    mean losses and paired standard errors of every candidate (as
    :func:`one_standard_error_choice`) and the chosen name.
    """
    means, se, _ = one_standard_error_choice(y, held_p)
    singles = {k: v for k, v in held_p.items() if k != BLEND}
    _, _, chosen = one_standard_error_choice(y, singles)
    beats_all = BLEND in held_p and means[BLEND] < min(means[k] for k in singles)
    if beats_all and chosen != PRIOR:
        chosen = BLEND
    return means, se, chosen


def one_standard_error_choice(
    y: np.ndarray, held_p: dict[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, float], str]:
    """Mean held-out log loss per candidate, its standard error against the best, and the
    simplest candidate within one standard error of the best (Breiman's one-SE rule).

    Every candidate but the prior was tuned on these same rows (early stopping, ``C``,
    Platt), so the best score is a little optimistic; the rule keeps that optimism from
    buying complexity (or a model of pure noise) that the data cannot support.
    """
    p = {k: np.clip(v, 1e-6, 1 - 1e-6) for k, v in held_p.items()}
    per_row = {k: -(y * np.log(v) + (1 - y) * np.log(1 - v)) for k, v in p.items()}
    means = {k: float(v.mean()) for k, v in per_row.items()}
    best = min(means, key=means.get)
    se = {k: float(np.std(v - per_row[best], ddof=1) / np.sqrt(len(v))) for k, v in per_row.items()}
    for name in SIMPLEST_FIRST:
        if name in means and means[name] - means[best] <= se[name]:
            return means, se, name
    return means, se, best


def own_standard_errors(y: np.ndarray, held_p: dict[str, np.ndarray]) -> dict[str, float]:
    """Each candidate's own standard error of its mean held-out log loss (for people to
    read; the one-SE rule compares candidates by the *paired* error, which is 0 for the
    best against itself)."""
    out = {}
    for name, p in held_p.items():
        p = np.clip(p, 1e-6, 1 - 1e-6)
        loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        out[name] = float(np.std(loss, ddof=1) / np.sqrt(len(loss)))
    return out


class TabularClassifier(ClassifierMixin, BaseEstimator):
    """Preprocessing + the best of GBM / additive GBM / logistic regression / their blend,
    calibrated, found within ``time_limit`` seconds.

    Parameters
    ----------
    preprocessor:
        An unfitted :class:`TabularPreprocessor` naming the used raw columns.
    learner:
        ``"auto"`` (choose among all candidates), ``"gbm"`` (the two GBM shapes only) or
        ``"logistic"``.
    inner_folds:
        Stratified folds for early stopping, tuning, choice and calibration (no row times,
        fewer than ``holdout_rows`` rows).
    valid_fraction:
        Latest share of rows held out instead, when ``fit`` gets row times; a stratified
        share when the rows are ``holdout_rows`` or more (one split is enough there).
    time_limit:
        Seconds ``fit`` may take, refit included (``None``: no limit).  The LightGBM search
        stops when its next trial would not leave time for the refit.
    max_trials:
        At most this many LightGBM search trials (0: the data-sized default only).
    n_jobs:
        LightGBM threads.  One by default: on a shared 2-core machine two threads made a
        small table's fits ten times slower (OpenMP threads waiting for a busy core).
    refit_reserve:
        How many refits of the chosen model (each estimated from measured fit times) to
        leave time for: 1 for ``fit``'s own; more when the caller refits on more rows after.
    """

    def __init__(
        self,
        *,
        preprocessor: TabularPreprocessor | None = None,
        learner: str = "auto",
        inner_folds: int = 3,
        valid_fraction: float = 0.2,
        Cs: tuple[float, ...] = DEFAULT_CS,
        time_limit: float | None = None,
        max_trials: int = 40,
        refit_reserve: float = 1.0,
        holdout_rows: int = 20_000,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.preprocessor = preprocessor
        self.learner = learner
        self.inner_folds = inner_folds
        self.valid_fraction = valid_fraction
        self.Cs = Cs
        self.time_limit = time_limit
        self.max_trials = max_trials
        self.refit_reserve = refit_reserve
        self.holdout_rows = holdout_rows
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------------
    def fit(
        self, X: pd.DataFrame, y: np.ndarray, *, times: pd.Series | None = None
    ) -> TabularClassifier:
        """Fit on raw rows ``X`` with 0/1 outcomes ``y``; ``times`` orders rows for the holdout."""
        if self.learner not in LEARNERS:
            raise TrainingError(
                f"learner must be one of {', '.join(LEARNERS)}, not {self.learner!r}"
            )
        deadline = Deadline(self.time_limit)
        y = np.asarray(y, dtype=int)
        self.classes_ = np.array([0, 1])
        Z = self._features(X)
        splits = self._inner_splits(y, times)
        held = np.concatenate([v for _, v in splits])
        y_held = y[held]
        self.n_fit_rows_ = len(y)
        self.fit_seconds_: dict[str, float] = {}

        categorical = self.preprocessor_.categorical_features_
        cats, nums = split_columns(Z, categorical)
        held_p: dict[str, np.ndarray] = {}  # held-out probabilities of each candidate
        self.gbm_runs_: dict[str, GbmRun] = {}

        # the logistic regression: always tuned (it is also the run's reference)
        t0 = time.perf_counter()
        by_C = self._logistic_held_out(Z, y, splits, cats, nums)
        losses = {C: float(log_loss(y_held, p, labels=[0, 1])) for C, p in by_C.items()}
        self.logistic_C_ = min(losses, key=losses.get)
        self.logistic_ = logistic_reference(cats, nums, C=self.logistic_C_, seed=self.random_state)
        t1 = time.perf_counter()
        self.logistic_.fit(Z, y)
        self.logistic_fit_seconds_ = time.perf_counter() - t1
        self.fit_seconds_[LOGISTIC] = time.perf_counter() - t0
        if self.learner in ("auto", "logistic"):
            held_p[LOGISTIC] = by_C[self.logistic_C_]

        n_fit = int(np.mean([len(f) for f, _ in splits]))
        shapes = GBM_CANDIDATES if self.learner in ("auto", "gbm") else ()
        self.skipped_: list[str] = []
        for shape in shapes:
            if deadline.remaining() <= 0:  # out of time: keep what was fitted, say what not
                self.skipped_.append(shape)
                continue
            run = self._gbm_run(gbm_params(n_fit, shape), Z, y, splits, categorical, None)
            self.gbm_runs_[shape] = run
        self.search_ = {"trials": 0, "stopped_by": "not run"}
        sizes = [len(v) for _, v in splits]
        parts = blend_parts(sizes, y_held, self.random_state)
        if "gbm" in self.gbm_runs_ and self.max_trials > 0:
            self.gbm_runs_["gbm"], self.search_ = tune_lightgbm(
                lambda params: self._gbm_run(params, Z, y, splits, categorical, deadline),
                self.gbm_runs_["gbm"],
                n_rows=n_fit,
                deadline=deadline,
                reserve=lambda best: self.refit_reserve * self._refit_estimate(best, len(splits)),
                max_trials=self.max_trials,
                seed=self.random_state,
                y_held=y_held,
                parts=parts,
            )
        for shape, run in self.gbm_runs_.items():
            held_p[shape] = run.extra.get("selection_p", run.held_p)
            self.fit_seconds_[shape] = run.seconds
        self.platt_ = {shape: run.platt for shape, run in self.gbm_runs_.items()}
        self.blend_ = self._blend(held_p, y_held, parts)
        if self.blend_ is not None:
            held_p[BLEND] = self.blend_["held_p"]
        if self.learner == "auto":  # no signal is a legitimate answer: say so, do not guess
            held_p[PRIOR] = np.concatenate([np.full(len(v), y[f].mean()) for f, v in splits])

        self.selection_, self.selection_se_, self.chosen_ = choose_candidate(y_held, held_p)
        self.selection_own_se_ = own_standard_errors(y_held, held_p)
        self.calibration_scores_: dict[str, float] = {}
        self.calibrator_ = None
        if self.chosen_ == BLEND:
            self.calibrator_, self.calibration_scores_ = fit_calibrator(
                self.blend_["margin"], y_held, "auto", self.random_state
            )
        elif self.chosen_ in self.gbm_runs_:
            self.calibrator_, self.calibration_scores_ = fit_calibrator(
                self.gbm_runs_[self.chosen_].margin, y_held, "auto", self.random_state
            )
        t0 = time.perf_counter()
        self._refit_chosen(Z, y, scale=1.0)
        self.refit_seconds_ = time.perf_counter() - t0
        self.seconds_ = deadline.elapsed()
        logger.info("tabular model: chose %s (held-out log loss %s)", self.chosen_, self.selection_)
        return self

    def refit(self, X: pd.DataFrame, y: np.ndarray) -> TabularClassifier:
        """A copy refitted on ``X`` (more rows) with everything this fit chose frozen: the
        candidate, its hyper-parameters (rounds scaled to the row count), the blend weight,
        ``C`` and the calibrators learned from this fit's held-out predictions.

        For large exports, where a held-out evaluation already spent the budget choosing:
        the final model costs one fit of the chosen candidate, not another search.
        """
        check_is_fitted(self, "estimator_")
        y = np.asarray(y, dtype=int)
        new = clone(self)
        for name, value in self.__dict__.items():
            if name.endswith("_") and not name.startswith("__"):
                setattr(new, name, value)
        Z = new._features(X)
        cats, nums = split_columns(Z, new.preprocessor_.categorical_features_)
        new.logistic_ = logistic_reference(cats, nums, C=self.logistic_C_, seed=self.random_state)
        new.logistic_.fit(Z, y)
        new._refit_chosen(Z, y, scale=len(y) / self.n_fit_rows_)
        new.n_fit_rows_ = len(y)
        return new

    def _features(self, X: pd.DataFrame) -> pd.DataFrame:
        prep = self.preprocessor or TabularPreprocessor()
        self.preprocessor_ = TabularPreprocessor(**prep.get_params()).fit(X)
        self.feature_names_in_ = np.asarray(self.preprocessor_.feature_names_out_, dtype=object)
        return self.preprocessor_.transform(X).reset_index(drop=True)

    def _refit_chosen(self, Z: pd.DataFrame, y: np.ndarray, *, scale: float) -> None:
        """Fit the chosen candidate (a blend: both parts) on all of ``Z``; GBMs with the mean
        early-stopped round count, times ``scale`` when refitting on more rows."""
        categorical = self.preprocessor_.categorical_features_
        self.estimators_: dict[str, object] = {}
        parts = self.blend_["parts"] if self.chosen_ == BLEND else (self.chosen_,)
        for name in parts:
            if name == LOGISTIC:
                self.estimators_[name] = self.logistic_
            elif name == PRIOR:
                self.estimators_[name] = PriorModel().fit(Z, y)
            else:
                run = self.gbm_runs_[name]
                rounds = max(1, int(round(np.mean(run.rounds) * scale)))
                self.estimators_[name] = self._gbm(
                    {**run.params, "n_estimators": rounds}, categorical
                ).fit(Z, y)
        gbms = [n for n in parts if n in GBM_CANDIDATES]
        # the estimator explanations come from: the (heavier-weighted) GBM, else the only one
        main = max(gbms, key=self._weight) if gbms else parts[0]
        self.estimator_ = self.estimators_[main]

    def _weight(self, name: str) -> float:
        if self.chosen_ != BLEND:
            return 1.0
        a, _ = self.blend_["parts"]
        return self.blend_["weight"] if name == a else 1 - self.blend_["weight"]

    def _gbm_run(self, params, Z, y, splits, categorical, deadline) -> GbmRun | None:
        """One LightGBM configuration on every inner split; ``None`` if ``deadline`` struck."""
        t0 = time.perf_counter()
        margins, rounds = [], []
        for fit_rows, valid_rows in splits:
            if deadline is not None and deadline.remaining() <= 0:
                return None
            model = self._gbm(params, categorical).fit(
                Z.iloc[fit_rows], y[fit_rows], eval_set=(Z.iloc[valid_rows], y[valid_rows])
            )
            margins.append(model.decision_function(Z.iloc[valid_rows]))
            rounds.append(int(model.best_iteration_))
        margin = np.concatenate(margins)
        y_held = np.concatenate([y[v] for _, v in splits])
        platt, _ = fit_calibrator(margin, y_held, "platt", self.random_state)
        held_p = platt.predict(margin)
        return GbmRun(
            params=params,
            margin=margin,
            rounds=rounds,
            held_p=held_p,
            platt=platt,
            loss=log_loss_of(y_held, held_p),
            seconds=time.perf_counter() - t0,
        )

    def _refit_estimate(self, run: GbmRun, n_splits: int) -> float:
        """Seconds one refit of the chosen model on all rows should take, from the measured
        inner fits: every GBM configuration's fit (a blend may need two), scaled to all rows,
        and the logistic regression's single fit; 20% added for the unexpected."""
        fits = [run.seconds, *(r.seconds for name, r in self.gbm_runs_.items() if name != "gbm")]
        per_fit = sum(fits) / max(n_splits, 1)
        rows = 1 / (1 - self.valid_fraction) if n_splits == 1 else n_splits / (n_splits - 1)
        return 1.2 * (per_fit * rows + self.logistic_fit_seconds_)

    def _blend(self, held_p: dict, y_held: np.ndarray, parts: list[np.ndarray]) -> dict | None:
        """The best blend of two candidates: each pair of the three best, its weight
        cross-fitted over the held-out ``parts``, judged by the blended held-out log loss;
        ``None`` with fewer than two candidates."""
        ranked = sorted(held_p, key=lambda n: log_loss_of(y_held, held_p[n]))[:3]
        best = None
        for a, b in itertools.combinations(ranked, 2):  # a is the better of the two
            cross, weight = cross_fitted_blend(held_p[a], held_p[b], y_held, parts)
            platt, _ = fit_calibrator(cross, y_held, "platt", self.random_state)
            blended = platt.predict(cross)
            loss = log_loss_of(y_held, blended)
            if best is None or loss < best["loss"]:
                best = {
                    "parts": (a, b),
                    "weight": weight,
                    "margin": blend_margin(held_p[a], held_p[b], weight),
                    "held_p": blended,
                    "loss": loss,
                }
        return best

    def _logistic_held_out(self, Z, y, splits, cats, nums) -> dict[float, np.ndarray]:
        """Pooled held-out probabilities per ``C``: features fitted once per split, warm starts."""
        template = logistic_reference(cats, nums, seed=self.random_state)
        probabilities: dict[float, list[np.ndarray]] = {C: [] for C in self.Cs}
        for fit_rows, valid_rows in splits:
            features = clone(template.named_steps["features"]).fit(Z.iloc[fit_rows])
            A, B = features.transform(Z.iloc[fit_rows]), features.transform(Z.iloc[valid_rows])
            model = clone(template.named_steps["model"]).set_params(warm_start=True)
            for C in sorted(self.Cs):
                model.set_params(C=C).fit(A, y[fit_rows])
                probabilities[C].append(model.predict_proba(B)[:, 1])
        return {C: np.concatenate(p) for C, p in probabilities.items()}

    def _gbm(self, params: dict, categorical: tuple[str, ...]) -> CalibratedGBM:
        return CalibratedGBM(
            **params,
            calibration="none",
            refit=False,  # the inner folds' margins and rounds are this class's to pool
            early_stopping_metric="binary_logloss",  # candidates are chosen on log loss
            categorical_features=categorical,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )

    def _inner_splits(
        self, y: np.ndarray, times: pd.Series | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if times is not None:
            order = np.argsort(pd.Series(times).to_numpy(), kind="stable")
            cut = int(round(len(order) * (1 - self.valid_fraction)))
            fit_rows, valid_rows = np.sort(order[:cut]), np.sort(order[cut:])
            for name, rows in (("earlier", fit_rows), ("later (validation)", valid_rows)):
                if len(np.unique(y[rows])) < 2:
                    raise TrainingError(
                        f"the {name} part of the training rows holds one outcome only; "
                        "a time-based split needs both outcomes in every period "
                        "(more rows, or drop --time-col for cross-validation)"
                    )
            return [(fit_rows, valid_rows)]
        if len(y) >= self.holdout_rows:  # plenty of rows: one stratified validation split
            from sklearn.model_selection import train_test_split

            fit_rows, valid_rows = train_test_split(
                np.arange(len(y)),
                test_size=self.valid_fraction,
                stratify=y,
                random_state=self.random_state,
            )
            return [(np.sort(fit_rows), np.sort(valid_rows))]
        minority = int(min(y.sum(), len(y) - y.sum()))
        folds = StratifiedKFold(
            n_splits=max(2, min(self.inner_folds, minority)),
            shuffle=True,
            random_state=self.random_state,
        )
        return list(folds.split(np.zeros(len(y)), y))

    # -- prediction ------------------------------------------------------------------------------
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities of raw rows, shape ``(n, 2)``."""
        check_is_fitted(self, "estimator_")
        Z = self.preprocessor_.transform(X)
        if self.chosen_ in (LOGISTIC, PRIOR):
            p = self.estimator_.predict_proba(Z)[:, 1]
        else:
            if self.chosen_ == BLEND:
                a, b = self.blend_["parts"]
                part_p = (self._part_p(a, Z), self._part_p(b, Z))
                margin = blend_margin(*part_p, self.blend_["weight"])
            else:
                margin = self.estimator_.decision_function(Z)
            p = keep_order(self.calibrator_.predict(margin), margin)
        return np.column_stack([1.0 - p, p])

    def _part_p(self, name: str, Z: pd.DataFrame) -> np.ndarray:
        """A blend part's probabilities as they were blended: GBMs through their Platt curve."""
        estimator = self.estimators_[name]
        if name in self.platt_:
            return self.platt_[name].predict(estimator.decision_function(Z))
        return estimator.predict_proba(Z)[:, 1]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def reference_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities of the tuned logistic regression reference, shape ``(n, 2)``."""
        check_is_fitted(self, "logistic_")
        return self.logistic_.predict_proba(self.preprocessor_.transform(X))

    def explain(self, X: pd.DataFrame) -> pd.DataFrame | None:
        """Tree SHAP contributions (log-odds) when the chosen model is a GBM (a blend: of its
        GBM part, the heavier if both are), else ``None``."""
        check_is_fitted(self, "estimator_")
        if not isinstance(self.estimator_, CalibratedGBM):
            return None
        return self.estimator_.explain(self.preprocessor_.transform(X))


# -- the MLflow face -------------------------------------------------------------------------------


def pip_requirements() -> list[str]:
    """The packages the pickled model needs, pinned to the versions that trained it.

    Given explicitly: MLflow's inference re-imports the model in a subprocess (~5 s per save)
    and omits LightGBM whenever the logistic regression was chosen.
    """
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in (
        "mlflow",
        "cloudpickle",
        "numpy",
        "pandas",
        "scikit-learn",
        "scipy",
        "lightgbm",
        "spm-ml",
    ):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins


def save_tabular_model(
    model: TabularClassifier,
    path,
    input_example: pd.DataFrame,
    *,
    metadata: dict | None = None,
) -> None:
    """Save ``model`` as an MLflow pyfunc at ``path`` with a signature (asserted).

    Every input column is declared required with type ``Any``: rows of a CSV export reach
    the model as whatever types the reader chose (``int64`` ages, text codes), and MLflow
    would refuse ``int64`` for a ``double`` column.  The frozen preprocessor does the typing,
    so it is the contract; the column decisions are stored in the model's ``metadata``.
    """
    from mlflow.models import Model, ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    columns = model.preprocessor_.input_columns_
    target = (metadata or {}).get("target")
    specs = [ColSpec(AnyType(), c, required=True) for c in columns]
    if target and target not in columns:
        # optional, so that rows still holding the outcome reach the model, which says it
        # ignores it (MLflow would drop an undeclared column without a word)
        specs.append(ColSpec(AnyType(), target, required=False))
    inputs = Schema(specs)
    outputs = Schema([ColSpec("double", "probability")])
    signature = ModelSignature(inputs=inputs, outputs=outputs)
    example = input_example.loc[:, columns].head(5).copy()
    for column in model.preprocessor_.numeric:
        example[column] = pd.to_numeric(example[column], errors="coerce")
    example = example.astype(
        {c: object for c in example.columns if c not in model.preprocessor_.numeric}
    )
    mlflow.pyfunc.save_model(
        str(path),
        python_model=ProbabilityModel(model, target=target),
        signature=signature,
        input_example=example,
        metadata=metadata,
        pip_requirements=pip_requirements(),
    )
    if Model.load(str(path)).signature is None:
        raise RuntimeError(f"MLflow saved the model at {path} without a signature")
