"""The real service over HTTP: ``spm-ml serve`` on a free localhost port, called with httpx."""

from __future__ import annotations

import copy
import json
import time

import httpx
import pandas as pd
import pytest

from serving.schemas import MAX_ITEMS
from serving.service import EXAMPLE_REQUEST

pytestmark = pytest.mark.slow
SCORE = "/v1/deals/score"


def example_for(workdir) -> dict:
    """The shared example request, pointed at a rep and account of this organisation."""
    deals = pd.read_parquet(workdir / "data" / "deals.parquet")
    known = deals.iloc[0]
    request = copy.deepcopy(EXAMPLE_REQUEST)
    request["deal"].update(
        rep_id=known["rep_id"], account_id=known["account_id"], product=known["product"]
    )
    return request


def post(api: httpx.Client, **kwargs) -> httpx.Response:
    """POST to /v1/deals/score; ``json`` is one deal (sent as a list of one) unless it is a
    whole body already (a dict with ``deals``, or not a dict)."""
    body = kwargs.pop("json", None)
    if body is not None:
        whole = not isinstance(body, dict) or "deals" in body
        kwargs["json"] = body if whole else {"deals": [body]}
    return api.post(SCORE, **kwargs)


def only(response: httpx.Response) -> dict:
    """The one result of a one-deal answer."""
    (result,) = response.json()["results"]
    return result


def test_scores_a_posted_deal_with_drivers(api, trained_workdir):
    response = post(api, json=example_for(trained_workdir))
    assert response.status_code == 200, response.text
    body = only(response)
    assert body["status"] == 200 and "error" not in body
    assert body["deal_id"] == "NEW-1"
    assert 0.0 <= body["probability"] <= 1.0
    assert len(body["drivers"]) == 3
    assert {d["direction"] for d in body["drivers"]} <= {"raises", "lowers"}
    assert body["models"] == [{"name": "deal-win", "version": "1", "alias": "champion"}]


def test_more_engagement_changes_the_score(api, trained_workdir):
    quiet = example_for(trained_workdir)
    quiet["activities"], quiet["emails"] = [], []
    busy = example_for(trained_workdir)
    a = only(post(api, json=quiet))["probability"]
    b = only(post(api, json=busy))["probability"]
    assert a != b


def test_a_list_answers_each_item_with_its_status(api, trained_workdir):
    deals = pd.read_parquet(trained_workdir / "data" / "deals.parquet")
    open_deal = deals[deals["closed_at"].isna()].iloc[0]["deal_id"]
    as_of = "2024-12-31T00:00:00"
    body = {
        "deals": [
            {"deal_id": open_deal, "as_of": as_of},
            {"deal_id": "NO-SUCH-DEAL", "as_of": as_of},
            example_for(trained_workdir),
            {"deal_id": open_deal, "as_of": as_of, "top_k": 1},
        ]
    }
    response = post(api, json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 404, 200, 200]
    assert [r["deal_id"] for r in results] == [open_deal, "NO-SUCH-DEAL", "NEW-1", open_deal]
    assert results[1]["error"].startswith("deal_id:") and "NO-SUCH-DEAL" in results[1]["error"]
    assert "probability" not in results[1]
    assert results[0]["probability"] == results[3]["probability"]
    assert len(results[0]["drivers"]) == 3 and len(results[3]["drivers"]) == 1
    assert all(r["models"][0]["name"] == "deal-win" for r in results)


def test_a_list_over_the_limit_is_413_and_an_empty_one_400(api):
    too_many = {"deals": [{"deal_id": f"D{i}"} for i in range(MAX_ITEMS + 1)]}
    response = post(api, json=too_many)
    assert response.status_code == 413, response.text
    assert str(MAX_ITEMS) in response.json()["error"] and "deals" in response.json()["error"]
    assert post(api, json={"deals": [{"deal_id": "x"}] * MAX_ITEMS}).status_code == 404
    empty = post(api, json={"deals": []})
    assert empty.status_code == 400 and empty.json()["detail"][0]["loc"] == ["deals"]


def test_bad_request_is_rejected_with_the_field_named(api):
    response = post(api, json={"deal": {"deal_id": "x"}})
    assert response.status_code == 400
    assert "rep_id" in response.text and "amount" in response.text
    problems = response.json()["detail"]
    assert {"loc": ["deals", 0, "deal", "rep_id"], "type": "missing"} in [
        {"loc": p["loc"], "type": p["type"]} for p in problems
    ]


