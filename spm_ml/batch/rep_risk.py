"""Every rep's risk as of one date, for the batch: quota miss and, for top performers,
attrition, one row per rep.

The scores are the early warnings' (:func:`~spm_ml.early_warnings.quota_warnings` and
:func:`~spm_ml.early_warnings.attrition_warnings`, over the versions the job loaded): P(miss)
with the expected attainment and its 80% interval from the quota-risk Monte Carlo, the date
a warning has held since, drivers in words.  A rep without a quota period open at ``as_of``
(the simulated data ends exactly at a quarter's close) or without a champion to score it
keeps its row, with a status saying why its scores are empty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from spm_ml.batch.deal_chunks import conform
from spm_ml.data.tables import Tables
from spm_ml.early_warnings import attrition_warnings, quota_warnings
from spm_ml.features.context import DealContext
from spm_ml.features.rep_snapshots import AttritionLabel
from spm_ml.features.reps import manager_at
from spm_ml.registry import LoadedModel

REP_COLUMNS = {
    "as_of": "datetime64[ns]",
    "rep_id": "object",
    "rep_name": "object",
    "manager_id": "object",
    "quota_status": "object",
    "period_end": "datetime64[ns]",
    "days_left": "float64",
    "p_miss": "float64",
    "quota_warned": "boolean",
    "quota_warning_since": "datetime64[ns]",
    "expected_attainment": "float64",
    "attainment_p10": "float64",
    "attainment_p90": "float64",
    "quota_estimator": "object",
    "quota_drivers": "object",
    "quota_model_version": "object",
    "attrition_status": "object",
    "top_performer": "boolean",
    "attrition_probability": "float64",
    "attrition_warned": "boolean",
    "attrition_warning_since": "datetime64[ns]",
    "attrition_drivers": "object",
    "attrition_model_version": "object",
}
"""The output's columns and dtypes; drivers are JSON lists of sentences."""

SCORED = "scored"
NO_OPEN_PERIOD = "no quota period open at as_of"
NOT_TOP = "not a top performer: attrition is reported for top performers"


def rep_risk_rows(
    tables: Tables,
    as_of: pd.Timestamp,
    models: dict[str, LoadedModel | None],
    context: DealContext,
    workdir: Path,
    rep_ids: Sequence[str] | None = None,
    deal_scores: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per rep employed at ``as_of`` who sells (an AE) or holds an open quota period
    (:data:`REP_COLUMNS`).  ``tables`` are the validated source's; ``context`` the deal
    model's over them with email scores; ``models`` the loaded champions (``None``: absent).
    ``rep_ids`` keeps those reps' rows only (the API asks for a few): every rep is still
    scored, so their figures are the batch's (the quota Monte Carlo draws every rep's
    pipeline from one stream; attrition is ranked among every AE scored that day).
    ``deal_scores``: the open deals' probabilities at ``as_of`` by ``deal_id``, when the
    caller made them (the batch job's deal scores): quota risk weights the pipeline with
    them instead of featurising and scoring it again."""
    quota = pd.DataFrame()
    if models.get("quota-risk") is not None:
        quota = quota_warnings(
            tables,
            workdir,
            as_of=as_of,
            models={"quota-risk": models["quota-risk"], "deal-win": models["deal-win"]},
            context=context,
            deal_scores=deal_scores,
        )
        if rep_ids is not None and len(quota):
            quota = quota[quota["rep_id"].isin(list(rep_ids))]
    attrition = pd.DataFrame()
    if models.get("attrition") is not None:
        attrition = attrition_warnings(tables, workdir, as_of=as_of, model=models["attrition"])
        if rep_ids is not None and len(attrition):
            attrition = attrition[attrition["rep_id"].isin(list(rep_ids))]

    reps = tables.reps
    hired = reps["hire_date"] < as_of
    gone = reps["exit_date"] <= as_of  # NaT compares False: still employed
    roles = {r.lower() for r in AttritionLabel().roles}
    sells = reps["role"].astype(object).str.lower().isin(roles)
    ids = set(reps.loc[(hired & ~gone & sells).to_numpy(), "rep_id"])
    ids |= set(quota["rep_id"]) if len(quota) else set()
    ids |= set(attrition["rep_id"]) if len(attrition) else set()
    if rep_ids is not None:
        ids &= set(rep_ids)
    rep_ids = np.array(sorted(ids), dtype=object)
    when = np.full(len(rep_ids), np.datetime64(as_of, "ns"))
    names = reps.set_index("rep_id")["name"] if "name" in reps else None
    out = pd.DataFrame(
        {
            "as_of": when,
            "rep_id": rep_ids,
            "rep_name": names.reindex(rep_ids).to_numpy() if names is not None else rep_ids,
            "manager_id": manager_at(tables, rep_ids, when) if len(rep_ids) else [],
        }
    )
    out = out.merge(_part(quota, QUOTA_FROM_WARNINGS), on="rep_id", how="left")
    out = out.merge(_part(attrition, ATTRITION_FROM_WARNINGS), on="rep_id", how="left")
    scored = out["p_miss"].notna()
    out["quota_status"] = np.where(
        scored,
        SCORED,
        NO_OPEN_PERIOD if models.get("quota-risk") is not None else _missing("quota-risk"),
    )
    if models.get("attrition") is None:
        out["attrition_status"] = _missing("attrition")
        out["top_performer"] = None
    else:
        top = out["attrition_probability"].notna()
        out["top_performer"] = top
        out["attrition_status"] = np.where(top, SCORED, NOT_TOP)
    return conform(out, REP_COLUMNS)


def _missing(family: str) -> str:
    return f"not scored: no {family} champion"


QUOTA_FROM_WARNINGS = {
    "period_end": "period_end",
    "days_left": "days_left",
    "probability": "p_miss",
    "warned": "quota_warned",
    "warning_since": "quota_warning_since",
    "expected_attainment": "expected_attainment",
    "attainment_p10": "attainment_p10",
    "attainment_p90": "attainment_p90",
    "estimator": "quota_estimator",
    "drivers": "quota_drivers",
    "model_version": "quota_model_version",
}
ATTRITION_FROM_WARNINGS = {
    "probability": "attrition_probability",
    "warned": "attrition_warned",
    "warning_since": "attrition_warning_since",
    "drivers": "attrition_drivers",
    "model_version": "attrition_model_version",
}


def _part(warnings: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Warning columns under this table's names, by rep; drivers as JSON text."""
    if warnings.empty:
        return pd.DataFrame(columns=["rep_id", *names.values()])
    part = warnings[["rep_id", *names]].rename(columns=names)
    since = names["warning_since"]
    part[since] = pd.to_datetime(part[since])
    part[names["drivers"]] = [json.dumps(d) for d in part[names["drivers"]]]
    return part
