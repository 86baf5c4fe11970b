"""The simple references trained beside every model, so each run shows what the model adds.

- :class:`PriorModel` predicts the training win rate for everyone: any model that cannot
  beat it has learned nothing.
- :func:`logistic_reference` is a regularised logistic regression on the same features
  (one-hot categories, median-imputed and scaled numbers with missing-value indicators).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


class PriorModel(ClassifierMixin, BaseEstimator):
    """Predicts the positive rate seen in training for every row."""

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> PriorModel:
        self.rate_ = float(np.mean(y))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.full(len(X), self.rate_)
        return np.column_stack([1 - p, p])


class _TextCategories(BaseEstimator):
    """Categorical columns as plain strings with a marker for missing (OneHotEncoder input)."""

    def fit(self, X: pd.DataFrame, y=None) -> _TextCategories:
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X).astype("object")
        return frame.where(frame.notna(), "<missing>").astype(str).to_numpy()


def logistic_reference(
    categorical: list[str], numeric: list[str], *, C: float = 1.0, seed: int = 0
) -> Pipeline:
    """A regularised logistic regression with inverse regularisation strength ``C``."""
    numeric_steps = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )
    categorical_steps = make_pipeline(
        _TextCategories(),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20),
    )
    features = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        sparse_threshold=0.0,
    )
    model = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    return Pipeline([("features", features), ("model", model)])


def tuned_logistic_reference(
    X_fit: pd.DataFrame,
    y_fit: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    categorical: tuple[str, ...],
    *,
    Cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
    seed: int = 0,
) -> tuple[Pipeline, float]:
    """Choose ``C`` by log loss on the (later) validation fold, then refit on fit + valid.

    The reference gets the same time-respecting tuning data as the model, so the gap between
    them is the model's, not the tuning's.
    """
    cats, nums = split_columns(X_fit, categorical)
    # encode once, then try each C on the same matrices
    encoder = logistic_reference(cats, nums, seed=seed).named_steps["features"].fit(X_fit)
    A_fit, A_valid = encoder.transform(X_fit), encoder.transform(X_valid)
    losses = {}
    for C in Cs:
        candidate = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(A_fit, y_fit)
        losses[C] = log_loss(y_valid, candidate.predict_proba(A_valid)[:, 1], labels=[0, 1])
    best = min(losses, key=losses.get)
    X_all = pd.concat([X_fit, X_valid])
    y_all = np.concatenate([np.asarray(y_fit), np.asarray(y_valid)])
    return logistic_reference(cats, nums, C=best, seed=seed).fit(X_all, y_all), best


def split_columns(X: pd.DataFrame, categorical: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(categorical, numeric) column lists for ``X`` given the model's categorical features."""
    cats = [c for c in X.columns if c in categorical]
    nums = [c for c in X.columns if c not in categorical]
    return cats, nums
