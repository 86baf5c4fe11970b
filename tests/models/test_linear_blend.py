"""The linear blend: a booster's and a logistic regression's log-odds averaged, explained
exactly, and the regression read out of its pipeline without changing a number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.errors import TrainingError
from spm_ml.models.gbm import CalibratedGBM
from spm_ml.models.linear_part import LinearPart
from spm_ml.models.metrics import binary_metrics
from spm_ml.models.references import tuned_logistic_reference


def numeric(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """log-odds = x1 - 0.8*x2 + step(x3); x2 missing for a fifth of the rows."""
    rng = np.random.default_rng(seed)
    x1, x2, x3, x4 = rng.normal(size=(4, n))
    logit = x1 - 0.8 * x2 + 1.2 * (x3 > 0.5) - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x2 = np.where(rng.random(n) < 0.2, np.nan, x2)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "x4": x4}), y


@pytest.fixture(scope="module")
def blended():
    X, y = numeric(3000, 0)
    Xv, yv = numeric(1500, 1)
    model = CalibratedGBM(
        n_estimators=200, calibration="platt", linear_blend=True, random_state=0
    ).fit(X, y, eval_set=(Xv, yv))
    return model, X, y, Xv, yv


def test_the_linear_part_equals_its_pipeline():
    X, y = numeric(2000, 3)
    Xv, yv = numeric(800, 4)
    pipeline, _ = tuned_logistic_reference(X, y, Xv, yv, ())
    part = LinearPart.of(pipeline, X.shape[1])
    test, _ = numeric(500, 5)
    matrix = test.to_numpy(dtype=float)
    np.testing.assert_allclose(part.margin(matrix), pipeline.decision_function(test), atol=1e-10)
    assert len(part.indicator_of) == 1  # x2's missing-value flag, folded into x2's term


def test_blend_serves_the_mean_log_odds_and_explains_them_exactly(blended):
    model, X, y, Xv, yv = blended
    test, y_test = numeric(2000, 6)
    p = model.predict_proba(test)[:, 1]
    contributions = model.explain(test)
    np.testing.assert_allclose(contributions.sum(axis=1), np.log(p / (1 - p)), atol=1e-9)
    booster_only = CalibratedGBM(n_estimators=200, calibration="platt", random_state=0).fit(
        X, y, eval_set=(Xv, yv)
    )
    a, b = model._platt()
    q = booster_only.predict_proba(test)[:, 1]
    assert not np.allclose(p, q)  # the regression changed the score
    # the mean of the two log-odds: the booster's Platt log-odds and the regression's
    linear = model.linear_.margin(test.to_numpy(dtype=float))
    margin = booster_only.decision_function(test)
    np.testing.assert_allclose(np.log(p / (1 - p)), (a * margin + b + linear) / 2, atol=1e-9)
    scored, drivers = model.score_and_explain(test, 2)
    np.testing.assert_array_equal(scored, p)
    assert binary_metrics(y_test, p)["roc_auc"] > 0.75
    assert {d["feature"] for row in drivers for d in row} <= set(X.columns)


def test_a_booster_without_ranking_leaves_the_regression_alone(blended):
    model = blended[0]
    test, _ = numeric(300, 8)
    slope = model.calibrator_.model.coef_.copy()
    model.calibrator_.model.coef_[:] = 1e-9  # what calibration keeps when margins rank wrong
    try:
        p = model.predict_proba(test)[:, 1]
        linear = model.linear_.margin(test.to_numpy(dtype=float))
        np.testing.assert_allclose(np.log(p / (1 - p)), linear, atol=1e-9)
        np.testing.assert_allclose(model.explain(test).sum(axis=1), linear, atol=1e-9)
    finally:
        model.calibrator_.model.coef_[:] = slope  # the fixture is shared


def test_blend_refuses_what_it_cannot_explain():
    X, y = numeric(600, 7)
    with pytest.raises(TrainingError, match="eval_set and Platt"):
        CalibratedGBM(linear_blend=True).fit(X, y, eval_set=(X, y))
    with pytest.raises(TrainingError, match="numeric inputs only"):
        CalibratedGBM(calibration="platt", linear_blend=True).fit(
            X.assign(segment="a"), y, eval_set=(X.assign(segment="a"), y)
        )
