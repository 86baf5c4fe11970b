"""The owner at ``as_of``: rep features read the deal's owner then, not its final owner."""

from __future__ import annotations

import pandas as pd
import pytest

from spm_ml.data.tables import Tables
from spm_ml.data.validate import validate_tables
from spm_ml.features.context import DealContext
from spm_ml.features.deal_fields import owner_at, owner_at_close
from spm_ml.features.deals import (
    DealFeatureConfig,
    static_features,
    track_record_counts,
    track_record_features,
)
from spm_ml.features.snapshots import deal_snapshots

T = pd.Timestamp
CONFIG = DealFeatureConfig()


def _moves(tables: Tables, rows: list[tuple[str, str, str | None, str]]) -> Tables:
    """``tables`` with owner changes ``(deal_id, changed_at, old, new)`` added to the history."""
    added = pd.DataFrame(rows, columns=["deal_id", "changed_at", "old_value", "new_value"])
    added = added.assign(changed_at=pd.to_datetime(added["changed_at"]), field="rep_id")
    added = added[tables.deal_history.columns].astype(tables.deal_history.dtypes.to_dict())
    return tables.replace(deal_history=pd.concat([tables.deal_history, added], ignore_index=True))


@pytest.fixture
def handed_over(tiny) -> Tables:
    """D2 is created by R2 and handed to R1 on 1 March, then lost on 1 April."""
    deals = tiny.deals.copy()
    deals.loc[deals["deal_id"] == "D2", "rep_id"] = "R1"  # the final owner
    return _moves(tiny.replace(deals=deals), [("D2", "2024-03-01", "R2", "R1")])


def _snap(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"deal_id": [d for d, _ in pairs], "as_of": [T(t) for _, t in pairs]})


def test_owner_before_and_after_a_transfer(handed_over):
    snaps = _snap(("D2", "2024-02-01"), ("D2", "2024-03-01"), ("D2", "2024-03-02"))
    # a change stamped exactly at as_of is not seen yet
    assert list(owner_at(handed_over, snaps)) == ["R2", "R2", "R1"]
    closed = handed_over.deals["deal_id"].isin(["D1", "D2"]).to_numpy()
    assert list(owner_at_close(handed_over)[closed]) == ["R1", "R1"]
    assert owner_at_close(handed_over)[~closed][0] is None
    assert validate_tables(handed_over) == []


def test_rep_features_follow_the_owner_at_as_of(handed_over):
    snaps = _snap(("D2", "2024-02-01"), ("D2", "2024-03-02"))
    static = static_features(handed_over, snaps, DealContext.build(handed_over, CONFIG))
    reps = handed_over.reps.set_index("rep_id")
    tenure = [
        (T("2024-02-01") - reps.at["R2", "hire_date"]).days,
        (T("2024-03-02") - reps.at["R1", "hire_date"]).days,
    ]
    assert static["rep_tenure_days"].tolist() == tenure
    record = track_record_counts(handed_over, snaps, DealContext.build(handed_over, CONFIG))
    # 1 Feb: R2 holds D2 only; 2 Mar: R1 holds D2 (D1 was won on 25 Feb, credited to R1)
    assert record["rep_open_deals"].tolist() == [1, 1]
    assert record["rep_closed"].tolist() == [0, 1]


def test_a_deal_counts_for_its_owner_at_close(handed_over):
    """D2 was lost while R1 owned it: R1's record holds it, R2's does not."""
    later = _snap(("D3", "2024-05-02"))
    assert track_record_counts(handed_over, later, DealContext.build(handed_over, CONFIG))[
        "rep_closed"
    ].tolist() == [2]
    back = _moves(handed_over, [("D3", "2024-05-10", "R1", "R2")])
    moved = _snap(("D3", "2024-05-11"))
    assert owner_at(back, moved)[0] == "R2"
    assert track_record_counts(back, moved, DealContext.build(back, CONFIG))[
        "rep_closed"
    ].tolist() == [0]


def test_without_owner_history_the_deals_table_owner_holds(tiny):
    snaps = _snap(("D1", "2024-02-01"), ("D2", "2024-02-01"), ("D3", "2024-05-20"))
    assert list(owner_at(tiny, snaps)) == list(
        tiny.deals.set_index("deal_id")["rep_id"].reindex(snaps["deal_id"])
    )
    record = track_record_counts(tiny, snaps, DealContext.build(tiny, CONFIG))
    assert record["rep_open_deals"].tolist() == [1, 1, 1]
    assert record["rep_closed"].tolist() == [0, 0, 1]


