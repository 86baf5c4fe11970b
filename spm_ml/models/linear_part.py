"""A fitted logistic regression read as arrays: the linear half of a blended model.

:class:`~spm_ml.models.gbm.CalibratedGBM` with ``linear_blend=True`` averages its calibrated
log-odds with those of the project's tuned logistic regression
(:func:`~spm_ml.models.references.tuned_logistic_reference`).  Scoring reads the booster's
float matrix, so the regression is taken out of its scikit-learn pipeline into arrays that
act on that matrix directly: the same numbers, without a frame per request, and with exact
per-feature contributions (a linear model's SHAP values, against the training mean).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import Pipeline

from spm_ml.errors import TrainingError


@dataclass(frozen=True)
class LinearPart:
    """``margin(x) = intercept + sum_j contribution_j(x)``, for numeric inputs.

    Each input is imputed with its training median (plus, where training saw it missing, a
    missing-value indicator), standardised, and weighted; a feature's contribution sums its
    value's and its indicator's terms.  Standardised terms have training mean 0, so the
    contributions are the linear model's SHAP values.
    """

    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    coefficients: np.ndarray
    indicator_of: np.ndarray
    """For each indicator column, the input column it flags as missing."""
    indicator_means: np.ndarray
    indicator_scales: np.ndarray
    indicator_coefficients: np.ndarray
    intercept: float

    @classmethod
    def of(cls, pipeline: Pipeline, n_features: int) -> LinearPart:
        """Read a fitted :func:`~spm_ml.models.references.logistic_reference` pipeline whose
        inputs were all numeric, in the order of the booster's matrix."""
        features = pipeline.named_steps["features"]
        if any(name == "categorical" and len(cols) for name, _, cols in features.transformers_):
            raise TrainingError("a linear blend reads numeric inputs only (no categories)")
        numeric = features.named_transformers_["numeric"]
        imputer, scaler = numeric.steps[0][1], numeric.steps[1][1]
        model = pipeline.named_steps["model"]
        coefficients = model.coef_[0]
        indicators = (
            np.asarray(imputer.indicator_.features_, dtype=int)
            if imputer.indicator_ is not None
            else np.empty(0, dtype=int)
        )
        if len(coefficients) != n_features + len(indicators):
            raise TrainingError("the linear blend's regression does not match the model's inputs")
        return cls(
            medians=np.asarray(imputer.statistics_, dtype=float),
            means=scaler.mean_[:n_features].astype(float),
            scales=scaler.scale_[:n_features].astype(float),
            coefficients=coefficients[:n_features].astype(float),
            indicator_of=indicators,
            indicator_means=scaler.mean_[n_features:].astype(float),
            indicator_scales=scaler.scale_[n_features:].astype(float),
            indicator_coefficients=coefficients[n_features:].astype(float),
            intercept=float(model.intercept_[0]),
        )

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per input column, its term of the log-odds, shape ``(rows, columns)``."""
        missing = np.isnan(matrix)
        filled = np.where(missing, self.medians, matrix)
        terms = (filled - self.means) / self.scales * self.coefficients
        if len(self.indicator_of):
            flags = missing[:, self.indicator_of].astype(float)
            indicator_terms = (
                (flags - self.indicator_means) / self.indicator_scales * self.indicator_coefficients
            )
            np.add.at(terms.T, self.indicator_of, indicator_terms.T)
        return terms

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        """The regression's log-odds of each row."""
        return self.intercept + self.contributions(matrix).sum(axis=1)
