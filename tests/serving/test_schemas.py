"""The request schema: every rule answers with the field's path, never with a 5xx or a value."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from serving.rep_schemas import RepRiskList
from serving.schemas import (
    MAX_ITEMS,
    DealScore,
    DealScoreList,
    DealScoreRequest,
    EmailIn,
    EmailList,
    HistoryIn,
    TooManyItems,
)
from serving.service import EXAMPLE_REQUEST

MARKER = "ZQX-CUSTOMER-TEXT-7781"


def request(**changes) -> dict:
    body = copy.deepcopy(EXAMPLE_REQUEST)
    body.update(changes)
    return body


def problems(body: dict) -> list[tuple[tuple, str]]:
    """``(loc, type)`` of each problem, as BentoML answers them (JSON in, no inputs out)."""
    with pytest.raises(ValidationError) as caught:
        DealScoreRequest.model_validate_json(json.dumps(body))
    return [(tuple(e["loc"]), e["type"]) for e in caught.value.errors()]


def with_deal(**changes) -> dict:
    body = request()
    body["deal"].update(changes)
    return body


def test_the_shared_example_is_valid():
    parsed = DealScoreRequest.model_validate(EXAMPLE_REQUEST)
    assert parsed.deal.deal_id == "NEW-1" and parsed.deal_id is None
    assert parsed.as_of == datetime(2025, 12, 1)


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        (with_deal(stage="closed_won"), ("deal", "stage"), "closed_stage"),
        (with_deal(stage="won-ish"), ("deal", "stage"), "literal_error"),
        (request(as_of="2025-09-30T23:59:59"), ("as_of",), "date_order"),
        (with_deal(expected_close_at="2025-09-01"), ("deal", "expected_close_at"), "date_order"),
        (with_deal(amount=2e12), ("deal", "amount"), "less_than_equal"),
        (with_deal(amount=-1), ("deal", "amount"), "greater_than_equal"),
        (with_deal(created_at="1500-01-01T00:00:00"), ("deal", "created_at"), "datetime_range"),
        (with_deal(created_at="2262-06-01T00:00:00"), ("deal", "created_at"), "datetime_range"),
        (
            with_deal(created_at="0001-01-01T00:00:00+05:00"),
            ("deal", "created_at"),
            "datetime_range",
        ),
        (with_deal(deal_id="x" * 129), ("deal", "deal_id"), "string_too_long"),
        (with_deal(rep_id=""), ("deal", "rep_id"), "string_too_short"),
        (with_deal(account_id="A\n1"), ("deal", "account_id"), "string_pattern_mismatch"),
        (with_deal(outcome="won"), ("deal",), "reserved_field"),
        (with_deal(closed_at="2025-11-01"), ("deal",), "reserved_field"),
        (request(deal_id="D1"), (), "deal_or_deal_id"),
        ({"as_of": "2025-12-01"}, (), "deal_or_deal_id"),
        (
            {"deal_id": "D1", "activities": [{"type": "call", "occurred_at": "2025-01-01"}]},
            (),
            "events_without_deal",
        ),
        (request(top_k=21), ("top_k",), "less_than_equal"),
        (request(surprise=1), ("surprise",), "extra_forbidden"),
        (
            request(activities=[{"type": "call", "occurred_at": "2300-01-01"}]),
            ("activities", 0, "occurred_at"),
            "datetime_range",
        ),
        (
            request(activities=[{"type": "call", "occurred_at": "2025-01-01", "notes": "x"}]),
            ("activities", 0, "notes"),
            "extra_forbidden",
        ),
        (
            request(emails=[{"direction": "inbound", "sent_at": "1601-01-01"}]),
            ("emails", 0, "sent_at"),
            "datetime_range",
        ),
    ],
)
def test_each_rule_names_its_field(body, loc, kind):
    assert (loc, kind) in problems(body)


def test_non_finite_amounts_are_refused():
    # JSON has no NaN, but Python's json and pydantic's parser accept the literal.
    text = json.dumps(EXAMPLE_REQUEST).replace('"amount": 24000', '"amount": NaN')
    with pytest.raises(ValidationError) as caught:
        DealScoreRequest.model_validate_json(text)
    assert caught.value.errors()[0]["loc"] == ("deal", "amount")


def test_offsets_become_naive_utc():
    body = with_deal(created_at="2025-10-01T02:00:00+02:00")
    body["as_of"] = "2025-12-01T00:00:00-05:00"
    parsed = DealScoreRequest.model_validate(body)
    assert parsed.deal.created_at == datetime(2025, 10, 1, 0, 0)
    assert parsed.as_of == datetime(2025, 12, 1, 5, 0)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def test_as_of_defaults_to_now_and_a_future_deal_is_refused():
    assert DealScoreRequest.model_validate({"deal_id": "D1"}).as_of <= utc_now()
    body = with_deal(created_at="2199-01-01", expected_close_at="2199-02-01")
    body.pop("as_of")
    assert (("as_of",), "date_order") in problems(body)


@pytest.mark.parametrize(
    ("field", "value", "canonical"),
    [
        ("stage", "closed_lost", "closed_lost"),
        ("amount", " 1e3 ", "1000.0"),
        ("amount", "24000.50", "24000.5"),
        ("expected_close_at", "2026-01-15", "2026-01-15"),
        ("expected_close_at", "2026-01-15T23:30:00-02:00", "2026-01-16"),
        ("rep_id", "R00017", "R00017"),
    ],
)
def test_history_values_are_parsed_for_their_field(field, value, canonical):
    entry = HistoryIn(changed_at="2025-10-02", field=field, old_value=value, new_value=value)
    assert entry.new_value == entry.old_value == canonical


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stage", "won"),
        ("amount", "twelve"),
        ("amount", "nan"),
        ("amount", "inf"),
        ("amount", "1e13"),
        ("expected_close_at", "not a date"),
        ("expected_close_at", "1500-01-01"),
        ("expected_close_at", "15/01/2026"),
    ],
)
def test_a_history_value_that_does_not_parse_is_refused(field, value):
    body = request(history=[{"changed_at": "2025-10-02", "field": field, "new_value": value}])
    assert (("history", 0, "new_value"), "history_value") in problems(body)


def test_history_old_value_is_checked_too():
    entry = {"changed_at": "2025-10-02", "field": "amount", "old_value": "x", "new_value": "1"}
    assert (("history", 0, "old_value"), "history_value") in problems(request(history=[entry]))


def test_event_lists_are_bounded():
    many = [{"type": "call", "occurred_at": "2025-11-01"}] * 10_001
    assert (("activities",), "too_long") in problems(request(activities=many))


def email(**fields) -> dict:
    return {"direction": "inbound", "sent_at": "2025-11-28T09:12:00", **fields}


def test_email_scores_come_as_three_that_sum_to_one():
    ok = EmailIn(**email(p_negative=0.1, p_neutral=0.2, p_positive=0.7005))
    assert ok.as_row()["p_positive"] == 0.7005
    kinds = [
        problems(request(emails=[email(p_negative=0.1)])),
        problems(request(emails=[email(p_negative=0.1, p_neutral=0.1, p_positive=0.1)])),
        problems(request(emails=[email(p_negative=1.5, p_neutral=0, p_positive=0)])),
    ]
    assert (("emails", 0), "email_scores") in kinds[0]
    assert (("emails", 0), "email_scores") in kinds[1]
    assert (("emails", 0, "p_negative"), "less_than_equal") in kinds[2]


def test_email_text_is_bounded_never_shown_and_never_a_row():
    parsed = EmailIn(**email(subject=MARKER, body=MARKER))
    assert parsed.has_text
    assert MARKER not in repr(parsed) and MARKER not in str(parsed)
    assert "subject" not in parsed.as_row() and "body" not in parsed.as_row()
    too_long = problems(request(emails=[email(body="x" * 100_001)]))
    assert (("emails", 0, "body"), "string_too_long") in too_long
    both = problems(
        request(emails=[email(body=MARKER, p_negative=0.2, p_neutral=0.3, p_positive=0.5)])
    )
    assert (("emails", 0), "email_scores_and_text") in both


def test_errors_never_carry_the_submitted_text():
    body = request(emails=[email(sent_at=MARKER, text=MARKER, body=MARKER * 30_000)])
    body["deal"]["custom_note"] = MARKER * 100
    with pytest.raises(ValidationError) as caught:
        DealScoreRequest.model_validate_json(json.dumps(body))
    shown = json.dumps(caught.value.errors(include_input=False, include_context=False))
    assert MARKER not in shown
    assert "emails" in shown and "custom_note" in shown


def test_custom_fields_are_kept_but_bounded():
    parsed = DealScoreRequest.model_validate(with_deal(Segment__c="smb", Seats__c=12, Flag=True))
    assert parsed.deal.model_extra == {"Segment__c": "smb", "Seats__c": 12.0, "Flag": True}
    too_many = with_deal(**{f"f{i}": i for i in range(51)})
    assert (("deal",), "too_many_custom_fields") in problems(too_many)
    assert (("deal",), "custom_field_name") in problems(with_deal(**{"x" * 65: 1}))
    nested = problems(with_deal(custom={"a": 1}))
    assert any(loc[:2] == ("deal", "custom") for loc, _ in nested)


def test_scores_answer_in_utc():
    score = DealScore(
        deal_id="D1",
        as_of=datetime(2025, 12, 1),
        probability=0.5,
        drivers=[],
        models=[{"name": "deal-win", "version": "1", "alias": "champion"}],
    )
    assert json.loads(score.model_dump_json())["as_of"] == "2025-12-01T00:00:00Z"


@pytest.mark.parametrize(
    ("model", "field", "item"),
    [
        (DealScoreList, "deals", {"deal_id": "D1"}),
        (RepRiskList, "reps", {"rep_id": "R1"}),
        (EmailList, "emails", {"body": "hello"}),
    ],
)
def test_lists_are_counted_before_their_items_are_read(model, field, item):
    assert len(getattr(model.model_validate({field: [item] * MAX_ITEMS}), field)) == MAX_ITEMS
    # one more is 413 (TooManyItems), even when the items are broken: they are never read
    with pytest.raises(TooManyItems, match=f"{field}: at most {MAX_ITEMS}"):
        model.model_validate({field: [{"broken": True}] * (MAX_ITEMS + 1)})
    assert TooManyItems.error_code == 413
    with pytest.raises(ValidationError):
        model.model_validate({field: []})
    schema = model.model_json_schema()["properties"][field]
    assert schema["maxItems"] == MAX_ITEMS and schema["minItems"] == 1
