"""Calibration sets the probability scale and never reverses the booster's ranking."""

from __future__ import annotations

import numpy as np

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
