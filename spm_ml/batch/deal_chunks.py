"""One chunk of open deals scored for the batch: probability, top drivers, the top coaching
recommendation, email tone.

Scores come from :class:`~spm_ml.scoring.DealScorer` (the API's scorer, so batch and API
agree to the last digit); the stage, amount and email-tone signals are the very feature
values the model read.  A deal whose features cannot be built or whose probability is not
a number is isolated by halving the chunk until it stands alone, and reported by id with
the error: never dropped silently, and never taking its chunk's other deals down with it.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from spm_ml.errors import SpmMlError
from spm_ml.features.deal_fields import owner_at
from spm_ml.scoring import DealScorer, flatten_drivers

logger = logging.getLogger(__name__)

KEPT_FEATURES = (
    "stage",
    "amount",
    "days_to_expected_close",
    "close_date_pushes",
    "close_date_push_days",
)
"""Deal features copied into the output: what the deal looked like at ``as_of`` (the
close-date pushes are the manager's page's "why" beside the drivers)."""
LOOKBACK_DAYS = 14
"""``probability_before``: the same deal scored this many days before ``as_of``, so the
manager's page can rank deals by how far their win probability fell."""
EMAIL_SIGNALS = (
    "latest_inbound_tone",
    "inbound_tone_trend",
    "inbound_negative_share_14d",
    "inbound_positive_share_14d",
    "inbound_negative_share_30d",
    "inbound_positive_share_30d",
    "days_since_positive_inbound",
)
"""The email-tone block of the deal features (:mod:`spm_ml.features.email_signals`);
empty when the deal model reads no tone."""


def deal_columns(top_k: int) -> dict[str, str]:
    """The output's columns and dtypes, in order (fixed, so every chunk and sink agree)."""
    columns = {
        "as_of": "datetime64[ns]",
        "deal_id": "object",
        "rep_id": "object",
        "account_id": "object",
        "stage": "object",
        "amount": "float64",
        "days_to_expected_close": "float64",
        "close_date_pushes": "float64",
        "close_date_push_days": "float64",
        "probability": "float64",
        "probability_before": "float64",
    }
    for i in range(1, top_k + 1):
        columns |= {f"driver_{i}": "object", f"driver_{i}_value": "object"}
        columns[f"driver_{i}_shap"] = "float64"
    columns["drivers_json"] = "object"
    columns |= {
        "recommendation": "object",
        "recommendation_lever": "object",
        "recommendation_uplift_pp": "float64",
        "recommendations_json": "object",
    }
    columns |= dict.fromkeys(EMAIL_SIGNALS, "float64")
    columns["model_version"] = "object"
    return columns


def conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """``frame`` with exactly ``columns``, in order and of their dtypes (text as objects,
    missing as None), however few rows it has."""
    out = frame.reindex(columns=list(columns))
    for name, dtype in columns.items():
        if dtype == "object":
            values = out[name].astype(object)
            out[name] = values.where(values.notna(), None)
        else:
            out[name] = out[name].astype(dtype)
    return out.reset_index(drop=True)


def score_deal_chunk(
    scorer: DealScorer, snapshots: pd.DataFrame, *, top_k: int, model_version: str
) -> tuple[pd.DataFrame, list[dict]]:
    """The chunk's rows (:func:`deal_columns`) and the deals that failed, ``{deal_id,
    error}`` each.  Raises :class:`SpmMlError` when every deal of a chunk of several fails:
    that is the job's fault, not a deal's."""
    parts, failed = _score_isolating(scorer, snapshots.reset_index(drop=True), top_k)
    if len(snapshots) > 1 and len(failed) == len(snapshots):
        raise SpmMlError(
            f"none of {len(snapshots)} deals could be scored; first: {failed[0]['deal_id']}: "
            f"{failed[0]['error']}"
        )
    columns = deal_columns(top_k)
    if not parts:
        return conform(pd.DataFrame(), columns), failed
    scored = pd.concat(parts, ignore_index=True)
    deals = scorer.tables.deals.set_index("deal_id")
    scored["account_id"] = deals.loc[scored["deal_id"], "account_id"].to_numpy()
    scored["rep_id"] = owner_at(scorer.tables, scored[["deal_id", "as_of"]])
    scored["model_version"] = model_version
    scored["probability_before"] = probability_before(scorer, scored[["deal_id", "as_of"]])
    return conform(with_recommendations(flatten_drivers(scored, top_k)), columns), failed


