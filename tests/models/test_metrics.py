"""The ECE noise floor: what a calibrated score shows on a sample of a given size."""

import numpy as np

from spm_ml.models.metrics import calibrated_ece_floor, expected_calibration_error


def test_floor_shrinks_with_rows_and_matches_a_calibrated_sample():
    rng = np.random.default_rng(1)
    small, large = rng.random(385), rng.random(20_000)
    floor_small, floor_large = calibrated_ece_floor(small), calibrated_ece_floor(large)
    assert 0.03 < floor_small < 0.06  # binning noise on a few hundred rows
    assert floor_large < 0.01
    # a calibrated sample of the same size lands near its floor, a miscalibrated one far above
    calibrated = [expected_calibration_error(rng.random(385) < small, small) for _ in range(50)]
    shifted = [expected_calibration_error(rng.random(385) < small * 0.7, small) for _ in range(50)]
    assert abs(np.median(calibrated) - floor_small) < 0.01
    assert np.median(shifted) > floor_small + 0.08


def test_floor_is_reproducible():
    p = np.linspace(0.01, 0.99, 300)
    assert calibrated_ece_floor(p, seed=3) == calibrated_ece_floor(p, seed=3)
