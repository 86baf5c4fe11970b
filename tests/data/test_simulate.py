"""The simulated organisation: contract shape, invariants, realism ranges and causal story."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.data import schema
from spm_ml.data.simulate import SimulationConfig, realism_report, simulate
from spm_ml.data.simulate.realism import measure_realism, rep_quarter_attainment

SMALL = SimulationConfig(n_reps=24, months=9, seed=3)


@pytest.fixture(scope="module")
def small():
    return simulate(SMALL)


@pytest.fixture(scope="module")
def default_org():
    return simulate(SimulationConfig())


@pytest.fixture(scope="module")
def large_org():
    """Attainment bands need ~250 rep-years; a 50-rep org has ~60 (+-6 points of noise)."""
    return simulate(SimulationConfig(n_reps=200))


def test_same_seed_gives_identical_frames(small):
    again = simulate(SMALL)
    for name, frame in small.tables.items():
        pd.testing.assert_frame_equal(frame, getattr(again.tables, name), obj=name)
    for name, frame in small.truth.items():
        pd.testing.assert_frame_equal(frame, again.truth[name], obj=name)


def test_other_seed_differs(small):
    other = simulate(SimulationConfig(n_reps=24, months=9, seed=4))
    assert not small.tables.deals["amount"].equals(other.tables.deals["amount"])


def test_progress_is_reported_and_nothing_printed(capsys):
    calls = []
    simulate(SimulationConfig(n_reps=5, months=3, seed=1), progress=lambda *a: calls.append(a))
    assert capsys.readouterr().out == ""
    stages = {c[0] for c in calls}
    assert {"simulate", "tables"} <= stages
    assert all(done <= total for _, done, total in calls)


@pytest.mark.parametrize("name", schema.TABLE_NAMES)
def test_columns_and_dtypes_follow_the_contract(small, name):
    frame = getattr(small.tables, name)
    tschema = schema.TABLES[name]
    required = tschema.column_names
    assert list(frame.columns[: len(required)]) == required
    assert len(frame) > 0
    for col in tschema.columns:
        dtype = frame[col.name].dtype
        if col.kind in ("id", "string", "enum"):
            assert dtype == "str", (name, col.name, dtype)
        elif col.kind == "datetime":
            assert dtype == "datetime64[ns]", (name, col.name, dtype)
        elif col.kind == "int":
            assert dtype == "Int64", (name, col.name, dtype)
        else:
            assert dtype == "float64", (name, col.name, dtype)
        if not col.nullable:
            assert frame[col.name].notna().all(), (name, col.name)
        if col.values:
            assert set(frame[col.name].dropna()) <= set(col.values), (name, col.name)
        if col.non_negative:
            assert (frame[col.name].dropna() >= 0).all(), (name, col.name)
    if tschema.primary_key:
        assert not frame.duplicated(list(tschema.primary_key)).any()


def test_extra_columns(small):
    t = small.tables
    assert {"segment", "lead_source"} <= set(t.deals.columns)
    assert "contact_id" in t.activities.columns and "contact_id" in t.emails.columns
    assert set(t.deals["segment"]) <= {"smb", "mid_market", "enterprise"}


def test_foreign_keys_are_valid(small):
    t = small.tables
    for tschema in schema.TABLES.values():
        frame = getattr(t, tschema.name)
        for fk in tschema.foreign_keys:
            ref = set(getattr(t, fk.ref_table)[fk.ref_column])
            assert set(frame[fk.column].dropna()) <= ref, (tschema.name, fk.column)


def test_nothing_is_dated_after_extraction(small):
    t = small.tables
    end = t.extracted_at
    assert end == SMALL.start + pd.DateOffset(months=SMALL.months)
    for tschema in schema.TABLES.values():
        frame = getattr(t, tschema.name)
        for col in tschema.columns:
            # planned dates (expected close, quota periods) may lie in the future
            if col.kind == "datetime" and col.name not in ("period_end", "expected_close_at"):
                assert (frame[col.name].dropna() <= end).all(), (tschema.name, col.name)
    # with months a multiple of 3 every reported quarter has ended and been paid
    assert (t.compensation["period_end"] < end).all()
    assert t.compensation["paid_incentive"].notna().all()


def test_running_quarter_is_unpaid():
    org = simulate(SimulationConfig(n_reps=8, months=4, seed=2))
    comp = org.tables.compensation
    running = comp["period_start"] == pd.Timestamp("2024-04-01")
    assert running.any() and comp.loc[running, "paid_incentive"].isna().all()
    assert comp.loc[~running, "paid_incentive"].notna().all()
    assert (
        comp["period_end"] == comp["period_start"] + pd.DateOffset(months=3) - pd.Timedelta(days=1)
    ).all()


def test_events_fall_inside_the_deal_and_the_employment(small):
    t = small.tables
    deals = t.deals.set_index("deal_id")
    stop = deals["closed_at"].fillna(t.extracted_at)
    for frame, col in (
        (t.activities.dropna(subset=["deal_id"]), "occurred_at"),
        (t.emails, "sent_at"),
    ):
        ids = frame["deal_id"]
        assert (frame[col].to_numpy() >= deals["created_at"].reindex(ids).to_numpy()).all()
        assert (frame[col].to_numpy() <= stop.reindex(ids).to_numpy()).all()
    reps = t.reps.set_index("rep_id")
    for frame, col in ((t.activities, "occurred_at"), (t.emails, "sent_at")):
        hire = reps["hire_date"].reindex(frame["rep_id"]).to_numpy()
        exit_ = reps["exit_date"].reindex(frame["rep_id"]).fillna(t.extracted_at).to_numpy()
        assert (frame[col].to_numpy() >= hire).all()
        assert (frame[col].to_numpy() < exit_).all()
    assert (t.activities.merge(t.reps, on="rep_id")["role"] == "AE").all()


def test_deal_states_are_consistent(small):
    d = small.tables.deals
    closed = d["stage"].isin(["closed_won", "closed_lost"])
    assert ((d["outcome"] == "won") == (d["stage"] == "closed_won")).all()
    assert (d["outcome"].notna() == closed).all()
    assert (d["closed_at"].notna() == closed).all()
    assert (d.loc[closed, "closed_at"] >= d.loc[closed, "created_at"]).all()
    assert (~closed).any()


def test_history_replay_reproduces_the_deals_table(small):
    t = small.tables
    h = t.deal_history.sort_values("changed_at", kind="stable")
    fields = h[h["field"] != "rep_id"]
    first = fields.groupby(["deal_id", "field"]).head(1)
    assert first["old_value"].isna().all()
    assert (
        first["changed_at"].to_numpy()
        == t.deals.set_index("deal_id")["created_at"].reindex(first["deal_id"]).to_numpy()
    ).all()
    last = h.groupby(["deal_id", "field"])["new_value"].last().unstack()
    d = t.deals.set_index("deal_id")
    moved = last["rep_id"].dropna()
    assert len(moved) > 0 and (moved == d["rep_id"].reindex(moved.index)).all()
    assert (last["stage"].reindex(d.index) == d["stage"]).all()
    assert np.array_equal(
        last["amount"].reindex(d.index).astype(float).to_numpy(), d["amount"].to_numpy()
    )
    dates = pd.to_datetime(last["expected_close_at"].reindex(d.index), format="%Y-%m-%d")
    assert (dates.to_numpy() == d["expected_close_at"].to_numpy()).all()
    # old_value chains: each change starts from the previous new value
    prev = h.groupby(["deal_id", "field"])["new_value"].shift()
    later = prev.notna()
    assert (h.loc[later, "old_value"] == prev[later]).all()
    assert h.loc[h["old_value"].notna() & ~later, "field"].eq("rep_id").all()
    # a deal's first owner change starts from its original owner
    first_move = h[(h["field"] == "rep_id") & ~later]
    original = small.truth["deals"].set_index("deal_id")["original_rep_id"]
    assert (first_move["old_value"].to_numpy() == original.reindex(first_move["deal_id"])).all()
    terminal = h[(h["field"] == "stage") & h["new_value"].isin(["closed_won", "closed_lost"])]
    closed_at = d["closed_at"].reindex(terminal["deal_id"]).to_numpy()
    assert (terminal["changed_at"].to_numpy() == closed_at).all()


def test_owner_changes_are_recorded_at_the_transfer(small):
    """Each reassignment is a rep_id row at the old owner's exit, to a rep employed then."""
    t = small.tables
    h = t.deal_history
    moves = h[h["field"] == "rep_id"].merge(t.deals, on="deal_id")
    assert len(moves) > 0
    reps = t.reps.set_index("rep_id")
    old = reps.reindex(moves["old_value"])
    new = reps.reindex(moves["new_value"])
    at = moves["changed_at"].to_numpy()
    assert (old["exit_date"].to_numpy() == at).all()
    assert (new["hire_date"].to_numpy() <= at).all()
    assert (new["exit_date"].isna().to_numpy() | (new["exit_date"].to_numpy() > at)).all()
    assert (moves["created_at"].to_numpy() < at).all()
    assert (moves["closed_at"].isna().to_numpy() | (moves["closed_at"].to_numpy() >= at)).all()
    # every deal an original owner left is recorded, and only those
    truth = small.truth["deals"].set_index("deal_id")["original_rep_id"]
    changed = t.deals.set_index("deal_id")["rep_id"] != truth.reindex(t.deals["deal_id"]).values
    assert set(changed[changed].index) <= set(moves["deal_id"])


