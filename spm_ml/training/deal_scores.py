"""Deal-win probabilities as a deal model could have given them then, for models built on top.

Quota risk reads each rep's pipeline weighted by win probability.  Scoring past pipeline with
a deal model that trained on those deals would hand the rep model their outcomes, so here
every deal is scored by a model that never saw it and never saw a label known after
``cutoff`` (the rep model's test start):

- the pool is the deal-win training snapshots whose label was known before ``cutoff``;
- deals are split into ``folds`` groups by a stable hash of their id;
- the model of fold k trains on the pool's deals outside group k (early-stopped and
  calibrated on its latest 20% of rows) and scores every requested row of group k's deals.

Test-window pipeline is then scored by models trained on older labels only, as in
production; training-window pipeline out of fold.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.snapshots import DEFAULT_HORIZON_DAYS, deal_snapshots
from spm_ml.models.deal_win import DealWinModel, categorical_columns, model_inputs

logger = logging.getLogger(__name__)

OUT_OF_FOLD_MODEL = {"learning_rate": 0.1, "n_estimators": 300, "early_stopping_rounds": 30}
"""Faster settings than a deal-win release: these models only weight pipeline, three times."""


def deal_fold(deal_ids: pd.Series | np.ndarray, folds: int) -> np.ndarray:
    """Stable fold of each deal (CRC32 of its id): the same deal, the same fold, every run."""
    return np.array(
        [zlib.crc32(str(d).encode()) % folds for d in np.asarray(deal_ids)], dtype=np.int64
    )


def out_of_fold_probabilities(
    tables: Tables,
    rows: pd.DataFrame,
    row_features: pd.DataFrame,
    *,
    cutoff: pd.Timestamp,
    config: DealFeatureConfig,
    context: DealContext,
    folds: int = 3,
    seed: int = 0,
    model_params: dict | None = None,
    every_days: int = 14,
    mature_labels: bool = False,
) -> np.ndarray:
    """Win probability of each ``rows`` deal snapshot (``deal_id``, ``as_of``) from a model
    that never trained on that deal nor on a label known at or after ``cutoff``.

    ``row_features`` are ``rows``' deal features (row-aligned).  The pool is the deal-win
    snapshot grid every ``every_days`` (a coarser grid than deal win's own: neighbouring
    weekly rows of a deal add little, and three models are fitted).

    ``mature_labels``: keep only snapshots whose whole horizon ended before ``cutoff``.  A
    label known earlier belongs to a deal that closed early, and the deals that close early
    are not a fair sample of those open then (on the simulated organisation, of 864 deals
    open in the middle of 2025Q3 the blind models expected 192 wins within the horizon where
    142 came, 173 with mature labels only); the price is the latest horizon's rows.
    """
    pool = deal_snapshots(tables, every_days=every_days)
    known = pool["label_known_at"]
    if mature_labels:
        known = pool["as_of"] + pd.Timedelta(days=DEFAULT_HORIZON_DAYS)
    pool = pool[pool["won"].notna() & (known < cutoff)].reset_index(drop=True)
    out = np.full(len(rows), np.nan)
    if pool.empty or pool["won"].nunique() < 2:
        logger.warning("no labelled deal history before %s: pipeline left unweighted", cutoff)
        return out
    X_pool = model_inputs(deal_features(tables, pool, config, context))
    y_pool = pool["won"].to_numpy(dtype=int)
    X_rows = model_inputs(row_features)
    pool_fold = deal_fold(pool["deal_id"], folds)
    row_fold = deal_fold(rows["deal_id"], folds)
    for k in range(folds):
        train = np.flatnonzero(pool_fold != k)
        order = train[np.argsort(pool["as_of"].to_numpy()[train], kind="stable")]
        split_at = int(len(order) * 0.8)
        fit, valid = order[:split_at], order[split_at:]
        if len(np.unique(y_pool[fit])) < 2 or len(np.unique(y_pool[valid])) < 2:
            continue
        model = DealWinModel(
            categorical_features=categorical_columns(X_pool),
            random_state=seed,
            refit=False,
            **{**OUT_OF_FOLD_MODEL, **(model_params or {})},
        ).fit(
            X_pool.iloc[fit],
            y_pool[fit],
            eval_set=(X_pool.iloc[valid], y_pool[valid]),
            groups=pool["deal_id"].to_numpy()[fit],
            eval_groups=pool["deal_id"].to_numpy()[valid],
        )
        mine = np.flatnonzero(row_fold == k)
        if len(mine):
            out[mine] = model.predict_proba(X_rows.iloc[mine])[:, 1]
    return out