@pytest.mark.parametrize(
    ("value", "kind"),
    [("NaN", "finite_number"), ("Infinity", "finite_number"), ('"lots"', "float_parsing")],
)
def test_non_finite_and_mistyped_numbers_are_400_naming_the_field(
    api, trained_workdir, value, kind
):
    text = json.dumps({"deals": [example_for(trained_workdir)]})
    text = text.replace('"amount": 24000', f'"amount": {value}')
    response = post(api, content=text, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["deals", 0, "deal", "amount"] and problem["type"] == kind


def test_unseen_categories_are_scored_not_refused(api, trained_workdir):
    request = example_for(trained_workdir)
    request["deal"]["product"] = "A product nobody ever sold"
    request["deal"]["industry_x"] = "an unseen custom value"
    response = post(api, json=request)
    assert response.status_code == 200, response.text
    assert 0 <= only(response)["probability"] <= 1


def test_bad_stage_is_rejected(api, trained_workdir):
    request = example_for(trained_workdir)
    request["deal"]["stage"] = "won-ish"
    response = post(api, json=request)
    assert response.status_code == 400 and "stage" in response.text


MARKER = "ZQX-CUSTOMER-TEXT-7781"


def with_change(workdir, path: tuple, value) -> dict:
    request = example_for(workdir)
    *parents, last = path
    target = request
    for key in parents:
        target = target[key]
    target[last] = value
    return request


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("deal", "created_at"), "1500-01-01T00:00:00", "created_at"),  # was HTTP 500
        (("deal", "expected_close_at"), "2300-01-01T00:00:00", "expected_close_at"),
        (("as_of",), "2025-09-01T00:00:00", "as_of"),
        (("deal", "stage"), "closed_won", "stage"),
        (("deal", "amount"), 1e15, "amount"),
        (("deal", "deal_id"), "x" * 200, "deal_id"),
        (
            ("history",),
            [{"changed_at": "2025-10-02", "field": "expected_close_at", "new_value": "soon"}],
            "new_value",  # was HTTP 500
        ),
        (("emails",), [{"direction": "inbound", "sent_at": "9999-01-01T00:00:00"}], "sent_at"),
    ],
)
def test_out_of_range_and_malformed_values_are_400_naming_the_field(
    api, trained_workdir, path, value, field
):
    response = post(api, json=with_change(trained_workdir, path, value))
    assert response.status_code == 400, response.text
    assert any(field in problem["loc"] for problem in response.json()["detail"])


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"hello", "text/plain", 415),
        (b"a=1", "multipart/form-data", 415),  # was HTTP 500
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
    ],
)
def test_malformed_bodies_are_4xx(api, content, content_type, status):
    response = post(api, content=content, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_a_body_over_the_limit_is_413(api):
    huge = {"deal_id": "x", "padding": "y" * 2_100_000}
    assert post(api, json=huge).status_code == 413


def test_unknown_routes_and_methods_are_4xx(api):
    assert api.get("/no/such/route").status_code == 404
    assert api.post("/v2/deals/score", json={}).status_code == 404
    assert api.get("/v1/deals/score").status_code == 405


def test_a_deal_is_scored_by_id_and_unknown_ids_are_404(api, trained_workdir):
    unknown = post(api, json={"deal_id": "NO-SUCH-DEAL"})
    assert unknown.status_code == 404 and "deal_id" in unknown.json()["error"]
    assert only(unknown)["status"] == 404
    deals = pd.read_parquet(trained_workdir / "data" / "deals.parquet")
    open_deal = deals[deals["closed_at"].isna()].iloc[0]
    known = post(api, json={"deal_id": open_deal["deal_id"], "as_of": "2024-12-31T00:00:00"})
    assert known.status_code == 200, known.text
    assert only(known)["label"].startswith("won within")
    closed = deals[deals["closed_at"].notna()].iloc[0]
    late = post(api, json={"deal_id": closed["deal_id"], "as_of": "2024-12-31T00:00:00"})
    assert late.status_code == 422 and "as_of" in late.json()["error"]


def test_a_posted_deal_without_its_history_is_422_naming_it(api, trained_workdir):
    request = example_for(trained_workdir)
    request["history"] = []
    response = post(api, json=request)
    assert response.status_code == 422
    assert response.json()["error"].startswith("history:")
    request = example_for(trained_workdir)
    request["deal"]["rep_id"] = "NOT-A-REP"
    response = post(api, json=request)
    assert response.status_code == 422 and "deal.rep_id" in response.json()["error"]


def test_email_text_is_scored_and_gives_tone(api, trained_workdir, server_log):
    marker = "QUOKKA-PRIVATE-5521"
    request = example_for(trained_workdir)
    inbound = request["emails"][1]
    for key in ("p_negative", "p_neutral", "p_positive"):
        inbound.pop(key)
    inbound["body"] = f"We are going with another vendor. {marker}"
    negative = post(api, json=request)
    assert negative.status_code == 200, negative.text
    inbound["body"] = f"Great news: the budget is approved, let's sign this week! {marker}"
    positive = post(api, json=request)
    assert positive.status_code == 200, positive.text
    assert only(positive)["probability"] != only(negative)["probability"]
    assert marker not in positive.text + negative.text
    assert marker not in server_log.read_text()


def test_posted_email_scores_are_accepted(api, trained_workdir):
    request = example_for(trained_workdir)
    request["emails"][0].update(p_negative=0.1, p_neutral=0.2, p_positive=0.7)
    assert post(api, json=request).status_code == 200


def test_the_openapi_document_carries_the_version(api):
    import spm_ml

    doc = api.get("/docs.json").json()
    assert doc["info"]["version"] == spm_ml.__version__
    for route in ("/v1/deals/score", "/v1/reps/risk", "/v1/emails/sentiment", "/admin/reload"):
        assert doc["paths"][route]["post"]["description"], route
    deals = doc["paths"]["/v1/deals/score"]["post"]["requestBody"]["content"]
    assert deals["application/json"]["schema"]["properties"]["deals"]["maxItems"] == MAX_ITEMS


def test_rejected_requests_leave_no_customer_text_in_the_server_log(
    api, server_log, trained_workdir
):
    email_text = example_for(trained_workdir)
    email_text["emails"] = [
        {"direction": "inbound", "sent_at": "2025-11-28", "subject": MARKER, "body": MARKER}
    ]
    email_text["deal"]["amount"] = -1  # rejected whether or not email text is scored
    extra_field = example_for(trained_workdir)
    extra_field["emails"][0]["notes"] = f"Dear Ann, {MARKER}"
    bad_email = example_for(trained_workdir)
    bad_email["emails"] = [
        {"direction": MARKER, "sent_at": MARKER, "subject": MARKER * 5_000, "sig": MARKER}
    ]
    whole_body = {"deals": [[{"emails": [{"body": MARKER}]}]]}  # pydantic quotes it all
    bad_history = example_for(trained_workdir)
    bad_history["history"] = [{"changed_at": "2025-10-02", "field": "amount", "new_value": MARKER}]
    for request in (email_text, extra_field, bad_email, bad_history):
        body = json.dumps({"deals": [request]})
        response = post(api, content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, response.text
        assert MARKER not in response.text
    response = post(api, json=whole_body)
    assert response.status_code == 400 and MARKER not in response.text
    for text in ({"body": MARKER}, {"subject": MARKER, "body": 7}, {"body": MARKER, MARKER: 1}):
        response = api.post("/v1/emails/sentiment", json={"emails": [text]})
        assert MARKER not in response.text.replace(f'"{MARKER}"', "")  # only an unknown key
    # a key the API does not know is echoed to its sender (so it can be fixed), not logged
    key_only = example_for(trained_workdir)
    key_only["emails"][0][MARKER] = 1
    assert post(api, json=key_only).status_code == 400
    time.sleep(1.0)  # log lines are written by the worker process
    log = server_log.read_text()
    assert MARKER not in log
    # the rejections were logged (so this scan looked at the right place), as paths and kinds
    assert ".0.emails.0.<extra>: extra_forbidden" in log
    assert ".0.history.0.new_value: history_value" in log
    assert ".0.deal.amount: greater_than_equal" in log
    assert "method=POST,path=/v1/deals/score" in log  # the access log (on here) was read too
    assert "Traceback" not in log
