"""``TabularClassifier``: the win probability from any flat export, with an honest model choice.

On a few hundred rows a gradient-boosted model is not automatically better than a
regularised logistic regression, and a user should not have to guess.  ``fit`` runs one
fixed procedure on the rows it is given (so cross-validation can repeat it per fold):

1. **Inner splits** of the training rows: stratified 3-fold, or - when row times are given -
   one split with the latest 20% held out (training never sees later rows).
2. **Candidates**, each fitted per inner split with early stopping on the held-out part:
   ``gbm`` (LightGBM sized to the data: ``num_leaves`` 4..31, ``min_child_samples`` 5..50
   from the row count), ``gbm_additive`` (depth-1 trees: an additive model, strong on small
   tabular data) and ``logistic_regression`` (``C`` tuned over a grid).
3. **Choice** by held-out log loss (GBM margins through a 2-parameter Platt curve,
   the logistic regression's own probabilities) with the one-standard-error rule: the
   simplest candidate (class rate < logistic regression < additive GBM < GBM) whose loss
   is within one paired standard error of the best; recorded in ``selection_``.  With
   ``learner="auto"`` the class rate competes too: when nothing clearly beats it, the model
   *is* the class rate (``chosen_ == "prior"``) and the run says there is no usable signal.
4. **Refit** of the chosen candidate on all rows (GBM: the mean early-stopped round count),
   calibrated on the held-out margins (isotonic or Platt, whichever has the lower
   cross-validated Brier score) - scikit-learn's ``CalibratedClassifierCV(ensemble=False)``
   recipe.  The tuned logistic regression is always refitted too (``logistic_``): it is the
   reference every run reports, tuned on the same inner splits as the model.

Raw rows go in; the fitted :class:`~spm_ml.features.tabular.TabularPreprocessor` inside turns
them into features, so the saved model applies the decisions learned at training.
"""

from __future__ import annotations

import logging

import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from spm_ml.errors import TrainingError
from spm_ml.features.tabular import TabularPreprocessor
from spm_ml.models.calibration import fit_calibrator
from spm_ml.models.gbm import CalibratedGBM
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


SIMPLEST_FIRST = (PRIOR, LOGISTIC, "gbm_additive", "gbm")


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
    """Preprocessing + the best of GBM / additive GBM / logistic regression, calibrated.

    Parameters
    ----------
    preprocessor:
        An unfitted :class:`TabularPreprocessor` naming the used raw columns.
    learner:
        ``"auto"`` (choose among all candidates), ``"gbm"`` (the two GBM shapes only) or
        ``"logistic"``.
    inner_folds:
        Stratified folds for early stopping, tuning, choice and calibration (no row times).
    valid_fraction:
        Latest share of rows held out instead, when ``fit`` gets row times.
    """

    def __init__(
        self,
        *,
        preprocessor: TabularPreprocessor | None = None,
        learner: str = "auto",
        inner_folds: int = 3,
        valid_fraction: float = 0.2,
        Cs: tuple[float, ...] = DEFAULT_CS,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.preprocessor = preprocessor
        self.learner = learner
        self.inner_folds = inner_folds
        self.valid_fraction = valid_fraction
        self.Cs = Cs
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
        y = np.asarray(y, dtype=int)
        self.classes_ = np.array([0, 1])
        prep = self.preprocessor or TabularPreprocessor()
        self.preprocessor_ = TabularPreprocessor(**prep.get_params()).fit(X)
        Z = self.preprocessor_.transform(X).reset_index(drop=True)
        self.feature_names_in_ = np.asarray(self.preprocessor_.feature_names_out_, dtype=object)
        splits = self._inner_splits(y, times)
        held = np.concatenate([v for _, v in splits])
        y_held = y[held]

        categorical = self.preprocessor_.categorical_features_
        cats, nums = split_columns(Z, categorical)
        held_p: dict[str, np.ndarray] = {}  # held-out probabilities of each candidate
        gbm_runs: dict[str, tuple[dict, np.ndarray, list[int]]] = {}
        shapes = GBM_CANDIDATES if self.learner in ("auto", "gbm") else ()
        for shape in shapes:
            params = gbm_params(int(np.mean([len(f) for f, _ in splits])), shape)
            margins, rounds = [], []
            for fit_rows, valid_rows in splits:
                model = self._gbm(params, categorical).fit(
                    Z.iloc[fit_rows], y[fit_rows], eval_set=(Z.iloc[valid_rows], y[valid_rows])
                )
                margins.append(model.decision_function(Z.iloc[valid_rows]))
                rounds.append(int(model.best_iteration_))
            margin = np.concatenate(margins)
            platt, _ = fit_calibrator(margin, y_held, "platt", self.random_state)
            held_p[shape] = platt.predict(margin)
            gbm_runs[shape] = (params, margin, rounds)

        # the logistic regression: always tuned (it is also the run's reference)
        by_C = self._logistic_held_out(Z, y, splits, cats, nums)
        losses = {C: float(log_loss(y_held, p, labels=[0, 1])) for C, p in by_C.items()}
        self.logistic_C_ = min(losses, key=losses.get)
        self.logistic_ = logistic_reference(cats, nums, C=self.logistic_C_, seed=self.random_state)
        self.logistic_.fit(Z, y)
        if self.learner in ("auto", "logistic"):
            held_p[LOGISTIC] = by_C[self.logistic_C_]
        if self.learner == "auto":  # no signal is a legitimate answer: say so, do not guess
            held_p[PRIOR] = np.concatenate([np.full(len(v), y[f].mean()) for f, v in splits])

        self.selection_, self.selection_se_, self.chosen_ = one_standard_error_choice(
            y_held, held_p
        )
        self.selection_own_se_ = own_standard_errors(y_held, held_p)
        self.calibrator_ = None
        self.calibration_scores_: dict[str, float] = {}
        if self.chosen_ == LOGISTIC:
            self.estimator_ = self.logistic_
        elif self.chosen_ == PRIOR:
            self.estimator_ = PriorModel().fit(Z, y)
        else:
            params, margin, rounds = gbm_runs[self.chosen_]
            params = {**params, "n_estimators": max(1, int(np.mean(rounds)))}  # same shape
            self.estimator_ = self._gbm(params, categorical).fit(Z, y)
            self.calibrator_, self.calibration_scores_ = fit_calibrator(
                margin, y_held, "auto", self.random_state
            )
        logger.info("tabular model: chose %s (held-out log loss %s)", self.chosen_, self.selection_)
        return self

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
            p = self.calibrator_.predict(self.estimator_.decision_function(Z))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def reference_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities of the tuned logistic regression reference, shape ``(n, 2)``."""
        check_is_fitted(self, "logistic_")
        return self.logistic_.predict_proba(self.preprocessor_.transform(X))

    def explain(self, X: pd.DataFrame) -> pd.DataFrame | None:
        """Tree SHAP contributions (log-odds) when the chosen model is a GBM, else ``None``."""
        check_is_fitted(self, "estimator_")
        if self.chosen_ in (LOGISTIC, PRIOR):
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
