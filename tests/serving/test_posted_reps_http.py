"""Reps posted with their records over HTTP: scored inside the service's organisation, the
posted rows in place of the rep's, exactly as the rep by id when the rows are the same."""

from __future__ import annotations

import pandas as pd
import pytest

from spm_ml import settings
from spm_ml.data.io import load_tables
from spm_ml.data.overlay import rep_record
from spm_ml.nlp.signals import with_email_scores

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def records(trained_workdir, quarter) -> dict[str, dict]:
    """Each AE's records as the service holds them (emails with their tone scores)."""
    tables = load_tables(trained_workdir / "data")
    tables = with_email_scores(tables, cache=settings.email_scores_path(trained_workdir))
    return {rep: rep_record(tables, rep) for rep in quarter[1][:2]}


def test_a_rep_posted_as_held_scores_exactly_as_by_id(api, quarter, records):
    """One rep per request: two years of a rep's records are about 1.5 MB of JSON, and the
    default body limit is 2 MB (``SPM_ML_MAX_BODY_BYTES``)."""
    as_of = quarter[0]
    for endpoint in ("/v1/reps/risk", "/v1/reps/coaching"):
        for rep, record in records.items():
            body = {"reps": [{"rep_id": rep, "as_of": as_of}, {"rep": record, "as_of": as_of}]}
            response = api.post(endpoint, json=body, timeout=300)
            assert response.status_code == 200, response.text
            known, sent = response.json()["results"]
            assert known["status"] == sent["status"] == 200, sent
            # everything the rep's answer says is the same, to the digit
            assert sent == known


def test_posted_records_are_what_is_scored(api, quarter, records):
    """A won deal of 120% of the quota, closed this period, makes the rep far safer."""
    as_of = pd.Timestamp(quarter[0])
    rep, record = next(iter(records.items()))
    period = next(
        q
        for q in record["quotas"]
        if pd.Timestamp(q["period_start"]) <= as_of < pd.Timestamp(q["period_end"])
    )
    deal = record["deals"][0]
    won = {
        **deal,
        "deal_id": "POSTED-WIN",
        "amount": period["quota_amount"] * 1.2,
        "created_at": (as_of - pd.Timedelta(days=20)).isoformat(),
        "expected_close_at": (as_of - pd.Timedelta(days=2)).isoformat(),
        "closed_at": (as_of - pd.Timedelta(days=2)).isoformat(),
        "stage": "closed_won",
        "outcome": "won",
    }
    richer = {**record, "deals": [*record["deals"], won]}
    body = {"reps": [{"rep_id": rep, "as_of": quarter[0]}, {"rep": richer, "as_of": quarter[0]}]}
    known, posted = api.post("/v1/reps/risk", json=body, timeout=300).json()["results"]
    assert posted["status"] == 200, posted
    assert posted["quota"]["p_miss"] < known["quota"]["p_miss"] - 0.3
    # booked 120% of quota already: every Monte Carlo draw attains
    assert posted["quota"]["attainment_p10"] > 1.0 > known["quota"]["attainment_p10"]


def test_posted_reps_that_do_not_fit_are_refused_by_item_naming_the_field(api, quarter, records):
    rep, record = next(iter(records.items()))
    stranger = {**record, "deals": [{**record["deals"][0], "account_id": "NO-SUCH-ACCOUNT"}]}
    stranger["deal_history"] = stranger["emails"] = []
    stranger["activities"] = []
    body = {"reps": [{"rep": stranger, "as_of": quarter[0]}, {"rep_id": rep, "as_of": quarter[0]}]}
    response = api.post("/v1/reps/risk", json=body, timeout=300)
    assert response.status_code == 200, response.text
    refused, answered = response.json()["results"]
    assert refused["status"] == 422
    assert refused["error"].startswith("reps.0.rep.deals.0.account_id:")
    assert answered["status"] == 200


def test_posted_reps_are_bounded(api):
    small = {"rep_id": "X", "team": "T", "region": "R", "role": "AE", "hire_date": "2020-01-01"}
    response = api.post("/v1/reps/risk", json={"reps": [{"rep": small}] * 17})
    assert response.status_code == 413
    assert "at most 16 posted reps" in response.json()["error"]
    both = api.post("/v1/reps/risk", json={"reps": [{"rep": small, "rep_id": "X"}]})
    assert both.status_code == 400
    assert "rep_or_rep_id" in both.text or "exactly one of rep_id" in both.text
