"""Coaching reps on quota for the API: :func:`spm_ml.coaching.reps.coach_reps` for the reps
asked, grouped by ``as_of``, with attrition shown only to callers allowed to see it.

A rep the data source does not know is a 404 item (the others are still coached); a rep
without a quota period open at ``as_of`` gets an answer saying so (``quota_status``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from serving.auth import Caller
from serving.models import ModelSet
from serving.reps import WITHHELD, known_by_moment
from serving.schemas import AttritionRisk, ModelRef, RepCoachingResult, RepQuery


def rep_coachings(
    models: ModelSet,
    queries: Sequence[RepQuery],
    as_of: Sequence[pd.Timestamp],
    caller: Caller,
    workdir: Path,
) -> list[RepCoachingResult]:
    """One :class:`RepCoachingResult` per query (``as_of``: each query's moment)."""
    from spm_ml.coaching.reps import coach_reps

    known = set(models.tables.reps["rep_id"])
    groups = known_by_moment(queries, as_of, known)
    coached: dict[int, object] = {}
    champions = {"quota-risk": models.models["quota-risk"], "deal-win": models.models["deal-win"]}
    for moment, positions in groups.items():
        ids = list(dict.fromkeys(queries[i].rep_id for i in positions))
        found = coach_reps(
            models.tables,
            workdir,
            rep_ids=ids,
            as_of=moment,
            models=champions,
            context=models.scorer.context,
            include_attrition=True,
            attrition_model=models.models.get("attrition"),
        )
        by_rep = {c.rep_id: c for c in found}
        for i in positions:
            coached[i] = by_rep[queries[i].rep_id]
    deal_version = models.version("deal-win")
    out = []
    for i, query in enumerate(queries):
        moment = as_of[i].to_pydatetime()
        if i not in coached:
            out.append(
                RepCoachingResult(
                    status=404,
                    error=f"rep_id: rep {query.rep_id!r} is not in the service's data source",
                    rep_id=query.rep_id,
                    as_of=moment,
                    models=[],
                )
            )
            continue
        out.append(_answer(coached[i], moment, caller, deal_version))
    return out


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
