"""Deal coaching and what-if over HTTP: the coaching core behind the real service."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from serving.schemas import MAX_ITEMS

pytestmark = pytest.mark.slow
AS_OF = "2024-12-31T00:00:00"


@pytest.fixture(scope="module")
def open_deals(trained_workdir) -> list[str]:
    deals = pd.read_parquet(trained_workdir / "data" / "deals.parquet")
    open_at = (deals["created_at"] < AS_OF) & (
        deals["closed_at"].isna() | (deals["closed_at"] > AS_OF)
    )
    return deals.loc[open_at, "deal_id"].head(6).tolist()


def post(api: httpx.Client, route: str, body: dict) -> httpx.Response:
    return api.post(route, json=body, timeout=120)


def test_coaching_ranks_levers_and_explains_in_words(api, open_deals):
    body = {"deals": [{"deal_id": d, "as_of": AS_OF} for d in open_deals] + [{"deal_id": "NOPE"}]}
    response = post(api, "/v1/deals/coaching", body)
    assert response.status_code == 200, response.text
    *coached, unknown = response.json()["results"]
    assert unknown["status"] == 404 and unknown["error"].startswith("deal_id:")
    scores = post(api, "/v1/deals/score", {"deals": body["deals"][:-1]}).json()["results"]
    for item, score in zip(coached, scores, strict=True):
        assert item["status"] == 200 and item["deal_id"] == score["deal_id"]
        assert item["probability"] == pytest.approx(score["probability"], abs=1e-9)
        assert len(item["drivers"]) == 3
        assert all(d["words"] and d["text"] for d in item["drivers"])
        uplifts = [r["uplift_pp"] for r in item["recommendations"]]
        assert uplifts == sorted(uplifts, reverse=True) and all(u > 0 for u in uplifts)
        assert len(uplifts) <= 3
        for r in item["recommendations"]:
            assert r["probability"] == pytest.approx(item["probability"] + r["uplift_pp"] / 100)
        assert item["note"] and item["models"][0]["name"] == "deal-win"
    assert any(item["recommendations"] for item in coached), "no lever helped any deal"


def test_what_if_rescores_with_the_changes(api, open_deals):
    deal = open_deals[0]
    body = {
        "deals": [
            {"deal_id": deal, "as_of": AS_OF, "changes": {"meetings_30d": 5}},
            {"deal_id": deal, "as_of": AS_OF, "changes": {"no_such_feature": 1, "other": 2}},
            {"deal_id": deal, "as_of": AS_OF, "changes": {"stage": 3}},
            {"deal_id": "NOPE", "changes": {"meetings_30d": 1}},
        ]
    }
    response = post(api, "/v1/deals/what-if", body)
    assert response.status_code == 200, response.text
    changed, unknown, mistyped, missing = response.json()["results"]
    assert changed["status"] == 200
    score = post(api, "/v1/deals/score", {"deals": [{"deal_id": deal, "as_of": AS_OF}]})
    assert changed["probability"] == pytest.approx(score.json()["results"][0]["probability"])
    assert 0 <= changed["changed_probability"] <= 1
    assert changed["uplift_pp"] == pytest.approx(
        100 * (changed["changed_probability"] - changed["probability"])
    )
    assert unknown["status"] == 422
    assert "'no_such_feature'" in unknown["error"] and "'other'" in unknown["error"]
    assert mistyped["status"] == 422 and mistyped["error"].startswith("changes.stage:")
    assert missing["status"] == 404
    only_unknown = post(api, "/v1/deals/what-if", {"deals": [body["deals"][1]]})
    assert only_unknown.status_code == 422 and "no_such_feature" in only_unknown.json()["error"]


def test_what_if_bad_values_are_400_and_long_lists_413(api, open_deals):
    item = json.dumps({"deal_id": open_deals[0], "changes": {"meetings_30d": 1}})
    text = '{"deals": [' + item.replace(": 1}", ": NaN}") + "]}"
    nan = api.post(
        "/v1/deals/what-if",
        content=text,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert nan.status_code == 400, nan.text
    empty = post(api, "/v1/deals/what-if", {"deals": [{"deal_id": open_deals[0], "changes": {}}]})
    assert empty.status_code == 400
    many = {"deals": [{"deal_id": "x", "changes": {"a": 1}}] * (MAX_ITEMS + 1)}
    assert post(api, "/v1/deals/what-if", many).status_code == 413
    assert post(api, "/v1/deals/coaching", {"deals": [{"deal_id": "x"}] * 257}).status_code == 413


def test_what_if_takes_feature_values_instead_of_a_deal(api, open_deals, trained_workdir):
    from spm_ml import registry

    registry.use_local_store(trained_workdir)
    model = registry.load_model("deal-win").model
    names = list(model.feature_names_in_)
    numeric = next(n for n in names if n not in model.categories_)
    row = {n: (None if n in model.categories_ else 1.0) for n in names}
    body = {
        "deals": [
            {"deal_id": "row-1", "features": row, "changes": {numeric: 3.0}},
            {"features": {n: v for n, v in row.items() if n != numeric}, "changes": {numeric: 1}},
            {"deal_id": open_deals[0], "as_of": AS_OF, "changes": {numeric: 3.0}},
        ]
    }
    response = post(api, "/v1/deals/what-if", body)
    assert response.status_code == 200, response.text
    given, incomplete, by_id = response.json()["results"]
    assert given["status"] == 200 and given["deal_id"] == "row-1"
    assert 0 <= given["probability"] <= 1 and 0 <= given["changed_probability"] <= 1
    assert incomplete["status"] == 422 and repr(numeric) in incomplete["error"]
    assert incomplete["error"].startswith("features:")
    assert by_id["status"] == 200
    neither = post(api, "/v1/deals/what-if", {"deals": [{"changes": {numeric: 1}}]})
    assert neither.status_code == 400
