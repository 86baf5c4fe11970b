"""``DealWinModel``: the probability that an open deal is won, calibrated and explained."""

from __future__ import annotations

from dataclasses import fields

import pandas as pd

from spm_ml.features.custom_fields import CustomField
from spm_ml.features.deals import CATEGORICAL_FEATURES, DealFeatureConfig
from spm_ml.models.gbm import CalibratedGBM
from spm_ml.models.record import TrainingRecord

NON_FEATURE_COLUMNS = ("deal_id", "as_of", "closed_at", "won", "label_known_at")
"""Columns of a snapshot feature frame that identify or label rows; never model inputs."""


class DealWinModel(CalibratedGBM):
    """Calibrated LightGBM over :func:`spm_ml.features.deal_features` output.

    Text columns (the deal feature set's categoricals and any custom text fields) become
    LightGBM categories inside the model; identifiers and labels are never features.
    The hyper-parameters are :class:`CalibratedGBM`'s; the family exists so that deal
    models are recognisable in code and in the registry, and can diverge when they need to.
    """


def model_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns from a feature frame: everything but ids, times and labels.

    Counts become floats: a count can be missing at serving time, and MLflow's schema
    enforcement rejects missing values in integer columns.
    """
    data = {}
    for column in features.columns:
        if column in NON_FEATURE_COLUMNS or column == "in_context":
            continue
        values = features[column]
        if pd.api.types.is_integer_dtype(values.dtype):
            values = values.astype("float64")
        data[column] = values
    return pd.DataFrame(data, index=features.index)


def categorical_columns(features: pd.DataFrame) -> tuple[str, ...]:
    """Text columns of a feature frame (the known categoricals and text custom fields)."""
    return tuple(
        c
        for c in features.columns
        if c in CATEGORICAL_FEATURES or not pd.api.types.is_numeric_dtype(features[c].dtype)
    )


def feature_config_of(record: TrainingRecord | None) -> DealFeatureConfig:
    """The feature configuration a deal model was trained with (default for old models)."""
    if record is None:
        return DealFeatureConfig()
    known = {f.name for f in fields(DealFeatureConfig)}
    values = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in record.feature_config.items()
        if k in known
    }
    return DealFeatureConfig(**values)


def custom_fields_of(record: TrainingRecord | None) -> list[CustomField] | None:
    """The custom fields a model's training screen accepted (``None``: screen again)."""
    if record is None or "custom_fields" not in record.extra:
        return None
    return [CustomField(**f) for f in record.extra["custom_fields"]]
