"""A calibrated, explainable LightGBM classifier: the core every spm-ml model family shares.

Why a wrapper rather than ``lightgbm.LGBMClassifier`` directly:

- **Categoricals are the model's business.**  Text columns are cast to ``category`` with the
  categories frozen at fit time (``categories_``), inside ``fit`` and ``predict``.  Callers
  pass plain frames; an unseen value becomes missing instead of silently taking another
  category's code (LightGBM issue 5244, MLflow issue 12910).
- **Early stopping and calibration on held-out data** from the caller's time-based split.
  The held-out fold then joins the training rows (``refit=True``): the freshest labelled
  history is the most valuable, and the references the model is compared with are refit on
  it too.  The booster is refit on both folds for the early-stopped number of rounds scaled
  to the larger set, and the calibrator learns from cross-fitted margins (deal-grouped
  folds, so snapshots of one deal never sit on both sides), i.e. from boosters that never
  saw the rows they score.
- **Explanations from the same booster**: exact Tree SHAP, LightGBM's ``pred_contrib``
  numbers computed by :mod:`spm_ml.models.fast_shap` (tables per group of leaves, numba
  over all cores: 8x bare ``pred_contrib``'s throughput on the deal model), ``pred_contrib``
  itself for a booster those tables do not cover.

It follows the scikit-learn estimator contract (hyper-parameters in ``__init__``, learned
state ending in ``_``), so ``clone`` and cross-validation work.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from spm_ml.errors import TrainingError
from spm_ml.models.calibration import fit_calibrator
from spm_ml.models.fast_shap import TreeShap
from spm_ml.models.linear_part import LinearPart

logger = logging.getLogger(__name__)

Columns = Mapping[str, np.ndarray]
"""Feature values by column name, one array per column, all of one length."""


class CalibratedGBM(ClassifierMixin, BaseEstimator):
    """LightGBM binary classifier with native categoricals, early stopping and calibration.

    Parameters
    ----------
    categorical_features:
        Columns to treat as categories; ``None`` means every non-numeric column.
    early_stopping_metric:
        LightGBM metric watched on ``eval_set``: ``"auc"`` (default) stops when the ranking
        stops improving, the booster's only job since calibration sets the probability
        scale; ``"binary_logloss"`` also stops on overconfidence that calibration would fix.
    calibration:
        ``"auto"`` (isotonic or Platt, whichever has the lower held-out Brier score),
        ``"isotonic"``, ``"platt"`` or ``"none"``.
    linear_blend:
        Serve the mean of the booster's Platt-calibrated log-odds and those of the project's
        tuned logistic regression fitted on the same rows (needs ``eval_set``, Platt
        calibration and numeric inputs); the regression alone if the booster's held-out
        margins do not rank the positives higher.  On a few dozen positives neither learner wins
        reliably and their mean ranks better than either (attrition,
        ``docs/model-cards/attrition.md``); the drivers stay exact: each feature's term is
        the mean of its two log-odds terms.
    refit:
        After early stopping, refit on train + eval rows and calibrate on ``calibration_folds``
        cross-fitted margins; ``False`` keeps the booster trained on the train rows only and
        calibrates on the eval rows' margins.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 600,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        early_stopping_rounds: int = 50,
        early_stopping_metric: str = "auc",
        calibration: str = "auto",
        refit: bool = True,
        calibration_folds: int = 5,
        categorical_features: tuple[str, ...] | None = None,
        n_jobs: int = 2,
        random_state: int = 0,
        linear_blend: bool = False,
    ) -> None:
        self.linear_blend = linear_blend
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.early_stopping_metric = early_stopping_metric
        self.calibration = calibration
        self.refit = refit
        self.calibration_folds = calibration_folds
        self.categorical_features = categorical_features
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------------------
    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        *,
        eval_set: tuple[pd.DataFrame, np.ndarray] | None = None,
        groups: np.ndarray | None = None,
        eval_groups: np.ndarray | None = None,
    ) -> CalibratedGBM:
        """Fit on ``(X, y)``; early-stop and calibrate with ``eval_set`` (later in time).

        ``groups``/``eval_groups`` name the entity of each row (a deal for snapshots), so the
        cross-fitted calibration folds never split one entity.  Without ``eval_set`` the
        booster runs all ``n_estimators`` rounds uncalibrated.
        """
        y = _binary(y)
        for cache in ("_layout", "_tree_shap"):  # a refit's booster and columns are new
            self.__dict__.pop(cache, None)
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        categorical = self.categorical_features
        if categorical is None:
            categorical = tuple(
                c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c].dtype)
            )
        self.categorical_features_ = tuple(c for c in categorical if c in X.columns)
        self.categories_ = {
            c: sorted(pd.Series(X[c]).dropna().astype(str).unique().tolist())
            for c in self.categorical_features_
        }
        self.classes_ = np.array([0, 1])
        self.calibrator_ = None
        self.linear_ = None
        self.calibration_scores_: dict[str, float] = {}
        if self.linear_blend and (eval_set is None or self.calibration != "platt"):
            raise TrainingError("a linear blend needs an eval_set and Platt calibration")
        if eval_set is None:
            self.booster_ = self._train(self._prepare(X), y, self.n_estimators)
            self.best_iteration_ = self.early_stopping_iteration_ = self.n_estimators
            return self

        X_val, y_val = eval_set[0], _binary(eval_set[1])
        train, valid = self._prepare(X), self._prepare(X_val)
        self.booster_ = self._train(train, y, self.n_estimators, valid=(valid, y_val))
        self.early_stopping_iteration_ = self.booster_.best_iteration or self.n_estimators
        self.best_iteration_ = self.early_stopping_iteration_
        if not self.refit:
            if self.calibration != "none":
                self.calibrator_, self.calibration_scores_ = fit_calibrator(
                    self.decision_function(X_val), y_val, self.calibration, self.random_state
                )
            return self._fit_linear_part(train, y, valid, y_val)

        both = pd.concat([train, valid], ignore_index=True)
        y_both = np.concatenate([y, y_val])
        rounds = max(1, round(self.early_stopping_iteration_ * len(both) / len(train)))
        if self.calibration != "none":
            entities = _groups(groups, eval_groups, len(train), len(valid))
            margins = self._cross_fitted_margins(both, y_both, entities, rounds)
            self.calibrator_, self.calibration_scores_ = fit_calibrator(
                margins, y_both, self.calibration, self.random_state
            )
        self.booster_ = self._train(both, y_both, rounds)
        self.best_iteration_ = rounds
        return self._fit_linear_part(train, y, valid, y_val)

    def _fit_linear_part(
        self, train: pd.DataFrame, y: np.ndarray, valid: pd.DataFrame, y_val: np.ndarray
    ) -> CalibratedGBM:
        """With ``linear_blend``, the tuned logistic regression (C chosen on the eval rows,
        refitted on both, as the reference is) read into :class:`LinearPart`."""
        if not self.linear_blend:
            return self
        from spm_ml.models.references import tuned_logistic_reference

        if self.categorical_features_:
            raise TrainingError(
                "a linear blend reads numeric inputs only; categorical: "
                + ", ".join(self.categorical_features_)
            )
        pipeline, _ = tuned_logistic_reference(train, y, valid, y_val, (), seed=self.random_state)
        self.linear_ = LinearPart.of(pipeline, len(self.feature_names_in_))
        return self

    def _cross_fitted_margins(
        self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, rounds: int
    ) -> np.ndarray:
        """Each row's margin from a booster trained without its group (same shape, scaled
        rounds), so calibration sees scores like those of unseen deals."""
        from sklearn.model_selection import GroupKFold

        k = self.calibration_folds
        if len(np.unique(groups)) < k:
            raise TrainingError(
                f"cross-fitted calibration needs at least {k} distinct groups, "
                f"got {len(np.unique(groups))}"
            )
        fold_rounds = max(1, round(rounds * (k - 1) / k))
        margins = np.empty(len(X))
        folds = GroupKFold(n_splits=k, shuffle=True, random_state=self.random_state)
        for fit_rows, held_rows in folds.split(X, y, groups):
            booster = self._train(X.iloc[fit_rows], y[fit_rows], fold_rounds)
            margins[held_rows] = booster.predict(X.iloc[held_rows], raw_score=True)
        return margins

    def _train(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        rounds: int,
        valid: tuple[pd.DataFrame, np.ndarray] | None = None,
    ) -> lgb.Booster:
        """One LightGBM run on prepared frames; early stopping when ``valid`` is given."""
        train = lgb.Dataset(X, label=y, free_raw_data=False)
        valid_sets, callbacks = [], []
        if valid is not None:
            valid_sets = [lgb.Dataset(valid[0], label=valid[1], reference=train)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        return lgb.train(
            self._params(),
            train,
            num_boost_round=rounds,
            valid_sets=valid_sets,
            callbacks=callbacks,
        )

    def _params(self) -> dict:
        return {
            "objective": "binary",
            "metric": self.early_stopping_metric,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "num_threads": self.n_jobs,
            "seed": self.random_state,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
            "cat_smooth": 10,
            "min_data_per_group": 50,
        }

    # -- prediction ----------------------------------------------------------------------
    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw log-odds of the booster (before calibration)."""
        check_is_fitted(self, "booster_")
        return self._margin(self._matrix(X))

    def _margin(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster_.predict(
            matrix, raw_score=True, num_iteration=self.best_iteration_, **_THREADS(matrix)
        )

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape ``(n, 2)``."""
        check_is_fitted(self, "booster_")
        matrix = self._matrix(X)
        return self._probability(self._margin(matrix), matrix)

    def _probability(self, margin: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        if self._linear() is not None:
            p = 1.0 / (1.0 + np.exp(-self._blended_margin(margin, matrix)))
        elif self.calibrator_ is not None:
            p = self.calibrator_.predict(margin)
        else:
            p = 1.0 / (1.0 + np.exp(-margin))
        return np.column_stack([1.0 - p, p])

    def _linear(self) -> LinearPart | None:
        return self.__dict__.get("linear_")  # models saved before the blend have none

    def _platt(self) -> tuple[float, float]:
        """Slope and intercept of the Platt map: calibrated log-odds = a * margin + b."""
        model = self.calibrator_.model
        return float(model.coef_[0, 0]), float(model.intercept_[0])

    def _booster_weight(self) -> float:
        """The booster's share of the blended log-odds: one half, or none when its held-out
        margins did not rank the positives higher (the Platt fit kept no slope, see
        :mod:`spm_ml.models.calibration`): the regression then serves alone, at full scale."""
        return 0.5 if self._platt()[0] > 1e-6 else 0.0

    def _blended_margin(self, margin: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        a, b = self._platt()
        w = self._booster_weight()
        return w * (a * margin + b) + (1 - w) * self._linear().margin(matrix)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def explain(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact Tree SHAP contributions in log-odds, one column per feature plus ``bias``.

        Rows sum to the booster's raw margin.  Calibration is monotone, so the ranking of
        drivers is the ranking for the calibrated probability too.  With ``linear_blend``
        rows sum to the served log-odds: each term is the weighted mean of the booster's
        (scaled by the Platt slope) and the regression's.
        """
        check_is_fitted(self, "booster_")
        contributions = self._contributions(self._matrix(X))
        columns = [*self.feature_names_in_, "bias"]
        return pd.DataFrame(contributions, columns=columns, index=X.index)

    def _contributions(self, matrix: np.ndarray) -> np.ndarray:
        explainer = self._explainer()
        if explainer is None:
            trees = self.booster_.predict(
                matrix, pred_contrib=True, num_iteration=self.best_iteration_, **_THREADS(matrix)
            )
        else:
            trees = explainer.contributions(matrix)
        linear = self._linear()
        if linear is None:
            return trees
        a, b = self._platt()
        w = self._booster_weight()
        blended = w * a * trees
        blended[:, :-1] += (1 - w) * linear.contributions(matrix)
        blended[:, -1] += w * b + (1 - w) * linear.intercept
        return blended

    def _explainer(self) -> TreeShap | None:
        """The booster's fast exact Tree SHAP tables (:mod:`spm_ml.models.fast_shap`), built
        on first use and kept (not pickled); ``None`` when they do not cover the booster,
        which is then explained by ``pred_contrib``."""
        if "_tree_shap" not in self.__dict__:
            self.__dict__["_tree_shap"] = TreeShap.of(self.booster_, self.best_iteration_)
        return self.__dict__["_tree_shap"]

    def warm_up(self) -> None:
        """Build the explainer's tables and run its compiled kernels once (numba compiles
        them on first use: seconds on a new machine, under a second from its disk cache),
        so that a service's first request does not pay for it."""
        check_is_fitted(self, "booster_")
        self._contributions(np.full((1, len(self.feature_names_in_)), np.nan))

    def top_drivers(self, X: pd.DataFrame, k: int = 3) -> list[list[dict]]:
        """The ``k`` features that moved each row's score most, with value and direction."""
        return self.score_and_explain(X, k)[1]

    def score_and_explain(
        self, X: pd.DataFrame | Columns, k: int = 3, explain: int | None = None
    ) -> tuple[np.ndarray, list[list[dict]]]:
        """Calibrated probabilities and the top ``k`` drivers of each row, from one matrix.

        What the service and the batch job call, so their outputs are the same numbers.
        ``X`` is a frame or, for a few rows, the feature columns as arrays (:data:`Columns`):
        the service skips building a frame it would only take apart again.  ``explain``:
        only the first ``explain`` rows get drivers (the others an empty list), as coaching
        needs for its re-scored what-if rows: scored in the same call, never explained.
        """
        check_is_fitted(self, "booster_")
        matrix = self._matrix(X)
        n = len(matrix) if explain is None else max(0, min(explain, len(matrix)))
        if k <= 0:
            return self._probability(self._margin(matrix), matrix)[:, 1], [[] for _ in matrix]
        contributions = self._contributions(matrix[:n])
        margin = self._margin(matrix)
        values = contributions[:, :-1]
        order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
        drivers = _drivers(X, self.feature_names_in_, values, order)
        drivers += [[] for _ in range(len(matrix) - n)]
        return self._probability(margin, matrix)[:, 1], drivers

    # -- internals -----------------------------------------------------------------------
    def _prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """Select the training columns in order and apply the frozen categories (training)."""
        self._check_columns(X)
        out = X.loc[:, list(self.feature_names_in_)].copy()
        for column in out.columns:
            if column in self.categories_:
                text = out[column].astype("object").where(out[column].notna())
                text = text.map(lambda v: v if v is None or pd.isna(v) else str(v))
                out[column] = pd.Categorical(text, categories=self.categories_[column])
            else:
                out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
        return out

    def _matrix(self, X: pd.DataFrame | Columns) -> np.ndarray:
        """The booster's input as one float matrix: categories as their frozen codes.

        Equal to what LightGBM derives from :meth:`_prepare`'s frame (a category's code is
        its position in ``categories_``, unseen or missing values are NaN), without
        building categoricals: scoring a handful of rows costs microseconds, not the
        milliseconds of pandas' per-column conversions.
        """
        self._check_columns(X)
        layout = self.__dict__.get("_layout")
        if layout is None:
            layout = self.__dict__["_layout"] = _MatrixLayout.of(self)
        if not isinstance(X, pd.DataFrame):
            return layout.matrix_of_columns(X)
        matrix = np.empty((len(X), len(self.feature_names_in_)), dtype=np.float64)
        if layout.numeric:
            numbers = X[layout.numeric]
            try:
                matrix[:, layout.numeric_at] = numbers.to_numpy(np.float64, na_value=np.nan)
            except (TypeError, ValueError):  # text in a numeric column: missing, as training
                matrix[:, layout.numeric_at] = numbers.apply(
                    pd.to_numeric, errors="coerce"
                ).to_numpy(np.float64, na_value=np.nan)
        if layout.categorical:
            for name, position, lookup in zip(
                layout.categorical, layout.categorical_at, layout.codes, strict=True
            ):
                matrix[:, position] = _category_codes(X[name], lookup)
        return matrix

    def _check_columns(self, X: pd.DataFrame | Columns) -> None:
        present = set(X.keys())
        missing = [c for c in self.feature_names_in_ if c not in present]
        if missing:
            raise TrainingError(
                f"input lacks {len(missing)} feature column(s) the model was trained on: "
                f"{', '.join(missing[:10])}"
            )

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_layout", None)  # caches, rebuilt on first use
        state.pop("_tree_shap", None)
        return state


@dataclass(frozen=True)
class _MatrixLayout:
    """Where each input column goes in the booster's matrix, and the category codes."""

    numeric: list[str]
    numeric_at: list[int]
    categorical: list[str]
    categorical_at: list[int]
    codes: list[dict[str, float]]

    @classmethod
    def of(cls, model: CalibratedGBM) -> _MatrixLayout:
        names = list(model.feature_names_in_)
        cats = [c for c in names if c in model.categories_]
        nums = [c for c in names if c not in model.categories_]
        return cls(
            numeric=nums,
            numeric_at=[names.index(c) for c in nums],
            categorical=cats,
            categorical_at=[names.index(c) for c in cats],
            codes=[{v: float(i) for i, v in enumerate(model.categories_[c])} for c in cats],
        )

    def matrix_of_columns(self, columns: Columns) -> np.ndarray:
        """The matrix from feature arrays, each converted as a frame's column would be:
        numbers as float64 (text in a numeric column as missing), categories by code."""
        n = len(next(iter(columns.values()))) if columns else 0
        matrix = np.empty((n, len(self.numeric) + len(self.categorical)), dtype=np.float64)
        for name, position in zip(self.numeric, self.numeric_at, strict=True):
            values = np.asarray(columns[name])
            if values.dtype.kind not in "fiub":
                values = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
            matrix[:, position] = values
        for name, position, lookup in zip(
            self.categorical, self.categorical_at, self.codes, strict=True
        ):
            matrix[:, position] = _category_codes(columns[name], lookup)
        return matrix


def _drivers(
    X: pd.DataFrame | Columns, names: np.ndarray, values: np.ndarray, order: np.ndarray
) -> list[list[dict]]:
    """Each row's drivers (``order``: its top columns) as dicts: feature, the value as the
    caller gave it, SHAP value and direction.

    Built column by column, not row by row: a driver column's values are read only at the
    rows where it is a driver, numbers converted in one ``tolist`` (a million rows' drivers
    in seconds, where a per-row loop over whole object columns took over a minute)."""
    with _no_cycle_collection():
        n, k = order.shape
        rows = np.arange(n)[:, None]
        shap = values[rows, order]
        given = np.empty((n, k), dtype=object)
        for column in np.unique(order):
            at_row, at_rank = np.nonzero(order == column)
            given[at_row, at_rank] = _plain_values(X[names[column]], at_row)
        features = names[order].tolist()
        directions = np.where(shap > 0, "raises", "lowers").tolist()
        return [
            [
                {"feature": f, "value": v, "shap": s, "direction": d}
                for f, v, s, d in zip(*row, strict=True)
            ]
            for row in zip(features, given.tolist(), shap.tolist(), directions, strict=True)
        ]


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while millions of small dicts and lists are built: they
    hold no cycles, and its passes over a growing heap took half the time of building them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plain_values(column: pd.Series | np.ndarray, rows: np.ndarray) -> list:
    """``_plain`` of ``column``'s values at ``rows``, as a list: float, integer and boolean
    arrays converted in one ``tolist`` (NaN as ``None``), anything else value by value."""
    if isinstance(column, pd.Series):
        if column.dtype.kind in "iubf" and isinstance(column.dtype, np.dtype):
            taken = column.to_numpy()[rows]
        else:  # as an object array gives them (timestamps, text, pandas' missing values)
            return [_plain(v) for v in np.asarray(column.iloc[rows], dtype=object)]
    else:
        taken = np.asarray(column)[rows]
    if taken.dtype.kind in "iub":
        return taken.tolist()
    if taken.dtype.kind == "f":
        plain = taken.astype(np.float64).tolist()
        for i in np.flatnonzero(np.isnan(taken)):
            plain[i] = None
        return plain
    return [_plain(v) for v in np.asarray(taken, dtype=object)]


def _category_codes(values: pd.Series | np.ndarray, lookup: dict[str, float]) -> np.ndarray:
    """Each value's frozen category code (NaN: missing or unseen), text as trained.

    Many rows are looked up once per distinct value (``pd.factorize``) when every distinct
    value is text: text never hashes equal to anything but the same text, so that is the
    per-value lookup's answer.  Other values (numbers in a text column, where ``1`` and
    ``1.0`` are different categories to ``_text`` but one to a hash) go value by value."""
    values = np.asarray(values, dtype=object)
    if len(values) > 64:
        codes, distinct = pd.factorize(values)
        if all(isinstance(v, str) for v in distinct):
            found = np.array([lookup.get(v, np.nan) for v in distinct] + [np.nan])
            return found[codes]  # code -1 (missing) reads the trailing NaN
    return np.array(
        [lookup.get(v if isinstance(v, str) else _text(v), np.nan) for v in values],
        dtype=np.float64,
    )


def _THREADS(rows) -> dict:
    """One thread for small batches: LightGBM's thread start-up costs more than the work."""
    return {"num_threads": 1} if len(rows) <= 256 else {}


def _text(value: object) -> object:
    """A category value as the text it was trained on (missing stays missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _groups(
    groups: np.ndarray | None, eval_groups: np.ndarray | None, n_train: int, n_eval: int
) -> np.ndarray:
    """One entity label per row of train + eval; rows without one are their own group."""
    if (groups is None) != (eval_groups is None):
        raise TrainingError("give groups for both the training and the evaluation rows, or none")
    if groups is None:
        return np.arange(n_train + n_eval)
    both = np.concatenate([np.asarray(groups), np.asarray(eval_groups)])
    if len(both) != n_train + n_eval:
        raise TrainingError(
            f"groups cover {len(both)} rows but training + evaluation rows number "
            f"{n_train + n_eval}"
        )
    return pd.factorize(both)[0]


def _binary(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise TrainingError(f"target must be 0/1, got values {sorted(map(str, values))[:5]}")
    if len(values) < 2:
        raise TrainingError("target has a single class; need both outcomes to learn from")
    return y.astype(int)


def _plain(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value if isinstance(value, (int, float, str, bool)) else str(value)
