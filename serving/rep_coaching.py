"""Coaching reps on quota for the API: :func:`spm_ml.coaching.reps.coach_reps` for the reps
asked, grouped by ``as_of``, with attrition shown only to callers allowed to see it.

Reps come by id or posted with their records (:func:`serving.reps.rep_groups`).  A rep the
data source does not know is a 404 item, a posted rep whose rows do not fit a 422 (the
others are still coached); a rep without a quota period open at ``as_of`` gets an answer
saying so (``quota_status``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from serving.auth import Caller
from serving.models import ModelSet
from serving.rep_schemas import RepQuery
from serving.reps import WITHHELD, refused_rep, rep_groups
from serving.schemas import AttritionRisk, ModelRef, RepCoachingResult


def rep_coachings(
    models: ModelSet,
    queries: Sequence[RepQuery],
    as_of: Sequence[pd.Timestamp],
    caller: Caller,
    workdir: Path,
) -> list[RepCoachingResult]:
    """One :class:`RepCoachingResult` per query (``as_of``: each query's moment)."""
    from spm_ml.coaching.reps import coach_reps

    groups, refused = rep_groups(models, queries, as_of)
    coached: dict[int, object] = {}
    champions = {"quota-risk": models.models["quota-risk"], "deal-win": models.models["deal-win"]}
    for group in groups:
        ids = list(dict.fromkeys(queries[i].id for i in group.positions))
        found = coach_reps(
            group.tables,
            workdir,
            rep_ids=ids,
            as_of=group.moment,
            models=champions,
            context=group.context,
            include_attrition=True,
            attrition_model=models.models.get("attrition"),
        )
        by_rep = {c.rep_id: c for c in found}
        for i in group.positions:
            coached[i] = by_rep[queries[i].id]
    deal_version = models.version("deal-win")
    return [
        refused_rep(RepCoachingResult, q, as_of[i], refused[i])
        if i in refused
        else _answer(coached[i], as_of[i].to_pydatetime(), caller, deal_version)
        for i, q in enumerate(queries)
    ]


def _answer(coaching, moment, caller: Caller, deal_version: str) -> RepCoachingResult:
    fields = asdict(coaching)
    attrition = fields.pop("attrition")
    fields["quota_status"] = fields.pop("status")
    fields.pop("as_of")
    quota_version = fields.pop("model_version")
    used = []
    if quota_version is not None:
        used = [ModelRef.of("quota-risk", quota_version), ModelRef.of("deal-win", deal_version)]
    answer = RepCoachingResult(status=200, as_of=moment, models=used, **fields)
    if not caller.sees_attrition_of(coaching.manager_id):
        answer.withheld = WITHHELD
        return answer
    if attrition is not None:
        version = attrition.pop("model_version", None)
        answer.attrition = AttritionRisk(**attrition)
        if version is not None:
            answer.models = [*used, ModelRef.of("attrition", str(version))]
    return answer
