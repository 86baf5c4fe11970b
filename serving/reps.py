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
from pathlib import Path

import pandas as pd

from serving.auth import Caller
from serving.models import ModelSet
from serving.schemas import AttritionRisk, ModelRef, QuotaRisk, RepQuery, RepRisk
from spm_ml.batch.rep_risk import SCORED, rep_risk_rows

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
    known = set(models.tables.reps["rep_id"])
    groups = known_by_moment(queries, as_of, known)
    rows: dict[int, dict] = {}
    for moment, positions in groups.items():
        ids = sorted({queries[i].rep_id for i in positions})
        scored = rep_risk_rows(
            models.tables, moment, models.models, models.scorer.context, workdir, rep_ids=ids
        )
        by_rep = {row["rep_id"]: row for row in scored.to_dict("records")}
        for i in positions:
            if queries[i].rep_id in by_rep:
                rows[i] = by_rep[queries[i].rep_id]
    deal_version = models.version("deal-win")
    return [
        _answer(q, as_of[i], rows.get(i), known, caller, deal_version)
        for i, q in enumerate(queries)
    ]


def known_by_moment(
    queries: Sequence[RepQuery], as_of: Sequence[pd.Timestamp], known: set
) -> dict[pd.Timestamp, list[int]]:
    """Positions of the queries naming a known rep, by moment: one scoring call each."""
    groups: dict[pd.Timestamp, list[int]] = defaultdict(list)
    for i, query in enumerate(queries):
        if query.rep_id in known:
            groups[as_of[i]].append(i)
    return groups


def _answer(
    query: RepQuery,
    as_of: pd.Timestamp,
    row: dict | None,
    known: set,
    caller: Caller,
    deal_version: str,
) -> RepRisk:
    moment = as_of.to_pydatetime()
    if query.rep_id not in known:
        return RepRisk(
            status=404,
            error=f"rep_id: rep {query.rep_id!r} is not in the service's data source",
            rep_id=query.rep_id,
            as_of=moment,
            models=[],
        )
    if row is None:
        return RepRisk(
            status=422,
            error=f"as_of: rep {query.rep_id!r} is not a selling rep employed at {as_of} "
            "(not yet hired, gone, or neither an AE nor holding a quota period)",
            rep_id=query.rep_id,
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
        rep_id=query.rep_id,
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
