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
from sklearn.linear_model import LogisticRegressionCV
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


def logistic_reference(categorical: list[str], numeric: list[str], *, seed: int = 0) -> Pipeline:
    """A tuned, regularised logistic regression (C chosen by inner CV on log loss)."""
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
    model = LogisticRegressionCV(
        Cs=[0.001, 0.01, 0.1, 1.0, 10.0],
        cv=3,
        scoring="neg_log_loss",
        max_iter=2000,
        random_state=seed,
    )
    return Pipeline([("features", features), ("model", model)])


def split_columns(X: pd.DataFrame, categorical: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(categorical, numeric) column lists for ``X`` given the model's categorical features."""
    cats = [c for c in X.columns if c in categorical]
    nums = [c for c in X.columns if c not in categorical]
    return cats, nums
