"""Rep coaching over HTTP: the coaching core's answer per rep, the same P(miss) as rep risk."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_reps_are_coached_with_the_p_miss_of_rep_risk(api, quarter):
    as_of, aes, _ = quarter
    aes = aes[:3]
    reps = [{"rep_id": r, "as_of": as_of} for r in aes] + [{"rep_id": "NO-SUCH-REP"}]
    response = api.post("/v1/reps/coaching", json={"reps": reps}, timeout=300)
    assert response.status_code == 200, response.text
    *coached, unknown = response.json()["results"]
    assert unknown["status"] == 404 and unknown["error"].startswith("rep_id:")
    risk = api.post("/v1/reps/risk", json={"reps": reps[:-1]}, timeout=300).json()["results"]
    for item, same in zip(coached, risk, strict=True):
        assert item["status"] == 200 and item["rep_id"] == same["rep_id"]
        assert item["quota_status"] == "scored"
        assert item["p_miss"] == pytest.approx(same["quota"]["p_miss"], abs=1e-4)
        assert item["drivers"] and item["caveat"]
        assert item["pipeline_gap"]["sentence"]
        assert {"quota-risk", "deal-win"} <= {m["name"] for m in item["models"]}
        assert "withheld" not in item  # the tests' token is an admin's
    many = api.post("/v1/reps/coaching", json={"reps": [{"rep_id": "x"}] * 257})
    assert many.status_code == 413
