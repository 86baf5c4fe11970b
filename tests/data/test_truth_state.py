"""The simulator's latent state at ``as_of`` reads nothing dated at or after ``as_of``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.data.simulate.truth import (
    OUTCOME_TRUTH,
    latent_deal_state,
    latent_rep_state,
    truth_population,
)

t = pd.Timestamp


def hand_truth() -> dict[str, pd.DataFrame]:
    """Two deals: D1 steps every 7 days from Jan 1, D2 one step; one rep who leaves in March."""
    deals = pd.DataFrame(
        {
            "deal_id": ["D1", "D2"],
            "segment": ["smb", "enterprise"],
            "health_at_creation": [0.5, -0.2],
            "health_at_end": [9.0, 9.0],
            "account_fit": [0.3, 0.1],
            "rep_skill": [0.2, 0.2],
            "rep_engagement": [0.1, 0.1],
            "n_contacts": [3, 6],
            "n_slips": [1, 2],
            "eventual_outcome": ["won", "lost"],
            "eventual_closed_at": [t("2024-03-01"), t("2024-06-01")],
            "open_at_extraction": [False, True],
            "pulled_in": [False, False],
            "pushed_out": [True, False],
            "original_rep_id": ["R1", "R1"],
        }
    )
    steps = pd.DataFrame(
        {
            "deal_id": ["D1", "D1", "D1", "D2"],
            "step_start": [t("2024-01-01"), t("2024-01-08"), t("2024-01-15"), t("2024-01-10")],
            "health": [0.5, 0.8, 0.4, -0.2],
            "stage": ["prospecting", "prospecting", "qualification", "prospecting"],
            "dead": [False, False, True, False],
        }
    )
    months = pd.DataFrame(
        {
            "rep_id": ["R1", "R1"],
            "month_start": [t("2024-01-01"), t("2024-02-01")],
            "skill": [0.2, 0.25],
            "engagement": [0.1, -0.3],
            "manager_quality": [1.0, 1.1],
        }
    )
    return {"deals": deals, "deal_steps": steps, "rep_months": months}


def test_state_is_the_last_step_strictly_before_as_of():
    snapshots = pd.DataFrame(
        {
            "deal_id": ["D1", "D1", "D1", "D2", "D1"],
            "as_of": [
                t("2024-01-08"),  # exactly at the second step: only the first is seen
                t("2024-01-10"),
                t("2024-01-20"),
                t("2024-01-10"),  # exactly at D2's only step: nothing seen
                t("2024-02-01"),  # exactly at a rep month: January's state
            ],
        }
    )
    out = latent_deal_state(hand_truth(), snapshots)
    assert len(out) == len(snapshots)
    np.testing.assert_allclose(out["latent_health"], [0.5, 0.8, 0.4, np.nan, 0.4])
    np.testing.assert_allclose(out["latent_dead"], [0, 0, 1, np.nan, 1])
    np.testing.assert_allclose(out["latent_health_trend"], [np.nan, 0.3, -0.4, np.nan, -0.4])
    np.testing.assert_allclose(out["latent_steps"], [1, 2, 3, 0, 3])
    np.testing.assert_allclose(out["latent_step_days"], [np.nan, 7, 7, np.nan, 7])
    np.testing.assert_allclose(out["latent_days_since_step"], [7, 2, 5, np.nan, 17])
    np.testing.assert_allclose(out["latent_rep_engagement"], [0.1, 0.1, 0.1, 0.1, 0.1])
    assert out["latent_segment"].tolist() == ["smb", "smb", "smb", "enterprise", "smb"]
    np.testing.assert_allclose(out["latent_buying_committee"], [3, 3, 3, 6, 3])


def test_a_rep_month_older_than_a_month_is_not_current_state():
    snapshots = pd.DataFrame({"deal_id": ["D1", "D1"], "as_of": [t("2024-02-20"), t("2024-04-15")]})
    out = latent_deal_state(hand_truth(), snapshots)
    np.testing.assert_allclose(out["latent_rep_engagement"], [-0.3, np.nan])


def test_outcome_fields_are_never_read():
    truth = hand_truth()
    snapshots = pd.DataFrame({"deal_id": ["D1", "D2"], "as_of": [t("2024-01-20")] * 2})
    before = latent_deal_state(truth, snapshots)
    truth["deals"] = truth["deals"].drop(columns=list(OUTCOME_TRUTH))
    pd.testing.assert_frame_equal(latent_deal_state(truth, snapshots), before)
    assert not any(c.endswith(("outcome", "closed_at", "at_end", "slips")) for c in before)


@pytest.fixture(scope="module")
def org():
    from spm_ml.data.simulate import SimulationConfig, simulate

    return simulate(SimulationConfig(n_reps=8, months=8, seed=11))


def test_no_step_or_rep_month_at_or_after_as_of_is_read(org):
    """Rewrite every step and rep month dated at or after the cut-off: nothing moves."""
    from spm_ml.features.snapshots import deal_snapshots

    snapshots = deal_snapshots(org.tables, every_days=5)
    cut = snapshots["as_of"].quantile(0.6).normalize()
    # snapshots up to the cut, and every open deal exactly at the cut (steps at as_of planted)
    at_cut = snapshots.loc[snapshots["as_of"] < cut, "deal_id"].unique()
    probe = pd.concat(
        [
            snapshots.loc[snapshots["as_of"] <= cut, ["deal_id", "as_of"]],
            pd.DataFrame({"deal_id": at_cut, "as_of": cut}),
        ],
        ignore_index=True,
    )
    truth = {k: v.copy() for k, v in org.truth.items()}
    before = latent_deal_state(truth, probe)
    assert before["latent_health"].notna().mean() > 0.9

    steps = truth["deal_steps"]
    late = steps["step_start"] >= cut
    assert late.any()
    rng = np.random.default_rng(0)
    steps.loc[late, "health"] = rng.normal(0, 50, late.sum())
    steps.loc[late, "dead"] = ~steps.loc[late, "dead"]
    # a step planted exactly at the cut for every deal probed there
    planted = pd.DataFrame(
        {"deal_id": at_cut, "step_start": cut, "health": 1e6, "stage": "negotiation", "dead": True}
    )
    truth["deal_steps"] = pd.concat(
        [steps, planted.astype(steps.dtypes.to_dict())], ignore_index=True
    )
    months = truth["rep_months"]
    months.loc[months["month_start"] >= cut, ["skill", "engagement", "manager_quality"]] = 99.0
    deals = truth["deals"]
    for column in OUTCOME_TRUTH:
        deals[column] = deals[column].sample(frac=1.0, random_state=1).to_numpy()

    after = latent_deal_state(truth, probe)
    pd.testing.assert_frame_equal(after, before)


def test_truth_population_is_every_deal_open_on_each_date():
    deals = pd.DataFrame(
        {"deal_id": ["D1", "D2"], "created_at": [t("2023-12-01"), t("2024-01-12")]}
    )
    population = truth_population(
        deals, hand_truth(), [t("2024-01-10"), t("2024-02-01")], horizon_days=40
    )
    rows = list(population.itertuples(index=False, name=None))
    assert rows == [
        ("D1", t("2024-01-10"), 0),  # won on Mar 1: 51 days later, outside the horizon
        ("D1", t("2024-02-01"), 1),
        ("D2", t("2024-02-01"), 0),  # open at extraction in the tables; lost in truth
    ]


def hand_rep_truth() -> dict[str, pd.DataFrame]:
    """R1: months Jan-Mar 2024, a raise on Jan 1, decides on Feb 20 to leave on Mar 15."""
    months = pd.DataFrame(
        {
            "rep_id": ["R1", "R1", "R1"],
            "month_start": [t("2024-01-01"), t("2024-02-01"), t("2024-03-01")],
            "skill": [0.2, 0.25, 0.3],
            "engagement": [0.1, -0.3, -1.5],
            "manager_quality": [1.0, 1.0, -0.5],
            "underpay_gap": [0.0, 0.05, 0.05],
            "attrition_hazard": [0.01, 0.02, 0.0],
        }
    )
    resignations = pd.DataFrame(
        {
            "rep_id": ["R1"],
            "decided_at": [t("2024-02-20")],
            "exit_at": [t("2024-03-15")],
            "left_by_extraction": [True],
        }
    )
    raises = pd.DataFrame(
        {"rep_id": ["R1"], "effective_at": [t("2024-01-01")], "raise_pct": [0.04]}
    )
    return {"rep_months": months, "resignations": resignations, "raises": raises}


def test_rep_state_reads_only_what_was_decided_before_as_of():
    snapshots = pd.DataFrame(
        {
            "rep_id": ["R1", "R1", "R1", "R1", "R2"],
            "as_of": [
                t("2024-01-01"),  # exactly at the first month and the raise: nothing seen
                t("2024-02-20"),  # the day of the decision: not yet seen
                t("2024-02-21"),
                t("2024-03-16"),  # after the exit: no longer resigning
                t("2024-02-21"),  # a rep the truth does not know
            ],
        }
    )
    out = latent_rep_state(hand_rep_truth(), snapshots)
    np.testing.assert_allclose(out["latent_rep_engagement"], [np.nan, -0.3, -0.3, -1.5, np.nan])
    np.testing.assert_allclose(out["latent_rep_resigning"], [0, 0, 1, 0, 0])
    np.testing.assert_allclose(out["latent_rep_last_raise"], [np.nan, 0.04, 0.04, 0.04, np.nan])
    np.testing.assert_allclose(out["latent_rep_days_since_raise"], [np.nan, 50, 51, 75, np.nan])


@pytest.mark.slow
def test_rep_state_ignores_truth_dated_at_or_after_as_of():
    from spm_ml.data.simulate import SimulationConfig, simulate

    org = simulate(SimulationConfig(n_reps=20, months=12, seed=2))
    truth = org.truth
    as_of = t("2024-09-10")
    aes = org.tables.reps.loc[org.tables.reps["role"] == "AE", "rep_id"]
    snapshots = pd.DataFrame({"rep_id": aes.to_numpy(), "as_of": as_of})
    before = latent_rep_state(truth, snapshots)
    later = {
        "rep_months": truth["rep_months"]["month_start"] >= as_of,
        "raises": truth["raises"]["effective_at"] >= as_of,
        "resignations": truth["resignations"]["decided_at"] >= as_of,
    }
    perturbed = dict(truth)
    for name, rows in later.items():
        frame = truth[name].copy()
        numbers = frame.select_dtypes("number").columns
        frame.loc[rows, numbers] = frame.loc[rows, numbers] * -3 + 1
        perturbed[name] = frame.loc[~rows] if name == "resignations" else frame
    pd.testing.assert_frame_equal(before, latent_rep_state(perturbed, snapshots))
    assert before["latent_rep_engagement"].notna().mean() > 0.5