def test_reps_and_org_chart(small):
    r = small.tables.reps
    assert set(r["role"]) == {"AE", "manager"}
    top = r[r["manager_id"].isna()]
    assert len(top) == 1 and top["role"].iloc[0] == "manager"
    managers = set(r.loc[r["role"] == "manager", "rep_id"])
    assert set(r["manager_id"].dropna()) <= managers
    left = r["exit_date"].notna()
    assert (r.loc[left, "exit_reason"].notna()).all() and r.loc[~left, "exit_reason"].isna().all()
    assert (r["hire_date"] < small.config.start).any()
    # backfills keep headcount close to n_reps
    end = small.tables.extracted_at
    active = r[(r["role"] == "AE") & (r["exit_date"].isna() | (r["exit_date"] > end))]
    assert abs(len(active) - SMALL.n_reps) <= 0.25 * SMALL.n_reps


def test_quota_and_pay_rows_follow_employment(small):
    t = small.tables
    q = t.quotas.merge(t.reps, on="rep_id")
    assert (q["role"] == "AE").all()
    assert (q["hire_date"] <= q["period_end"] + pd.Timedelta(days=1)).all()
    assert (q["exit_date"].isna() | (q["exit_date"] > q["period_start"])).all()
    keys = ["rep_id", "period_start"]
    pd.testing.assert_frame_equal(t.quotas[keys], t.compensation[keys])


