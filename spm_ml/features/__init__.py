"""Point-in-time features: pure functions ``(tables, as_of) -> DataFrame``."""

from __future__ import annotations

from spm_ml.features.asof import EventIndex
from spm_ml.features.deals import (
    CATEGORICAL_FEATURES,
    FEATURE_SET_VERSION,
    DealFeatureConfig,
    deal_features,
    open_deals_at,
)
from spm_ml.features.snapshots import deal_snapshots

__all__ = [
    "CATEGORICAL_FEATURES",
    "FEATURE_SET_VERSION",
    "DealFeatureConfig",
    "EventIndex",
    "deal_features",
    "deal_snapshots",
    "open_deals_at",
]
