"""Leaks that only show together: columns that describe the cycle through its end.

A win/loss export often holds columns measured when the deal closed: days in each stage,
the number of stage changes, the share of the cycle spent per stage.  Each can be weak alone
(the single-column screen lets it through), while together they reconstruct how and when
the deal ended; a model on them scores well on closed deals and cannot be reproduced on open
ones.

The screen here flags such columns (by name: durations, counts and shares; by value: columns
of shares that add up to a whole on every row), then tests the flagged group *together*:
the out-of-fold ROC AUC of a model on the group alone, and the drop in AUC when the group is
removed from the other used columns.  A group that alone separates the outcome (AUC at least
:data:`JOINT_LEAK_AUC`) is a leak and is excluded; ``--keep-col`` keeps a column on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

JOINT_LEAK_AUC = 0.90
"""Out-of-fold ROC AUC of the flagged group alone at or above which it is a joint leak."""
MIN_GROUP = 2
"""A group needs at least this many flagged columns (one column is the single screen's job)."""

DURATION_WORDS = frozenset(
    ["duration", "days", "hours", "weeks", "months", "time", "cycle", "length", "elapsed", "spent"]
)
COUNT_WORDS = frozenset(
    ["count", "counts", "changes", "changed", "steps", "stages", "touches", "touchpoints"]
)
SHARE_WORDS = frozenset(
    ["ratio", "share", "pct", "percent", "percentage", "proportion", "fraction"]
)
WHOLE_TOLERANCE = 0.01
"""Shares "add up to a whole" when every row's sum is within 1% of the median row sum."""


@dataclass(frozen=True)
class JointLeak:
    """A group of columns that together separate the outcome."""

    columns: tuple[str, ...]
    why: dict[str, str]
    """Why each column was flagged (its name or its values)."""
    group_auc: float
    """Out-of-fold ROC AUC of a model on the group alone."""
    drop_auc: float
    """ROC AUC of the other used columns with the group, minus without it."""

    def message(self, column: str) -> str:
        return (
            f"joint leak: {self.why[column]}; with {len(self.columns) - 1} other such column(s) "
            f"({', '.join(c for c in self.columns if c != column)}) it separates the outcome "
            f"(group alone AUC {self.group_auc:.3f}; removing the group lowers the model's "
            f"AUC by {self.drop_auc:.3f}): measured through the end of the cycle? "
            f"--keep-col {column} to use it"
        )


def cycle_measure_reason(name_words: set[str]) -> str | None:
    """Why a numeric column's name suggests a measure through the end of the cycle."""
    for words, what in (
        (DURATION_WORDS, "a duration"),
        (COUNT_WORDS, "a count"),
        (SHARE_WORDS, "a share"),
    ):
        hit = sorted(name_words & words)
        if hit:
            return f"named like {what} ({hit[0]!r})"
    return None


def shares_of_a_whole(numbers: pd.DataFrame) -> list[str]:
    """Columns of ``numbers`` that hold shares in [0, 1] (or [0, 100]) adding up to the same
    whole on every row, such as the share of the cycle spent in each stage."""
    bounded = [
        c
        for c in numbers.columns
        if numbers[c].notna().all() and numbers[c].min() >= 0 and numbers[c].max() <= 100
    ]
    if len(bounded) < MIN_GROUP:
        return []
    total = numbers[bounded].sum(axis=1)
    whole = float(total.median())
    if whole <= 0 or ((total - whole).abs() > WHOLE_TOLERANCE * whole).any():
        return []
    return bounded


def out_of_fold_auc(X: pd.DataFrame, y: np.ndarray, seed: int = 0) -> float:
    """ROC AUC of a small LightGBM on ``X``, out of fold (3 stratified folds)."""
    from lightgbm import LGBMClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y, dtype=int)
    scores = np.zeros(len(y))
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    for fit, held in folds.split(X, y):
        model = LGBMClassifier(
            n_estimators=100,
            learning_rate=0.1,
            num_leaves=15,
            min_child_samples=20,
            random_state=seed,
            n_jobs=1,  # two threads ran ~10x slower on a busy 2-core machine; same trees
            verbose=-1,
        )
        model.fit(X.iloc[fit], y[fit])
        scores[held] = model.predict_proba(X.iloc[held])[:, 1]
    return float(roc_auc_score(y, scores))


def find_joint_leak(
    numbers: pd.DataFrame,
    flagged: dict[str, str],
    others: pd.DataFrame,
    y: np.ndarray,
    seed: int = 0,
) -> JointLeak | None:
    """Test the ``flagged`` columns of ``numbers`` together (see the module docstring).

    ``others`` are the other used columns, model-ready, for the drop in AUC.
    """
    columns = [c for c in numbers.columns if c in flagged]
    if len(columns) < MIN_GROUP or len(np.unique(y)) < 2:
        return None
    group_auc = out_of_fold_auc(numbers[columns], y, seed)
    if group_auc < JOINT_LEAK_AUC:
        return None
    with_group = pd.concat([others, numbers[columns]], axis=1)
    without = out_of_fold_auc(others, y, seed) if others.shape[1] else 0.5
    drop = out_of_fold_auc(with_group, y, seed) - without
    return JointLeak(tuple(columns), {c: flagged[c] for c in columns}, group_auc, drop)


def flag_cycle_measures(
    numbers: pd.DataFrame, name_words: dict[str, set[str]], keep: Sequence[str] = ()
) -> dict[str, str]:
    """Numeric columns that may measure the cycle through its end, with why; ``keep``
    columns (``--keep-col``) are never flagged."""
    flagged = {}
    for column in numbers.columns:
        reason = cycle_measure_reason(name_words[column])
        if reason and column not in keep:
            flagged[column] = reason
    for column in shares_of_a_whole(numbers):
        if column not in keep:
            flagged.setdefault(column, "a share that adds up to a whole with its neighbours")
    return flagged