def test_email_text_varies_and_matches_truth(small):
    e = small.tables.emails
    truth = small.truth["emails"]
    assert list(truth["email_id"]) == list(e["email_id"])
    assert set(truth["label"]) == {"negative", "neutral", "positive"}
    assert e["body"].nunique() > 0.9 * len(e)
    assert e["body"].str.contains("wrote:\n> ", regex=False).any()
    assert e["subject"].str.startswith("Re: ").any()
    first_tone = truth["sentence_labels"].str.split("|").str[0]
    assert (first_tone == truth["label"]).all()


# figures that need a bigger sample than a 50-rep org gives: ~60 rep-years for the bands and
# ~30 leavers for turnover and tenure (about +-7 points of sampling noise either way)
LARGE_SAMPLE = ("annual_attainment", "annual_turnover", "tenure_years")


def test_default_org_is_realistic(default_org):
    failures = [
        f"{c.name}={c.value:.3f} not in {c.target}"
        for c in realism_report(default_org.tables, default_org.config.targets)
        if not c.name.startswith(LARGE_SAMPLE)
        if not c.ok
    ]
    assert not failures, failures


def test_attainment_bands_turnover_and_tenure_on_a_larger_org(large_org):
    checks = [c for c in realism_report(large_org.tables) if c.name.startswith(LARGE_SAMPLE)]
    assert len(checks) == 7
    failures = [f"{c.name}={c.value:.3f} not in {c.target}" for c in checks if not c.ok]
    assert not failures, failures


