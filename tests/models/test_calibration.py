"""Calibration sets the probability scale and never reverses the booster's ranking."""

from __future__ import annotations

import numpy as np
import pytest

from spm_ml.models.calibration import fit_calibrator


def test_platt_never_reverses_the_order_of_the_margins():
    rng = np.random.default_rng(0)
    margin = rng.normal(size=400)
    y = (margin < -1.2).astype(int)  # held-out margins that rank the positives lowest
    calibrator, _ = fit_calibrator(margin, y, "platt")
    p = calibrator.predict(np.array([-2.0, 0.0, 2.0]))
    assert p[0] < p[1] < p[2]
    assert np.allclose(p, y.mean())  # no signal to scale: the base rate


def test_platt_keeps_a_real_signal():
    rng = np.random.default_rng(1)
    margin = rng.normal(size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-2 * margin))).astype(int)
    calibrator, _ = fit_calibrator(margin, y, "platt")
    p = calibrator.predict(np.array([-2.0, 0.0, 2.0]))
    assert p[0] < 0.2 < 0.8 < p[2]


def test_both_methods_predict_exactly_what_scikit_learn_predicts():
    """The calibrator skips scikit-learn's input checks for speed, never its arithmetic."""
    rng = np.random.default_rng(2)
    margin = rng.normal(size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-2 * margin))).astype(int)
    new = np.r_[rng.normal(scale=3, size=1000), -50.0, 50.0, 0.0]
    for method in ("platt", "isotonic"):
        calibrator, _ = fit_calibrator(margin, y, method)
        if method == "platt":
            expected = calibrator.model.predict_proba(new.reshape(-1, 1))[:, 1]
        else:
            expected = np.clip(calibrator.model.predict(new), 1e-4, 1 - 1e-4)
        np.testing.assert_array_equal(calibrator.predict(new), expected)
        np.testing.assert_array_equal(calibrator.predict(new[:1]), expected[:1])


def test_keep_order_breaks_isotonic_ties_by_the_margin_and_nothing_else():
    from sklearn.metrics import roc_auc_score

    from spm_ml.models.calibration import ORDER_NUDGE, keep_order

    rng = np.random.default_rng(2)
    margin = rng.normal(size=1500)
    y = (rng.random(1500) < 1 / (1 + np.exp(-0.3 * margin))).astype(int)  # a weak model
    calibrator, _ = fit_calibrator(margin[:1000], y[:1000], "isotonic")
    margin, y = margin[1000:], y[1000:]  # new rows
    p = calibrator.predict(margin)
    assert len(np.unique(p)) < 50  # isotonic steps: rows the model ranked apart are tied
    assert roc_auc_score(y, p) < roc_auc_score(y, margin) - 0.002
    kept = keep_order(p, margin)
    assert np.array_equal(np.argsort(kept, kind="stable"), np.argsort(margin, kind="stable"))
    assert roc_auc_score(y, kept) == pytest.approx(roc_auc_score(y, margin))
    assert np.max(np.abs(kept - p)) <= ORDER_NUDGE
