"""Each rep's coaching for the batch: the top recommendation in one sentence, and the
whole answer as JSON, from :func:`~spm_ml.coaching.reps.coach_reps` (the API's rep
coaching: the same figures).

The top recommendation is the open deal whose win inside the period would lift the rep's
P(attain) most, weighed by how likely it is to be won (a deal the model gives no chance
is no plan); without one, the pipeline gap; without that, the kind of activity furthest
below the rep's own pace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from spm_ml.coaching.reps import RepCoaching, coach_reps
from spm_ml.data.tables import Tables
from spm_ml.features.context import DealContext
from spm_ml.registry import LoadedModel

COACHING_COLUMNS = {"coaching": "object", "coaching_json": "object"}
"""Added to the batch's ``rep_risk`` rows (empty where the rep has no open period)."""
MIN_GAIN_PP = 1.0
"""A rescue lifting P(attain) by less than this is not worth a manager's sentence."""


def rep_coaching_rows(
    tables: Tables,
    as_of: pd.Timestamp,
    models: dict[str, LoadedModel | None],
    context: DealContext,
    workdir: Path,
    deal_scores: pd.Series | None = None,
) -> pd.DataFrame:
    """``rep_id``, ``coaching`` (the top recommendation) and ``coaching_json`` (pipeline
    gap, deals to rescue, activity against baseline) of every rep with a quota period open
    at ``as_of``; no rows without a quota-risk champion.  ``deal_scores``: as
    :func:`~spm_ml.batch.rep_risk.rep_risk_rows` takes them."""
    if models.get("quota-risk") is None:
        return pd.DataFrame(columns=["rep_id", *COACHING_COLUMNS])
    scoring = {family: models[family] for family in ("quota-risk", "deal-win")}
    coached = coach_reps(
        tables, workdir, as_of=as_of, models=scoring, context=context, deal_scores=deal_scores
    )
    coached = [c for c in coached if c.p_miss is not None]
    return pd.DataFrame(
        {
            "rep_id": [c.rep_id for c in coached],
            "coaching": [top_recommendation(c) for c in coached],
            "coaching_json": [json.dumps(_kept(c)) for c in coached],
        }
    )


def top_recommendation(coaching: RepCoaching) -> str | None:
    """The one sentence a manager reads first (see the module docstring)."""
    rescues = [r for r in coaching.deals_to_rescue if r.gain_pp >= MIN_GAIN_PP]
    if rescues:
        best = max(rescues, key=lambda r: r.gain_pp * r.win_probability)
        if best.win_probability > 0:
            return best.sentence
    gap = coaching.pipeline_gap
    if gap is not None and gap.amount:
        return gap.sentence
    below = [a for a in coaching.activity_vs_baseline if a.ratio is not None and a.ratio < 0.8]
    if below:
        return min(below, key=lambda a: a.ratio).sentence
    return None


def _kept(coaching: RepCoaching) -> dict:
    """What the page shows beside the top line (no attrition: its own columns say it)."""
    whole = coaching.as_dict()
    return {
        key: whole[key]
        for key in ("pipeline_gap", "deals_to_rescue", "activity_vs_baseline", "caveat")
    }