def test_bigger_deals_take_longer_slip_more_and_involve_more_people(default_org):
    t = default_org.tables
    d = t.deals
    won = d[d["outcome"] == "won"]
    cycle = ((won["closed_at"] - won["created_at"]).dt.days).groupby(won["segment"]).median()
    assert cycle["smb"] < cycle["mid_market"] < cycle["enterprise"]
    closed = d[d["outcome"].notna()]
    rate = (closed["outcome"] == "won").groupby(closed["segment"]).mean()
    assert rate["smb"] > rate["mid_market"] > rate["enterprise"]
    h = t.deal_history
    slipped = set(h.loc[(h["field"] == "expected_close_at") & h["old_value"].notna(), "deal_id"])
    won_slipped = won["deal_id"].isin(slipped).groupby(won["segment"]).mean()
    assert won_slipped["smb"] < won_slipped["mid_market"] < won_slipped["enterprise"]
    contacts = t.activities.dropna(subset=["deal_id"]).groupby("deal_id")["contact_id"].nunique()
    seg_contacts = contacts.groupby(
        d.set_index("deal_id")["segment"].reindex(contacts.index)
    ).mean()
    assert seg_contacts["smb"] < seg_contacts["mid_market"] < seg_contacts["enterprise"]


def test_inbound_tone_is_worse_in_lost_deals(default_org):
    t = default_org.tables
    e = t.emails.merge(default_org.truth["emails"][["email_id", "label"]], on="email_id")
    e = e[e["direction"] == "inbound"].merge(t.deals[["deal_id", "outcome"]], on="deal_id")
    neg = (e["label"] == "negative").groupby(e["outcome"]).mean()
    assert neg["lost"] > 2 * neg["won"]


def test_slipped_late_deals_win_less(default_org):
    t = default_org.tables
    h = t.deal_history
    closed = t.deals[t.deals["outcome"].notna()].set_index("deal_id")
    slipped = set(h.loc[(h["field"] == "expected_close_at") & h["old_value"].notna(), "deal_id"])
    won = closed["outcome"] == "won"
    flag = closed.index.isin(list(slipped))
    assert won[flag].mean() < won[~flag].mean()


def test_low_coverage_misses_more(default_org):
    fig = measure_realism(default_org.tables)
    assert fig["miss_rate_coverage_below_2x"] > fig["miss_rate_coverage_above_2x"] + 0.05


def test_underpaid_reps_and_bad_managers_lose_more_people(large_org):
    rm = large_org.truth["rep_months"]
    underpaid = rm["underpay_gap"] > 0.1
    assert (
        rm.loc[underpaid, "attrition_hazard"].mean()
        > 1.3 * rm.loc[~underpaid, "attrition_hazard"].mean()
    )
    reps = large_org.tables.reps
    aes = reps[reps["role"] == "AE"]
    quality = rm.groupby("rep_id")["manager_quality"].first()
    aes = aes.assign(q=quality.reindex(aes["rep_id"]).to_numpy()).dropna(subset=["q"])
    left = aes["exit_date"].notna() & (aes["exit_date"] >= large_org.config.start)
    bad = aes["q"] < aes["q"].median()
    assert left[bad].mean() > left[~bad].mean()
    assert (rm.groupby(rm["manager_quality"] < 0)["engagement"].mean().diff().iloc[-1]) < 0


def test_attainment_matches_truth(default_org):
    rq = rep_quarter_attainment(default_org.tables)
    truth = default_org.truth["rep_quarters"]
    merged = rq.merge(truth, on=["rep_id", "period_start"])
    assert len(merged) == len(rq)
    finished = merged["finalized"]
    assert np.allclose(merged.loc[finished, "bookings_x"], merged.loc[finished, "bookings_y"])


def test_config_is_validated():
    with pytest.raises(ValueError):
        SimulationConfig(start=pd.Timestamp("2024-02-01"))
    with pytest.raises(ValueError):
        SimulationConfig(n_reps=0)
    with pytest.raises(ValueError):
        SimulationConfig(warmup_months=4)


