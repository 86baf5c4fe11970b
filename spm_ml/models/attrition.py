"""``AttritionModel``: the probability that a rep leaves voluntarily soon, calibrated."""

from __future__ import annotations

import pandas as pd

from spm_ml.features.reps import CATEGORICAL_REP_FEATURES, REP_FEATURE_COLUMNS
from spm_ml.models.gbm import CalibratedGBM

ATTRITION_FEATURE_COLUMNS = tuple(c for c in REP_FEATURE_COLUMNS if c != "team")
"""The rep features the model reads: all but ``team``.  A team name is a category of ~25
levels in a 200-rep organisation with a few dozen leavers to learn from: the booster splits
on the teams that happened to lose people in training, and the climate it stands for moves
with the manager (a team gets a new one).  ``manager_voluntary_exits_365d`` carries that
climate as a number that follows the manager.  Chosen on seeds 10-12 of the 200-rep
simulated organisation (mean held-out ROC AUC 0.726 with ``team``, 0.746 without, three
model seeds each; ``docs/model-cards/attrition.md``)."""


class AttritionModel(CalibratedGBM):
    """Calibrated LightGBM over :func:`spm_ml.features.reps.rep_history_features` output.

    Attrition data is small: an organisation of a few hundred reps gives a few thousand
    rep-months and a few dozen voluntary exits.  The defaults are set for that: stumps-like
    trees (4 leaves, 30 rows a leaf), a slow learning rate, strong L2 and row and column
    subsampling, so the booster cannot memorise the handful of leavers; and Platt scaling,
    whose two parameters a few dozen positives can estimate (isotonic regression cannot).
    And a linear blend (``linear_blend``): the served log-odds are the mean of the booster's
    and the tuned logistic regression's.  Chosen on seeds 10-12 of the 200-rep simulated
    organisation, never on the seeds the benchmark reports: held-out ROC AUC 0.766 / 0.781 /
    0.698 for the booster, 0.773 / 0.760 / 0.663 for the regression, 0.783 / 0.788 / 0.700
    for the mean of their log-odds (``docs/model-cards/attrition.md``).
    """

    def __init__(
        self,
        *,
        n_estimators: int = 400,
        learning_rate: float = 0.03,
        num_leaves: int = 4,
        min_child_samples: int = 30,
        subsample: float = 0.8,
        colsample_bytree: float = 0.7,
        reg_lambda: float = 10.0,
        early_stopping_rounds: int = 60,
        early_stopping_metric: str = "auc",
        calibration: str = "platt",
        refit: bool = True,
        calibration_folds: int = 5,
        categorical_features: tuple[str, ...] | None = None,
        n_jobs: int = 2,
        random_state: int = 0,
        linear_blend: bool = True,
    ) -> None:
        super().__init__(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            subsample=subsample,
            colsample_bytree=colsample_bytree,
            reg_lambda=reg_lambda,
            early_stopping_rounds=early_stopping_rounds,
            early_stopping_metric=early_stopping_metric,
            calibration=calibration,
            refit=refit,
            calibration_folds=calibration_folds,
            categorical_features=categorical_features,
            n_jobs=n_jobs,
            random_state=random_state,
            linear_blend=linear_blend,
        )


def attrition_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns of a rep feature frame (ids, times and labels dropped)."""
    return features[list(ATTRITION_FEATURE_COLUMNS)].astype(
        {c: "float64" for c in ATTRITION_FEATURE_COLUMNS if c not in CATEGORICAL_REP_FEATURES}
    )


def attrition_categoricals(X: pd.DataFrame) -> tuple[str, ...]:
    """The input columns the model treats as categories."""
    return tuple(c for c in CATEGORICAL_REP_FEATURES if c in X.columns)
