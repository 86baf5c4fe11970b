"""``DealWinModel``: the probability that an open deal is won, calibrated and explained."""

from __future__ import annotations

import pandas as pd

from spm_ml.features.deals import CATEGORICAL_FEATURES
from spm_ml.models.gbm import CalibratedGBM

NON_FEATURE_COLUMNS = ("deal_id", "as_of", "closed_at", "won")
"""Columns of a snapshot feature frame that identify or label rows; never model inputs."""


class DealWinModel(CalibratedGBM):
    """Calibrated LightGBM over :func:`spm_ml.features.deal_features` output.

    Text columns (the deal feature set's categoricals and any custom text fields) become
    LightGBM categories inside the model; identifiers and labels are never features.
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
        calibration: str = "auto",
        categorical_features: tuple[str, ...] | None = None,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        super().__init__(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            subsample=subsample,
            colsample_bytree=colsample_bytree,
            reg_lambda=reg_lambda,
            early_stopping_rounds=early_stopping_rounds,
            calibration=calibration,
            categorical_features=categorical_features,
            n_jobs=n_jobs,
            random_state=random_state,
        )


def model_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns from a feature frame: everything but ids, times and labels.

    Counts become floats: a count can be missing at serving time, and MLflow's schema
    enforcement rejects missing values in integer columns.
    """
    X = features.drop(columns=[c for c in NON_FEATURE_COLUMNS if c in features.columns])
    counts = [c for c in X.columns if pd.api.types.is_integer_dtype(X[c].dtype)]
    return X.astype({c: "float64" for c in counts})


def categorical_columns(features: pd.DataFrame) -> tuple[str, ...]:
    """Text columns of a feature frame (the known categoricals and text custom fields)."""
    return tuple(
        c
        for c in features.columns
        if c in CATEGORICAL_FEATURES or not pd.api.types.is_numeric_dtype(features[c].dtype)
    )