def test_validator_finds_no_problems(small, default_org):
    validate = pytest.importorskip("spm_ml.data.validate")
    for org in (small, default_org):
        problems = validate.validate_tables(org.tables)
        assert problems == [], [str(p) for p in problems[:10]]


# ---- careers: manager changes, pay reviews, the slowdown before a voluntary exit


def _replay_manager(history: pd.DataFrame, reps: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    """Each rep's manager at ``at`` replayed from rep_history (reps' value where no rows)."""
    rows = history[history["field"] == "manager_id"].sort_values("changed_at", kind="stable")
    current = reps.set_index("rep_id")["manager_id"].astype("object")
    before = rows[rows["changed_at"] < at].groupby("rep_id")["new_value"].last()
    first = rows.groupby("rep_id")["old_value"].first()
    out = current.copy()
    out.loc[first.index] = first
    out.loc[before.index] = before
    return out


def test_rep_history_records_manager_and_team_changes(default_org):
    t = default_org.tables
    h = t.rep_history
    assert len(h) > 0 and set(h["field"]) == {"manager_id", "team"}
    managers = h[h["field"] == "manager_id"]
    reps = t.reps.set_index("rep_id")
    assert set(managers["old_value"]) | set(managers["new_value"]) <= set(reps.index)
    assert set(h.loc[h["field"] == "team", "new_value"]) <= set(t.reps["team"])
    # every change falls inside the rep's employment and before extraction
    joined = h.join(reps[["hire_date", "exit_date"]], on="rep_id")
    assert (joined["changed_at"] > joined["hire_date"]).all()
    assert (joined["exit_date"].isna() | (joined["changed_at"] < joined["exit_date"])).all()
    assert (h["changed_at"] < t.extracted_at).all()
    # replaying to extraction gives the reps table
    replayed = _replay_manager(h, t.reps, t.extracted_at)
    assert replayed.equals(reps["manager_id"].astype("object"))


def test_managers_leave_and_their_reps_get_a_new_manager(default_org):
    t, truth = default_org.tables, default_org.truth
    exits = truth["manager_exits"]
    assert len(exits) >= 1
    reps = t.reps.set_index("rep_id")
    h = t.rep_history[t.rep_history["field"] == "manager_id"]
    for e in exits.itertuples():
        assert reps.loc[e.manager_id, "exit_date"] == e.exit_at
        moved = h[(h["old_value"] == e.manager_id) & (h["changed_at"] == e.exit_at)]
        assert len(moved) > 0
        # the regional director covers until the replacement arrives
        director = reps.loc[e.manager_id, "manager_id"]
        assert (moved["new_value"] == director).all()
        if e.replacement_arrives_at < t.extracted_at:
            arrived = h[
                (h["new_value"] == e.replacement_id) & (h["changed_at"] == e.replacement_arrives_at)
            ]
            stayed = reps.loc[moved["rep_id"]]
            still_there = stayed["exit_date"].isna() | (
                stayed["exit_date"] > e.replacement_arrives_at
            )
            history = t.rep_history
            moved_on = history[
                (history["field"] == "team")
                & history["changed_at"].between(e.exit_at, e.replacement_arrives_at)
            ]["rep_id"]
            waited = set(moved.loc[still_there.to_numpy(), "rep_id"]) - set(moved_on)
            assert waited and waited <= set(arrived["rep_id"])
    # engagement follows whoever manages the rep that month
    rm = truth["rep_months"]
    assert rm.groupby("rep_id")["manager_id"].nunique().max() > 1
    assert rm.groupby("rep_id")["manager_quality"].nunique().max() > 1


def test_recent_manager_change_and_underpay_raise_the_exit_hazard(large_org):
    rm = large_org.truth["rep_months"]
    calm = ~rm["resigning"]
    changed = rm["manager_changed_recently"] & calm
    assert changed.sum() > 50
    assert (
        rm.loc[changed, "attrition_hazard"].mean()
        > rm.loc[~changed & calm, "attrition_hazard"].mean()
    )


def test_raises_follow_attainment_and_show_in_base_pay(default_org):
    raises = default_org.truth["raises"]
    assert len(raises) > 30
    att = raises["trailing_attainment"]
    top, bottom = att >= att.quantile(0.75), att <= att.quantile(0.25)
    assert raises.loc[top, "raise_pct"].mean() > raises.loc[bottom, "raise_pct"].mean() + 0.02
    assert (raises.loc[(att < 0.7) & ~raises["market_correction"], "raise_pct"] == 0).all()
    # the quarter a raise takes effect pays the new base (full quarters on both sides)
    comp = default_org.tables.compensation.set_index(["rep_id", "period_start"])["base_pay"]
    truth_q = default_org.truth["rep_quarters"].set_index(["rep_id", "period_start"])
    checked = 0
    for r in raises[raises["raise_pct"] > 0.01].itertuples():
        before = (r.rep_id, r.effective_at - pd.DateOffset(months=3))
        after = (r.rep_id, r.effective_at)
        known = before in comp.index and after in comp.index
        if known and truth_q.loc[[before, after], "full_quarter"].all():
            assert comp[after] / comp[before] == pytest.approx(1 + r.raise_pct, abs=0.002)
            checked += 1
    assert checked > 10


def test_market_corrections_shrink_underpay(large_org):
    raises = large_org.truth["raises"]
    rm = large_org.truth["rep_months"].set_index(["rep_id", "month_start"])["underpay_gap"]
    fixed = raises[raises["market_correction"] & (raises["underpay_gap_before"] > 0.05)]
    after = [rm.get((r.rep_id, r.effective_at)) for r in fixed.itertuples()]
    pairs = [
        (b, a) for b, a in zip(fixed["underpay_gap_before"], after, strict=True) if a is not None
    ]
    assert len(pairs) > 5
    assert np.mean([a for _, a in pairs]) < 0.6 * np.mean([b for b, _ in pairs])


def _activity_ratio(activities: pd.DataFrame, refs: pd.Series) -> pd.Series:
    """Per rep: activity per day in the 60 days before ``refs[rep]`` over the 180 before that."""
    a = activities[activities["rep_id"].isin(refs.index)]
    days = (a["rep_id"].map(refs) - a["occurred_at"]) / pd.Timedelta(days=1)
    recent = a[(days > 0) & (days <= 60)].groupby("rep_id").size() / 60
    base = a[(days > 60) & (days <= 240)].groupby("rep_id").size() / 180
    recent = recent.reindex(refs.index, fill_value=0)
    base = base.reindex(refs.index)
    return (recent / base)[base > 0]


def test_voluntary_leavers_slow_down_before_they_go(default_org):
    t = default_org.tables
    aes = t.reps[t.reps["role"] == "AE"]
    window = pd.Timedelta(days=240)
    start, end = default_org.config.start, t.extracted_at
    long_enough = aes["exit_date"].fillna(end) - aes["hire_date"] >= window
    leavers = aes[
        (aes["exit_reason"] == "voluntary") & (aes["exit_date"] >= start + window) & long_enough
    ]
    stayers = aes[aes["exit_date"].isna() & long_enough]
    leaving = _activity_ratio(t.activities, leavers.set_index("rep_id")["exit_date"])
    staying = _activity_ratio(t.activities, pd.Series(end, index=stayers["rep_id"]))
    assert len(leaving) >= 5 and len(staying) >= 20
    assert leaving.mean() < 0.8 * staying.mean()
    assert leaving.mean() < 0.8


def test_deciding_to_leave_comes_before_the_exit(default_org):
    rm = default_org.truth["rep_months"]
    reps = default_org.tables.reps.set_index("rep_id")
    resigning = rm[rm["resigning"]]
    assert len(resigning) > 0
    exit_reason = reps.loc[resigning["rep_id"], "exit_reason"]
    # a rep serving notice leaves voluntarily, unless the notice runs past extraction
    assert set(exit_reason.dropna()) == {"voluntary"}
    # the latent engagement falls at the decision
    by_rep = rm.sort_values("month_start").groupby("rep_id")
    drop = []
    for _rep, months in by_rep:
        flag = months["resigning"].to_numpy()
        if flag.any() and not flag[0]:
            first = int(np.argmax(flag))
            drop.append(months["engagement"].iloc[first] - months["engagement"].iloc[first - 1])
    assert np.mean(drop) < -0.7
