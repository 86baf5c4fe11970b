"""Scoring deals with a fitted model: probabilities and top drivers, for API and batch alike.

Both the service and the batch job go through :class:`DealScorer`, so an explained score
means the same thing wherever it is read.
"""

from __future__ import annotations

import json

import pandas as pd

from spm_ml.data.overlay import with_deal
from spm_ml.data.tables import Tables
from spm_ml.features.deals import DealFeatureConfig, deal_features, open_deals_at
from spm_ml.models.deal_win import model_inputs
from spm_ml.models.gbm import CalibratedGBM


class DealScorer:
    """A fitted deal-win model plus the organisation context its features need."""

    def __init__(
        self,
        model: CalibratedGBM,
        context: Tables,
        feature_config: DealFeatureConfig | None = None,
    ) -> None:
        self.model = model
        self.context = context
        self.feature_config = feature_config or DealFeatureConfig()

    def score(self, snapshots: pd.DataFrame, top_k: int = 3, tables: Tables | None = None):
        """Probability and ``top_k`` drivers for each ``(deal_id, as_of)`` snapshot."""
        features = deal_features(tables or self.context, snapshots, self.feature_config)
        X = model_inputs(features)
        out = features[["deal_id", "as_of"]].copy()
        out["probability"] = self.model.predict_proba(X)[:, 1]
        if top_k:
            out["drivers"] = self.model.top_drivers(X, k=top_k)
        return out

    def score_open_deals(self, as_of: pd.Timestamp, top_k: int = 3) -> pd.DataFrame:
        """Every deal open at ``as_of``, scored and explained, with its rep and amount."""
        snapshots = open_deals_at(self.context, as_of)
        scored = self.score(snapshots, top_k)
        deals = self.context.deals.set_index("deal_id")
        scored.insert(1, "rep_id", deals.loc[scored["deal_id"], "rep_id"].to_numpy())
        return scored

    def score_posted_deal(
        self,
        deal: dict,
        as_of: pd.Timestamp,
        *,
        history=(),
        activities=(),
        emails=(),
        top_k: int = 3,
    ) -> dict:
        """Score one deal described by a client (see :func:`spm_ml.data.overlay.with_deal`)."""
        tables = with_deal(
            self.context, deal, history=history, activities=activities, emails=emails
        )
        snapshot = pd.DataFrame({"deal_id": [str(deal["deal_id"])], "as_of": [as_of]})
        row = self.score(snapshot.astype({"as_of": "datetime64[ns]"}), top_k, tables).iloc[0]
        return {
            "deal_id": row["deal_id"],
            "probability": float(row["probability"]),
            "drivers": row["drivers"] if top_k else [],
        }


def flatten_drivers(scored: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
    """Driver lists as flat columns ``driver_1``, ``driver_1_value``, ``driver_1_shap``...

    Flat columns read well in a spreadsheet and in Parquet; ``drivers_json`` keeps the
    whole list for programs.
    """
    out = scored.drop(columns=["drivers"]).copy()
    for i in range(top_k):
        out[f"driver_{i + 1}"] = [
            d[i]["feature"] if len(d) > i else None for d in scored["drivers"]
        ]
        out[f"driver_{i + 1}_value"] = [
            None if len(d) <= i or d[i]["value"] is None else str(d[i]["value"])
            for d in scored["drivers"]
        ]
        out[f"driver_{i + 1}_shap"] = [
            d[i]["shap"] if len(d) > i else None for d in scored["drivers"]
        ]
    out["drivers_json"] = [json.dumps(d) for d in scored["drivers"]]
    return out