def probability_before(
    scorer: DealScorer, snapshots: pd.DataFrame, days: int = LOOKBACK_DAYS
) -> np.ndarray:
    """Each deal's win probability ``days`` before its snapshot (the same model, features
    as of then, no explanation); NaN for a deal created since, or one whose features could
    not be built then (logged by id: the current score stands without it)."""
    earlier = snapshots["as_of"] - pd.Timedelta(days=days)
    created = scorer.tables.deals.set_index("deal_id")["created_at"]
    existed = created.reindex(snapshots["deal_id"]).to_numpy() < earlier.to_numpy()
    out = np.full(len(snapshots), np.nan)
    rows = np.flatnonzero(existed)
    if not len(rows):
        return out
    then = pd.DataFrame(
        {"deal_id": snapshots["deal_id"].to_numpy()[rows], "as_of": earlier.to_numpy()[rows]}
    )
    try:
        out[rows] = scorer.score(then, top_k=0)["probability"].to_numpy(dtype=np.float64)
    except Exception as err:  # one deal at a time then, each failure named
        for row, deal_id, moment in zip(rows, then["deal_id"], then["as_of"], strict=True):
            one = pd.DataFrame({"deal_id": [deal_id], "as_of": [moment]})
            try:
                out[row] = float(scorer.score(one, top_k=0)["probability"].iat[0])
            except Exception as one_err:
                logger.warning(
                    "deal %s: no probability %d days before as_of (%s; chunk: %s)",
                    deal_id,
                    days,
                    _text(one_err),
                    _text(err),
                )
    return out


def with_recommendations(scored: pd.DataFrame) -> pd.DataFrame:
    """The top recommendation as flat columns (sentence, lever, uplift in points) and the
    whole list as JSON; none where no lever raises the deal's probability."""
    out = scored.drop(columns=["recommendations"])
    lists = scored["recommendations"].tolist()
    out["recommendation"] = [r[0]["sentence"] if r else None for r in lists]
    out["recommendation_lever"] = [r[0]["lever"] if r else None for r in lists]
    out["recommendation_uplift_pp"] = [r[0]["uplift_pp"] if r else np.nan for r in lists]
    out["recommendations_json"] = [json.dumps(r) for r in lists]
    return out


def _score_isolating(
    scorer: DealScorer, snapshots: pd.DataFrame, top_k: int
) -> tuple[list[pd.DataFrame], list[dict]]:
    """Score ``snapshots``; on failure, halve and retry until the failing deals stand alone."""
    if snapshots.empty:  # no open deal at as_of
        return [], []
    try:
        scored = scorer.score(snapshots, top_k, keep=KEPT_FEATURES + EMAIL_SIGNALS, coach=True)
    except Exception as err:  # reported per deal below, never swallowed
        if len(snapshots) == 1:
            return [], [{"deal_id": str(snapshots["deal_id"].iat[0]), "error": _text(err)}]
        middle = len(snapshots) // 2
        first = _score_isolating(scorer, snapshots.iloc[:middle].reset_index(drop=True), top_k)
        second = _score_isolating(scorer, snapshots.iloc[middle:].reset_index(drop=True), top_k)
        return first[0] + second[0], first[1] + second[1]
    finite = np.isfinite(scored["probability"].to_numpy(dtype=np.float64))
    failed = [
        {"deal_id": str(d), "error": "the model's probability is not a number"}
        for d in scored.loc[~finite, "deal_id"]
    ]
    return [scored[finite]], failed


def _text(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"
