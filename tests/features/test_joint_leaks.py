"""Leaks that only show together: weak columns that jointly describe how the cycle ended."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.features.joint_leaks import JOINT_LEAK_AUC, shares_of_a_whole
from spm_ml.features.tabular import screen_columns, single_column_auc

CYCLE_COLUMNS = (
    "days_in_negotiation",
    "stage_changes",
    "pct_time_proposal",
    "touches_total",
    "cycle_length",
)


def export(n: int = 2000, leaky: bool = True, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A closed-deal export: two honest columns, and five cycle measures that, when
    ``leaky``, decide the outcome together (their sum) while each is weak alone."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(10, 1, n)
    segment = rng.choice(["smb", "mid", "ent"], n)
    cycle = rng.random((n, len(CYCLE_COLUMNS)))
    honest = -0.3 * np.log(amount / 20000) + (segment == "smb") * 0.5
    if leaky:
        won = cycle.sum(axis=1) + 0.1 * honest + rng.normal(0, 0.15, n) > 2.5
    else:
        won = rng.random(n) < 1 / (1 + np.exp(-honest))
    frame = pd.DataFrame(
        {
            "amount": np.round(amount, 2).astype(str),
            "segment": segment,
            **{c: np.round(cycle[:, i] * 30, 2).astype(str) for i, c in enumerate(CYCLE_COLUMNS)},
            "outcome": np.where(won, "Won", "Lost"),
        }
    )
    return frame, won.astype(int)


def test_five_weak_columns_that_leak_together_are_screened():
    frame, y = export()
    # the setup is the issue's: each column alone is weak, together they separate
    for column in CYCLE_COLUMNS:
        assert single_column_auc(frame[column], "numeric", y) < 0.75, column
    decisions = {d.column: d for d in screen_columns(frame, y, target="outcome")}
    for column in CYCLE_COLUMNS:
        decision = decisions[column]
        assert not decision.used, column
        assert decision.reason.startswith("joint leak: named like"), decision.reason
        assert "group alone AUC" in decision.reason and f"--keep-col {column}" in decision.reason
    group_auc = float(decisions[CYCLE_COLUMNS[0]].reason.split("group alone AUC ")[1][:5])
    assert group_auc >= JOINT_LEAK_AUC
    assert decisions["amount"].used and decisions["segment"].used


def test_a_harmless_group_of_the_same_names_is_kept():
    frame, y = export(leaky=False)
    decisions = {d.column: d for d in screen_columns(frame, y, target="outcome")}
    assert all(decisions[c].used for c in CYCLE_COLUMNS)


def test_keep_col_keeps_a_column_of_the_group_on_purpose():
    frame, y = export()
    kept = screen_columns(frame, y, target="outcome", keep_cols=("cycle_length",))
    kept = {d.column: d for d in kept}
    assert kept["cycle_length"].used and not kept["cycle_length"].reason.startswith("joint")
    everything = screen_columns(frame, y, target="outcome", keep_cols=CYCLE_COLUMNS)
    assert all(d.used for d in everything if d.column in CYCLE_COLUMNS)


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_shares_that_add_up_to_a_whole_are_flagged_by_their_values(scale):
    rng = np.random.default_rng(1)
    parts = rng.dirichlet([1, 1, 1], 200) * scale
    numbers = pd.DataFrame(parts, columns=["a", "b", "c"]).assign(other=rng.random(200) * 5)
    assert shares_of_a_whole(numbers[["a", "b", "c"]]) == ["a", "b", "c"]
    assert shares_of_a_whole(numbers) == []  # "other" does not add up with them
