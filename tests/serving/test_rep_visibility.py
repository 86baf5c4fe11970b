"""Who sees what of a rep's risk: the answer item built from a batch row, per caller."""

from __future__ import annotations

import json

import pandas as pd

from serving.auth import Caller
from serving.rep_schemas import RepQuery
from serving.reps import WITHHELD, _answer
from spm_ml.batch.rep_risk import NOT_TOP, SCORED

AS_OF = pd.Timestamp("2025-11-15")


def row(**changes) -> dict:
    base = {
        "rep_id": "R1",
        "rep_name": "Ann",
        "manager_id": "M1",
        "quota_status": SCORED,
        "p_miss": 0.7,
        "quota_warned": True,
        "quota_warning_since": pd.Timestamp("2025-11-01"),
        "expected_attainment": 0.8,
        "attainment_p10": 0.5,
        "attainment_p90": 1.1,
        "period_end": pd.Timestamp("2025-12-31"),
        "days_left": 46.0,
        "quota_estimator": "monte_carlo",
        "quota_drivers": json.dumps(["9% of quota booked so far (raises the risk)"]),
        "quota_model_version": "4",
        "attrition_status": SCORED,
        "top_performer": True,
        "attrition_probability": 0.3,
        "attrition_warned": False,
        "attrition_warning_since": pd.NaT,
        "attrition_drivers": json.dumps([]),
        "attrition_model_version": "2",
    }
    return {**base, **changes}


def answer(caller: Caller, **changes) -> dict:
    item = _answer(RepQuery(rep_id="R1"), AS_OF, row(**changes), caller, "7")
    return json.loads(item.model_dump_json(exclude_unset=True))


def test_admins_and_the_reps_own_manager_see_attrition():
    for caller in (Caller("a", "admin"), Caller("m", "manager", "M1")):
        got = answer(caller)
        assert got["attrition"]["probability"] == 0.3 and "withheld" not in got
        assert {m["name"]: m["version"] for m in got["models"]} == {
            "quota-risk": "4",
            "deal-win": "7",
            "attrition": "2",
        }


def test_coaches_and_other_managers_get_quota_risk_and_a_note():
    for caller in (Caller("c", "coach"), Caller("m", "manager", "M2")):
        got = answer(caller)
        assert "attrition" not in got and got["withheld"] == WITHHELD
        assert got["quota"]["p_miss"] == 0.7
        assert "attrition" not in {m["name"] for m in got["models"]}


def test_a_rep_who_is_not_a_top_performer_says_so():
    got = answer(Caller("a", "admin"), attrition_status=NOT_TOP, top_performer=False)
    assert got["attrition"] == {"status": NOT_TOP, "top_performer": False}