def test_track_record_features_are_rates_of_the_counts(tiny):
    """Smoothed rates, never the counts themselves: a count since the data began grows with
    the calendar, so later snapshots would meet values training never saw."""
    snaps = _snap(("D3", "2024-02-01"), ("D3", "2024-05-02"))
    context = DealContext.build(tiny, CONFIG)
    record = track_record_features(tiny, snaps, CONFIG, context)
    assert set(record) == {"rep_win_rate", "account_win_rate", "rep_open_deals"}
    k = CONFIG.win_rate_prior_strength
    # 1 Feb: nothing closed yet, every rate is the 0.25 fallback; 2 May: overall 1 won of 2,
    # R1 won D1 (1 of 1), A2 lost D2 (0 of 1)
    assert record["rep_win_rate"].tolist() == pytest.approx([0.25, (1 + k * 0.5) / (1 + k)])
    assert record["account_win_rate"].tolist() == pytest.approx([0.25, k * 0.5 / (1 + k)])
    assert (
        record["rep_open_deals"].tolist()
        == track_record_counts(tiny, snaps, context)["rep_open_deals"].tolist()
    )


def test_unknown_owners_are_contract_problems(handed_over):
    broken = _moves(handed_over, [("D3", "2024-05-10", "R1", "NOBODY")])
    problems = validate_tables(broken)
    assert [(p.table, p.column, p.kind) for p in problems] == [
        ("deal_history", "new_value", "dangling_reference")
    ]
    assert "'NOBODY' is not a rep_id" in problems[0].message


@pytest.fixture(scope="module")
def org() -> Tables:
    from spm_ml.data.simulate import SimulationConfig, simulate

    return simulate(SimulationConfig(n_reps=16, months=12, seed=2)).tables


class BruteForceOwner:
    """The contract's rule spelt out with plain Python, one deal and one moment at a time."""

    def __init__(self, org: Tables) -> None:
        h = org.deal_history
        moves = h[h["field"] == "rep_id"].sort_values("changed_at", kind="stable")
        self.moves = {
            d: list(zip(g["changed_at"], g["old_value"], g["new_value"], strict=True))
            for d, g in moves.groupby("deal_id", sort=False)
        }
        self.final = dict(zip(org.deals["deal_id"], org.deals["rep_id"], strict=True))

    def __call__(self, deal_id: str, at: pd.Timestamp) -> str:
        moves = self.moves.get(deal_id)
        if not moves:
            return self.final[deal_id]
        before = [new for when, _, new in moves if when < at]
        return before[-1] if before else moves[0][1]


def test_rep_features_match_a_brute_force_count_on_a_simulated_org(org):
    """Owner, open deals and record of sampled snapshots, counted deal by deal."""
    owner_of = BruteForceOwner(org)
    assert len(owner_of.moves) >= 5, "the org needs reassigned deals for this test to mean much"
    snaps = deal_snapshots(org, every_days=7)
    sample = pd.concat(
        [
            snaps[snaps["deal_id"].isin(list(owner_of.moves))].sample(25, random_state=0),
            snaps.sample(25, random_state=1),
        ],
        ignore_index=True,
    )[["deal_id", "as_of"]]
    owners = owner_at(org, sample)
    counts = track_record_counts(org, sample, DealContext.build(org, CONFIG))
    static = static_features(org, sample, DealContext.build(org, CONFIG))
    team = org.reps.set_index("rep_id")["team"]
    deals = list(
        zip(org.deals["deal_id"], org.deals["created_at"], org.deals["closed_at"], strict=True)
    )
    for i, (deal_id, as_of) in enumerate(zip(sample["deal_id"], sample["as_of"], strict=True)):
        owner = owner_of(deal_id, as_of)
        assert owners[i] == owner
        assert static["rep_team"][i] == team[owner]
        held = sum(
            1
            for d, created, closed in deals
            if created < as_of and not closed < as_of and owner_of(d, as_of) == owner
        )
        assert counts["rep_open_deals"][i] == held
        credited = sum(
            1 for d, _, closed in deals if closed < as_of and owner_of(d, closed) == owner
        )
        assert counts["rep_closed"][i] == credited


def test_no_snapshot_has_an_owner_hired_after_it(org):
    """Reading the final owner gave reassigned deals a rep not yet hired (negative tenure)."""
    snaps = deal_snapshots(org, every_days=7)
    static = static_features(org, snaps, DealContext.build(org, CONFIG))
    assert (static["rep_tenure_days"] >= 0).all()
    final = org.deals.set_index("deal_id")["rep_id"].reindex(snaps["deal_id"]).to_numpy()
    differs = owner_at(org, snaps) != final
    assert 0 < differs.mean() < 0.5
