"""Reps' risk for the API: the batch job's rows (:func:`~spm_ml.batch.rep_risk.rep_risk_rows`,
the early warnings' scores), cut to the reps asked for and to what the caller may see.

Requests are grouped by ``as_of``: one scoring call per distinct moment, for all its reps.
A rep the data source does not know is a 404 item; one not selling at ``as_of`` (not yet
hired, gone, not an AE and without a quota period) a 422 item naming ``as_of``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from serving.auth import Caller
from serving.models import ModelSet
from serving.rep_schemas import RepIn, RepQuery
from serving.schemas import AttritionRisk, ModelRef, QuotaRisk, RepRisk
from serving.texts import score_texts
from spm_ml.batch.rep_risk import SCORED, rep_risk_rows
from spm_ml.data.overlay import PostedRep, PostedRepError, check_posted_rep, with_posted_reps
from spm_ml.data.tables import Tables
from spm_ml.features.context import DealContext

WITHHELD = (
    "attrition: shown only to admins and to the rep's manager at as_of; this caller is neither"
)


def rep_risks(
    models: ModelSet,
    queries: Sequence[RepQuery],
    as_of: Sequence[pd.Timestamp],
    caller: Caller,
    workdir: Path,
) -> list[RepRisk]:
    """One :class:`RepRisk` per query (``as_of``: each query's moment, naive UTC)."""
    groups, refused = rep_groups(models, queries, as_of)
    rows: dict[int, dict] = {}
    for group in groups:
        ids = sorted({queries[i].id for i in group.positions})
        scored = rep_risk_rows(
            group.tables, group.moment, models.models, group.context, workdir, rep_ids=ids
        )
        by_rep = {row["rep_id"]: row for row in scored.to_dict("records")}
        for i in group.positions:
            if queries[i].id in by_rep:
                rows[i] = by_rep[queries[i].id]
    deal_version = models.version("deal-win")
    return [
        refused_rep(RepRisk, q, as_of[i], refused[i])
        if i in refused
        else _answer(q, as_of[i], rows.get(i), caller, deal_version)
        for i, q in enumerate(queries)
    ]


@dataclass(frozen=True)
class RepGroup:
    """Reps scored in one call: one moment, one organisation (the data source's, or the
    data source with posted reps' rows in place of theirs)."""

    moment: pd.Timestamp
    positions: list[int]
    tables: Tables
    context: DealContext


def rep_groups(
    models: ModelSet, queries: Sequence[RepQuery], as_of: Sequence[pd.Timestamp]
) -> tuple[list[RepGroup], dict[int, tuple[int, str]]]:
    """The queries in scoring groups, and the refused ones' (status, message) by position.

    Reps by id are grouped by moment over the service's organisation (404 for an id it does
    not know).  Posted reps are grouped by moment too, each group a set of distinct ids
    overlaid on the organisation (:func:`~spm_ml.data.overlay.with_posted_reps`), with the
    deal context rebuilt over it; a posted rep whose rows do not fit is a 422 naming the
    field.  Emails posted as text are scored by the deal model's sentiment model first.
    """
    known = set(models.tables.reps["rep_id"])
    scorer = models.scorer
    refused: dict[int, tuple[int, str]] = {}
    by_id: dict[pd.Timestamp, list[int]] = defaultdict(list)
    posted: dict[pd.Timestamp, list[list[int]]] = defaultdict(list)
    rows: dict[int, PostedRep] = {}
    score_texts(
        [e for q in queries if q.rep is not None for e in q.rep.emails], models.deal_sentiment
    )
    for i, query in enumerate(queries):
        if query.rep is None:
            if query.rep_id in known:
                by_id[as_of[i]].append(i)
            else:
                why = f"rep_id: rep {query.rep_id!r} is not in the service's data source"
                refused[i] = (404, why)
            continue
        rows[i] = posted_rep(query.rep, f"reps.{i}.rep")
        try:
            check_posted_rep(models.tables, rows[i])
        except PostedRepError as error:
            refused[i] = (422, str(error))
            continue
        sets = posted[as_of[i]]  # distinct ids per set: one overlay each
        free = next((s for s in sets if all(queries[j].id != query.id for j in s)), None)
        if free is None:
            sets.append(free := [])
        free.append(i)
    groups = [RepGroup(m, p, models.tables, scorer.context) for m, p in by_id.items()]
    for moment, sets in posted.items():
        for positions in sets:
            tables = with_posted_reps(models.tables, [rows[i] for i in positions])
            context = DealContext.build(
                tables, scorer.feature_config, custom_fields=scorer.context.custom_fields
            )
            groups.append(RepGroup(moment, positions, context.tables, context))
    return groups, refused


def posted_rep(rep: RepIn, where: str) -> PostedRep:
    """A validated posted rep as the overlay's plain rows (emails without text)."""
    own = {"rep_id", "name", "manager_id", "team", "region", "role", "hire_date", "exit_date"}
    fields = rep.model_dump(include={*own, "exit_reason"})
    return PostedRep(
        rep={**rep.custom_fields, **fields},
        where=where,
        quotas=[q.model_dump() for q in rep.quotas],
        compensation=[c.model_dump() for c in rep.compensation],
        rep_history=[h.model_dump() for h in rep.history],
        deals=[d.model_dump(exclude={"rep_id"}) for d in rep.deals],
        deal_history=[h.model_dump() for h in rep.deal_history],
        activities=[a.model_dump(exclude_none=True) for a in rep.activities],
        emails=[e.as_row() for e in rep.emails],
    )


def refused_rep(kind, query: RepQuery, as_of: pd.Timestamp, why: tuple[int, str]):
    """The answer item of a refused rep (404 unknown id, 422 posted rows that do not fit)."""
    status, message = why
    return kind(
        status=status, error=message, rep_id=query.id, as_of=as_of.to_pydatetime(), models=[]
    )


def _answer(
    query: RepQuery,
    as_of: pd.Timestamp,
    row: dict | None,
    caller: Caller,
    deal_version: str,
) -> RepRisk:
    moment = as_of.to_pydatetime()
    if row is None:
        return RepRisk(
            status=422,
            error=f"as_of: rep {query.id!r} is not a selling rep employed at {as_of} "
            "(not yet hired, gone, or neither an AE nor holding a quota period)",
            rep_id=query.id,
            as_of=moment,
            models=[],
        )
    used: list[ModelRef] = []
    quota = QuotaRisk(status=row["quota_status"])
    if row["quota_status"] == SCORED:
        quota = QuotaRisk(
            status=SCORED,
            p_miss=row["p_miss"],
            warned=bool(row["quota_warned"]),
            warning_since=_moment(row["quota_warning_since"]),
            expected_attainment=_number(row["expected_attainment"]),
            attainment_p10=_number(row["attainment_p10"]),
            attainment_p90=_number(row["attainment_p90"]),
            period_end=_moment(row["period_end"]),
            days_left=_number(row["days_left"]),
            estimator=row["quota_estimator"],
            drivers=json.loads(row["quota_drivers"]),
        )
        used += [
            ModelRef.of("quota-risk", str(row["quota_model_version"])),
            ModelRef.of("deal-win", deal_version),
        ]
    answer = RepRisk(
        status=200,
        rep_id=query.id,
        as_of=moment,
        rep_name=row["rep_name"],
        manager_id=row["manager_id"],
        quota=quota,
        models=used,
    )
    if not caller.sees_attrition_of(row["manager_id"]):
        answer.withheld = WITHHELD
        return answer
    if row["attrition_status"] == SCORED:
        answer.attrition = AttritionRisk(
            status=SCORED,
            top_performer=True,
            probability=row["attrition_probability"],
            warned=bool(row["attrition_warned"]),
            warning_since=_moment(row["attrition_warning_since"]),
            drivers=json.loads(row["attrition_drivers"]),
        )
        answer.models = [
            *used,
            ModelRef.of("attrition", str(row["attrition_model_version"])),
        ]
    else:
        top = row["top_performer"]
        answer.attrition = AttritionRisk(
            status=row["attrition_status"], top_performer=None if pd.isna(top) else bool(top)
        )
    return answer


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _moment(value):
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()
