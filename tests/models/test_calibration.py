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
