"""The rep and email endpoints of the real service over HTTP, and what every answer carries."""

from __future__ import annotations

import httpx
import pytest

from serving.schemas import MAX_ITEMS
from spm_ml.batch.rep_risk import NOT_TOP, SCORED

pytestmark = pytest.mark.slow


def rep_risk(api: httpx.Client, reps: list[dict]) -> httpx.Response:
    return api.post("/v1/reps/risk", json={"reps": reps}, timeout=120)


def test_reps_are_scored_by_id_with_quota_and_attrition_risk(api, quarter):
    as_of, aes, _ = quarter
    response = rep_risk(api, [{"rep_id": r, "as_of": as_of} for r in aes])
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["rep_id"] for r in results] == aes
    for result in results:
        assert result["status"] == 200 and result["manager_id"]
        quota = result["quota"]
        assert quota["status"] == "scored" and 0 <= quota["p_miss"] <= 1
        assert quota["attainment_p10"] <= quota["expected_attainment"] <= quota["attainment_p90"]
        assert quota["drivers"] and all(isinstance(d, str) for d in quota["drivers"])
        names = {m["name"] for m in result["models"]}
        assert {"quota-risk", "deal-win"} <= names
        # no auth middleware here: the caller is an admin, who sees attrition
        assert "withheld" not in result and result["attrition"]["status"]
    # the small shared organisation may have no top performer yet at that date
    statuses = {r["attrition"]["status"] for r in results}
    assert statuses <= {SCORED, NOT_TOP, "not scored: no attrition champion"}, statuses
    top = [r for r in results if r["attrition"]["status"] == SCORED]
    assert all(0 <= r["attrition"]["probability"] <= 1 for r in top)
    assert all("attrition" in {m["name"] for m in r["models"]} for r in top)


def test_unknown_and_non_selling_reps_are_listed_per_item(api, quarter):
    as_of, aes, manager = quarter
    response = rep_risk(
        api,
        [
            {"rep_id": aes[0], "as_of": as_of},
            {"rep_id": "NO-SUCH-REP"},
            {"rep_id": manager, "as_of": as_of},
        ],
    )
    assert response.status_code == 200
    first, unknown, boss = response.json()["results"]
    assert first["status"] == 200
    assert unknown["status"] == 404 and unknown["error"].startswith("rep_id:")
    assert boss["status"] == 422 and boss["error"].startswith("as_of:")
    only_unknown = rep_risk(api, [{"rep_id": "NO-SUCH-REP"}])
    assert only_unknown.status_code == 404 and "NO-SUCH-REP" in only_unknown.json()["error"]


def test_a_rep_after_the_data_has_no_open_period(api, quarter):
    _, aes, _ = quarter
    response = rep_risk(api, [{"rep_id": aes[0], "as_of": "2199-01-01T00:00:00"}])
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["quota"]["status"] == "no quota period open at as_of"


def test_rep_lists_are_bounded_and_validated(api):
    assert rep_risk(api, [{"rep_id": "R1"}] * (MAX_ITEMS + 1)).status_code == 413
    bad = rep_risk(api, [{"rep_id": "R1", "as_of": "yesterday"}])
    assert bad.status_code == 400 and bad.json()["detail"][0]["loc"] == ["reps", 0, "as_of"]
    extra = rep_risk(api, [{"rep_id": "R1", "manager": "x"}])
    assert extra.status_code == 400


def sentiment(api: httpx.Client, emails: list[dict]) -> httpx.Response:
    return api.post("/v1/emails/sentiment", json={"emails": emails}, timeout=60)


def test_email_sentiment_is_calibrated_or_abstains(api, server_log):
    marker = "WOMBAT-PRIVATE-8812"
    response = sentiment(
        api,
        [
            {
                "subject": "Next steps",
                "body": f"Great, the budget is approved and we will sign this week. {marker}",
            },
            {"body": f"Unfortunately we have decided to go with another vendor. {marker}"},
            {"body": "   "},
            {"body": "Vielen Dank, wir melden uns nächste Woche bei Ihnen."},
        ],
    )
    assert response.status_code == 200, response.text
    assert marker not in response.text
    good, bad, empty, german = response.json()["results"]
    assert good["label"] == "positive" and bad["label"] == "negative"
    for scored in (good, bad):
        assert not scored["abstained"]
        total = scored["p_negative"] + scored["p_neutral"] + scored["p_positive"]
        assert total == pytest.approx(1.0)
        assert scored["models"] == [
            {"name": "email-sentiment", "version": "1", "alias": "champion"}
        ]
    assert empty["abstained"] and "p_positive" not in empty and empty["reason"]
    assert german["abstained"] and german["reason"] == "not English"
    assert marker not in server_log.read_text()


def test_email_lists_are_bounded_and_validated(api):
    assert sentiment(api, [{"body": "x"}] * (MAX_ITEMS + 1)).status_code == 413
    missing = sentiment(api, [{"subject": "only a subject"}])
    assert missing.status_code == 400
    assert missing.json()["detail"][0]["loc"] == ["emails", 0, "body"]
    assert sentiment(api, [{"body": "x" * 100_001}]).status_code == 400
    assert sentiment(api, []).status_code == 400


def test_reload_without_a_new_champion_changes_nothing(api):
    response = api.post("/admin/reload", json={}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] == []
    # the small shared organisation has too few leavers to train attrition
    assert set(body["missing"]) <= {"attrition"}
    served = {m["name"] for m in body["models"]}
    assert {"deal-win", "quota-risk", "email-sentiment"} <= served
    assert served.isdisjoint(body["missing"])
