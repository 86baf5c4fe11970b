"""The calibrated GBM's contract: categoricals, calibration, explanations, pyfunc shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.errors import TrainingError
from spm_ml.models.calibration import fit_calibrator
from spm_ml.models.gbm import CalibratedGBM
from spm_ml.models.metrics import binary_metrics, expected_calibration_error


def synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A known truth: log-odds = 1.5*x1 - x2^2 + segment effect; x3 is noise."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["smb", "mid", "ent"], n)
    x1, x2, x3 = rng.normal(size=(3, n))
    logit = 1.5 * x1 - x2**2 + pd.Series(segment).map({"smb": 0.8, "mid": 0.0, "ent": -1.0})
    y = (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "segment": segment}), y


@pytest.fixture(scope="module")
def fitted():
    X, y = synthetic(6000, 0)
    Xv, yv = synthetic(3000, 1)
    return CalibratedGBM(n_estimators=300, random_state=0).fit(X, y, eval_set=(Xv, yv))


def test_learns_and_is_calibrated_on_fresh_data(fitted):
    X, y = synthetic(5000, 2)
    p = fitted.predict_proba(X)[:, 1]
    metrics = binary_metrics(y, p)
    assert metrics["roc_auc"] > 0.8
    assert metrics["ece"] < 0.03
    assert fitted.calibrator_.method in ("isotonic", "platt")


def test_categories_are_frozen_and_unseen_values_become_missing(fitted):
    X, _ = synthetic(10, 3)
    assert fitted.categories_["segment"] == ["ent", "mid", "smb"]
    unseen = X.assign(segment="brand-new")
    missing = X.assign(segment=None)
    np.testing.assert_allclose(fitted.predict_proba(unseen), fitted.predict_proba(missing))
    # the caller's frame is untouched and plain text is fine: the model casts internally
    assert X["segment"].dtype != "category"


def test_column_order_does_not_matter_but_missing_columns_fail(fitted):
    X, _ = synthetic(50, 4)
    np.testing.assert_allclose(fitted.predict_proba(X), fitted.predict_proba(X[X.columns[::-1]]))
    with pytest.raises(TrainingError, match="x3"):
        fitted.predict_proba(X.drop(columns="x3"))


def test_batch_equals_single_rows(fitted):
    X, _ = synthetic(20, 5)
    batch = fitted.predict_proba(X)[:, 1]
    single = [fitted.predict_proba(X.iloc[[i]])[0, 1] for i in range(len(X))]
    np.testing.assert_allclose(batch, single)


def test_shap_contributions_sum_to_margin_and_find_true_drivers(fitted):
    X, _ = synthetic(2000, 6)
    shap = fitted.explain(X)
    np.testing.assert_allclose(shap.sum(axis=1), fitted.decision_function(X), atol=1e-8)
    importance = shap.drop(columns="bias").abs().mean()
    assert importance.idxmin() == "x3"  # pure noise explains least
    drivers = fitted.top_drivers(X.head(2), k=2)
    assert len(drivers) == 2 and len(drivers[0]) == 2
    assert {"feature", "value", "shap", "direction"} <= set(drivers[0][0])


def test_single_class_target_is_refused():
    X, _ = synthetic(100, 7)
    with pytest.raises(TrainingError, match="single class"):
        CalibratedGBM().fit(X, np.zeros(100))


def test_calibration_choice_is_made_on_held_out_data():
    rng = np.random.default_rng(0)
    margin = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(2 * margin + 0.5)))).astype(int)
    calibrator, scores = fit_calibrator(margin, y)
    assert set(scores) == {"isotonic", "platt"}
    assert calibrator.method == min(scores, key=scores.get)
    raw = 1 / (1 + np.exp(-margin))
    assert expected_calibration_error(y, calibrator.predict(margin)) < expected_calibration_error(
        y, raw
    )


def test_pyfunc_round_trip_returns_probability_frame(fitted, tmp_path):
    import mlflow

    from spm_ml.models.pyfunc import ProbabilityModel

    X, _ = synthetic(30, 8)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    path = tmp_path / "model"
    from mlflow.models import infer_signature

    wrapper = ProbabilityModel(fitted)
    signature = infer_signature(X, wrapper.predict(None, X), params={"top_k": 0})
    mlflow.pyfunc.save_model(path, python_model=wrapper, signature=signature)
    loaded = mlflow.pyfunc.load_model(str(path))
    assert loaded.metadata.signature is not None
    out = loaded.predict(X)
    assert list(out.columns) == ["probability"]
    np.testing.assert_allclose(out["probability"], fitted.predict_proba(X)[:, 1])
    explained = loaded.predict(X, params={"top_k": 2})
    assert list(explained.columns) == ["probability", "drivers"]


def test_weighted_metrics_equal_sklearn_with_unit_and_integer_weights():
    from spm_ml.models.metrics import weighted_metrics

    rng = np.random.default_rng(3)
    p = np.round(rng.random(500), 2)  # ties on purpose
    y = (rng.random(500) < p).astype(float)
    order = np.argsort(-p, kind="stable")
    fast = weighted_metrics(y[order], p[order], np.ones(500))
    for name, value in binary_metrics(y, p).items():
        assert fast[name] == pytest.approx(value, abs=1e-9), name
    w = rng.integers(0, 4, 500).astype(float)
    repeated = np.repeat(np.arange(500), w.astype(int))
    fast = weighted_metrics(y[order], p[order], w[order])
    for name, value in binary_metrics(y[repeated], p[repeated]).items():
        assert fast[name] == pytest.approx(value, abs=1e-9), name


def test_paired_gap_interval_measures_the_difference_itself():
    from spm_ml.models.metrics import bootstrap_intervals, paired_difference_interval

    rng = np.random.default_rng(4)
    truth = rng.normal(size=3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-2 * truth))).astype(int)
    better = truth + rng.normal(scale=0.5, size=3000)
    worse = better + rng.normal(scale=0.35, size=3000)
    groups = np.arange(3000) // 3
    same = paired_difference_interval(y, better, better, groups=groups, n_boot=50)
    assert same == (0.0, 0.0)
    lo, hi = paired_difference_interval(y, better, worse, groups=groups, n_boot=200)
    assert 0 < lo < hi
    # narrower than either model's own interval, and those two overlap
    a = bootstrap_intervals(y, better, groups=groups, n_boot=200)["roc_auc"]
    b = bootstrap_intervals(y, worse, groups=groups, n_boot=200)["roc_auc"]
    assert a[0] < b[1] and hi - lo < a[1] - a[0]


def test_refit_uses_the_eval_rows_and_calibrates_on_cross_fitted_margins():
    X, y = synthetic(4000, 8)
    Xv, yv = synthetic(2000, 9)
    groups, eval_groups = np.arange(4000) // 4, 10_000 + np.arange(2000) // 4
    refit = CalibratedGBM(n_estimators=300, random_state=0).fit(
        X, y, eval_set=(Xv, yv), groups=groups, eval_groups=eval_groups
    )
    held = CalibratedGBM(n_estimators=300, refit=False, random_state=0).fit(X, y, eval_set=(Xv, yv))
    assert refit.early_stopping_iteration_ == held.best_iteration_
    # rounds scale with the larger training set, and the booster really has them
    assert refit.best_iteration_ == round(held.best_iteration_ * 6000 / 4000)
    assert refit.booster_.num_trees() == refit.best_iteration_
    fresh_X, fresh_y = synthetic(5000, 10)
    metrics = binary_metrics(fresh_y, refit.predict_proba(fresh_X)[:, 1])
    assert metrics["roc_auc"] > 0.8 and metrics["ece"] < 0.03


def test_refit_needs_groups_for_both_parts_or_neither():
    X, y = synthetic(600, 11)
    with pytest.raises(TrainingError, match="groups"):
        CalibratedGBM(n_estimators=20).fit(X, y, eval_set=(X, y), groups=np.arange(600))


def test_the_ece_interval_holds_its_own_estimate():
    """Resampling inflates calibration error: a well-calibrated model's ECE draws all sit
    above its ECE, and a plain percentile interval would miss the estimate it describes."""
    from spm_ml.models.metrics import binary_metrics, bootstrap_intervals
    from spm_ml.training.tabular import evaluate_repeated

    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 200)
    y = (rng.random(200) < p).astype(int)  # calibrated by construction; ECE 0.044, and
    # the plain percentile interval of these resamples is [0.049, 0.119]: it misses it
    ece = binary_metrics(y, p)["ece"]
    draws = bootstrap_intervals(y, p, n_boot=200)
    low, high = draws["ece"]
    assert low <= ece <= high
    repeated = evaluate_repeated(y, {"model": p[None, :]}, n_boot=200)["model"]
    low, high = repeated["ci95"]["ece"]
    assert low <= repeated["ece"] <= high
    # the other metrics keep their plain percentile interval, which holds them anyway
    low, high = draws["roc_auc"]
    assert low <= binary_metrics(y, p)["roc_auc"] <= high
