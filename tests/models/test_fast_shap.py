"""The fast Tree SHAP explainer gives ``pred_contrib``'s numbers (to 1e-9), on the real deal
model and on boosters built to exercise every kind of split LightGBM makes."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from spm_ml import registry, settings
from spm_ml.data.io import load_tables
from spm_ml.features.deals import deal_features
from spm_ml.features.snapshots import extraction_time
from spm_ml.models import fast_shap
from spm_ml.models.deal_win import feature_config_of
from spm_ml.models.fast_shap import TreeShap

TOLERANCE = 1e-9


def _reference(booster: lgb.Booster, matrix: np.ndarray, num_iteration=None) -> np.ndarray:
    return booster.predict(matrix, pred_contrib=True, num_iteration=num_iteration)


@pytest.fixture(scope="module")
def deal_model(trained_workdir):
    """The quickstart's deal-win champion and the feature matrix of every deal snapshot of
    its organisation at a few dates (open and closed deals, every kind of value)."""
    from spm_ml.nlp.signals import with_email_scores

    registry.use_local_store(trained_workdir)
    loaded = registry.load_model("deal-win", alias=registry.CHAMPION)
    tables = with_email_scores(
        load_tables(settings.data_source(trained_workdir)),
        cache=settings.email_scores_path(trained_workdir),
    )
    end = extraction_time(tables)
    deals = tables.deals
    frames = []
    for months in (1, 4, 8):
        as_of = end - pd.DateOffset(months=months)
        snapshots = deals.loc[deals["created_at"] < as_of, ["deal_id"]].assign(as_of=as_of)
        frames.append(deal_features(tables, snapshots, feature_config_of(loaded.record)))
    features = pd.concat(frames, ignore_index=True)
    return loaded.model, features


def test_equals_pred_contrib_on_the_deal_model(deal_model):
    model, features = deal_model
    matrix = model._matrix(features)
    explainer = TreeShap.of(model.booster_, model.best_iteration_)
    assert explainer is not None
    assert explainer.table_mb > 0 and not len(explainer.loose_leaves)  # all tabled
    reference = _reference(model.booster_, matrix, model.best_iteration_)
    got = explainer.contributions(matrix)
    assert got.shape == reference.shape
    np.testing.assert_allclose(got, reference, rtol=0, atol=TOLERANCE)
    # the per-leaf path (no table budget) gives the same numbers
    walked = TreeShap.of(model.booster_, model.best_iteration_, max_group_splits=0)
    assert walked.table_mb == 0 and len(walked.loose_leaves) == len(walked.path_start) - 1
    np.testing.assert_allclose(walked.contributions(matrix), reference, rtol=0, atol=TOLERANCE)
    # a request's few rows go through the serial kernel, many rows the parallel one
    assert len(matrix) >= fast_shap.PARALLEL_ROWS
    for few in (matrix[:1], matrix[: fast_shap.PARALLEL_ROWS - 1]):
        expected = _reference(model.booster_, few, model.best_iteration_)
        np.testing.assert_allclose(explainer.contributions(few), expected, rtol=0, atol=TOLERANCE)


def test_the_model_explains_with_it_and_drivers_are_unchanged(deal_model, monkeypatch):
    """``score_and_explain`` (the batch's and the API's path) reads the fast tables; its
    drivers are those ``pred_contrib`` gives."""
    model, features = deal_model
    rows = features.iloc[:500]
    probability, drivers = model.score_and_explain(rows, 3)
    monkeypatch.setitem(model.__dict__, "_tree_shap", None)  # pred_contrib, as before
    reference_probability, reference_drivers = model.score_and_explain(rows, 3)
    np.testing.assert_array_equal(probability, reference_probability)
    for ours, theirs in zip(drivers, reference_drivers, strict=True):
        assert [d["feature"] for d in ours] == [d["feature"] for d in theirs]
        assert [d["value"] for d in ours] == [d["value"] for d in theirs]
        np.testing.assert_allclose(
            [d["shap"] for d in ours], [d["shap"] for d in theirs], rtol=0, atol=TOLERANCE
        )


def test_a_pickled_model_rebuilds_its_tables(deal_model):
    import pickle

    model, features = deal_model
    model._explainer()
    copy = pickle.loads(pickle.dumps(model))
    assert "_tree_shap" not in copy.__dict__
    matrix = model._matrix(features.iloc[:50])
    np.testing.assert_array_equal(copy._contributions(matrix), model._contributions(matrix))


@pytest.mark.parametrize(
    "params",
    [
        {"num_leaves": 15},
        {"num_leaves": 31, "zero_as_missing": True},  # deep leaves summed leaf by leaf
        {"num_leaves": 7, "use_missing": False},
        {"num_leaves": 15, "max_cat_to_onehot": 16},  # one-hot categorical splits
    ],
)
def test_every_kind_of_split_and_missing_value(params):
    """Numeric splits with NaN, zero-as-missing and no missing handling, categorical splits
    (many-vs-many and one-hot), unseen, negative and missing categories, one-leaf trees."""
    rng = np.random.default_rng(0)
    n = 3000
    X = rng.normal(size=(n, 6))
    X[:, 3] = rng.integers(0, 12, n)
    X[rng.random(n) < 0.1, 0] = np.nan
    X[rng.random(n) < 0.2, 5] = 0.0
    X[rng.random(n) < 0.05, 3] = np.nan
    y = (X[:, 1] + np.isin(X[:, 3], [2, 5, 7]) + (X[:, 5] == 0) + rng.normal(size=n) > 0.5).astype(
        int
    )
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "bagging_fraction": 0.8, "bagging_freq": 1} | params,
        lgb.Dataset(X, y, categorical_feature=[3]),
        40,
    )
    test = X[:400].copy()
    test[:20, 3] = -1.0  # negative category: right, as LightGBM sends it
    test[400 - 20 :, 3] = -0.5  # truncated toward zero: category 0
    test[20:40, 3] = 99.0  # unseen category
    test[40:60, 0] = np.nan
    test[60:80, 5] = 0.0
    explainer = TreeShap.of(booster)
    np.testing.assert_allclose(
        explainer.contributions(test), _reference(booster, test), rtol=0, atol=TOLERANCE
    )
    # a shorter model (the early-stopped iteration) and no rows at all
    short = TreeShap.of(booster, 7)
    np.testing.assert_allclose(
        short.contributions(test), _reference(booster, test, 7), rtol=0, atol=TOLERANCE
    )
    assert explainer.contributions(test[:0]).shape == (0, 7)


def test_a_constant_target_gives_one_leaf_trees_explained_by_their_bias():
    X = np.random.default_rng(1).normal(size=(200, 3))
    y = np.r_[np.zeros(199), 1]
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_in_leaf": 150}, lgb.Dataset(X, y), 5
    )
    explainer = TreeShap.of(booster)
    np.testing.assert_allclose(
        explainer.contributions(X), _reference(booster, X), rtol=0, atol=TOLERANCE
    )
