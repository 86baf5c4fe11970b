"""A rep posted with its records: the organisation with the posted rows in place of the rep's.

Posting a rep exactly as the data source holds it must give back the data source, row for
row and in its order (the Monte Carlo's draws follow the rows); posting a changed rep changes
only that rep's rows; references outside the rep's own rows are checked, naming the field.
"""

from __future__ import annotations

import pandas as pd
import pytest

from spm_ml.data.overlay import PostedRep, PostedRepError, rep_record, with_posted_reps
from spm_ml.data.simulate import SimulationConfig, simulate
from spm_ml.data.tables import Tables

TABLES = ("reps", "quotas", "compensation", "rep_history", "deals", "activities", "emails")


@pytest.fixture(scope="module")
def org() -> Tables:
    return simulate(SimulationConfig(n_reps=8, months=8, seed=11)).tables


def posted(record: dict, where: str = "reps.0.rep") -> PostedRep:
    """What the service makes of a posted rep (the JSON record split into its tables)."""
    lists = ("quotas", "compensation", "deals", "deal_history", "activities", "emails")
    rep = {k: v for k, v in record.items() if k not in {*lists, "history", "custom_fields"}}
    rep = {**record.get("custom_fields", {}), **rep}
    return PostedRep(
        rep=rep,
        where=where,
        rep_history=record["history"],
        **{name: record[name] for name in lists},
    )


def _rep_with_moved_deals(org: Tables) -> str:
    """An AE who owns deals, has activities and emails: the richest case."""
    deals = org.deals
    counts = deals.groupby("rep_id").size()
    return str(counts.idxmax())


def test_a_rep_posted_as_held_gives_back_the_data_source(org):
    rep = _rep_with_moved_deals(org)
    record = rep_record(org, rep)
    assert record["deals"] and record["activities"] and record["quotas"]
    overlaid = with_posted_reps(org, [posted(record)])
    for name in TABLES:
        source, back = getattr(org, name), getattr(overlaid, name)
        # posted rows get new ids; posted emails carry scores, never text
        ids = [c for c in ("activity_id", "email_id", "subject", "body") if c in source]
        pd.testing.assert_frame_equal(
            back.drop(columns=ids).reset_index(drop=True),
            source.drop(columns=ids).reset_index(drop=True),
            check_dtype=True,
            obj=name,
        )
    history = org.deal_history.reset_index(drop=True)
    assert len(overlaid.deal_history) == len(history)
    assert (overlaid.deal_history["changed_at"] == history["changed_at"]).all()


def test_a_changed_rep_changes_only_its_rows(org):
    rep = _rep_with_moved_deals(org)
    record = rep_record(org, rep)
    dropped = record["deals"][0]["deal_id"]
    record["deals"] = record["deals"][1:]
    record["deal_history"] = [h for h in record["deal_history"] if h["deal_id"] != dropped]
    record["emails"] = [e for e in record["emails"] if e["deal_id"] != dropped]
    record["activities"] = [a for a in record["activities"] if a.get("deal_id") != dropped]
    record["quotas"][0]["quota_amount"] = 1.0
    overlaid = with_posted_reps(org, [posted(record)])
    assert dropped not in set(overlaid.deals["deal_id"])
    assert len(overlaid.deals) == len(org.deals) - 1
    others = org.deals[org.deals["rep_id"] != rep]
    kept = overlaid.deals[overlaid.deals["rep_id"] != rep]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), others.reset_index(drop=True))
    mine = overlaid.quotas[overlaid.quotas["rep_id"] == rep]
    assert mine["quota_amount"].iloc[0] == 1.0


def test_a_new_rep_joins_the_organisation(org):
    record = rep_record(org, _rep_with_moved_deals(org))
    record["rep_id"] = "NEW-REP"
    for deal in record["deals"]:
        deal["deal_id"] = "NEW-" + deal["deal_id"]
    for row in (*record["deal_history"], *record["emails"]):
        row["deal_id"] = "NEW-" + row["deal_id"]
    record["activities"] = [
        {**a, "deal_id": "NEW-" + a["deal_id"], "rep_id": "NEW-REP"}
        for a in record["activities"]
        if a.get("deal_id") is not None
    ]
    overlaid = with_posted_reps(org, [posted(record)])
    assert len(overlaid.reps) == len(org.reps) + 1
    assert len(overlaid.deals) == len(org.deals) + len(record["deals"])
    assert (overlaid.activities["rep_id"] == "NEW-REP").sum() == len(record["activities"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["deals"][0].update(account_id="NO-SUCH-ACCOUNT"), "deals.0.account_id"),
        (lambda r: r.update(manager_id="NO-SUCH-MANAGER"), "manager_id"),
        (lambda r: r["activities"][0].update(deal_id="NO-SUCH-DEAL"), "activities.0.deal_id"),
    ],
)
def test_references_outside_the_rep_are_checked_naming_the_field(org, change, field):
    record = rep_record(org, _rep_with_moved_deals(org))
    change(record)
    with pytest.raises(PostedRepError, match="NO-SUCH") as caught:
        with_posted_reps(org, [posted(record, where="reps.3.rep")])
    assert caught.value.field == f"reps.3.rep.{field}"


def test_custom_fields_the_organisation_lacks_are_refused_not_dropped(org):
    record = rep_record(org, _rep_with_moved_deals(org))
    record["deals"][1]["NO-SUCH-FIELD"] = "x"
    with pytest.raises(PostedRepError, match="NO-SUCH-FIELD") as caught:
        with_posted_reps(org, [posted(record)])
    assert caught.value.field == "reps.0.rep.deals.1.NO-SUCH-FIELD"
    record = rep_record(org, _rep_with_moved_deals(org))
    record["custom_fields"] = {"NO-SUCH-COLUMN": 1.0}
    with pytest.raises(PostedRepError, match="NO-SUCH-COLUMN") as caught:
        with_posted_reps(org, [posted(record)])
    assert caught.value.field == "reps.0.rep.custom_fields.NO-SUCH-COLUMN"


def test_another_reps_deal_cannot_be_posted(org):
    rep = _rep_with_moved_deals(org)
    record = rep_record(org, rep)
    theirs = org.deals.loc[org.deals["rep_id"] != rep, "deal_id"].iloc[0]
    record["deals"][0]["deal_id"] = theirs
    with pytest.raises(PostedRepError, match="another rep's deal"):
        with_posted_reps(org, [posted(record)])
