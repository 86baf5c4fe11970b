"""The references beside the deal model: Odoo's naive Bayes by hand, the default LightGBM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from spm_ml.models.references import DefaultLGBM, OdooNaiveBayes, closed_deal_rows


def odoo_percent(p: float) -> float:
    """Odoo's rounding: to 0.01%, then the clamp to 0.01%-99.99%."""
    return min(max(round(100 * p, 2), 0.01), 99.99) / 100


def hand_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Five closed deals over three stages: two won, three lost."""
    X = pd.DataFrame({"stage_rank": [2.0, 0.0, 0.0, 1.0, 1.0], "product": list("ABABA")})
    y = np.array([1, 1, 0, 0, 0])
    return X, y


def hand_model() -> OdooNaiveBayes:
    X, y = hand_frame()
    return OdooNaiveBayes(("product",), n_stages=3, team_column=None).fit(X, y)


def test_naive_bayes_probability_computed_by_hand():
    # won deals count in every stage: 2 + 0.1 each; lost deals in their stage and earlier:
    # stage 0: 3 + 0.1, stage 1: 2 + 0.1, stage 2: 0 + 0.1.  Products: A won 1.1 lost 2.1,
    # B won 1.1 lost 1.1, totals won 2.2 lost 3.2.  Priors: stage 0's 2.1 and 3.1 over 5.2.
    won_prior, lost_prior = 2.1 / 5.2, 3.1 / 5.2
    stage1_a = (won_prior * (2.1 / 2.1) * (1.1 / 2.2), lost_prior * (2.1 / 3.1) * (2.1 / 3.2))
    stage2_b = (won_prior * (2.1 / 2.1) * (1.1 / 2.2), lost_prior * (0.1 / 3.1) * (1.1 / 3.2))
    expected = [odoo_percent(w / (w + lost)) for w, lost in (stage1_a, stage2_b)]
    assert expected == pytest.approx([0.4324, 0.9683])  # the arithmetic above, by hand

    rows = pd.DataFrame({"stage_rank": [1.0, 2.0], "product": ["A", "B"]})
    np.testing.assert_allclose(hand_model().predict_proba(rows)[:, 1], expected, atol=1e-12)


def test_frequency_table_is_odoos():
    table = hand_model().frequencies_.set_index(["variable", "value"])[["won", "lost"]]
    assert table.loc[("product", "A")].tolist() == pytest.approx([1.1, 2.1])
    assert table.loc[("product", "B")].tolist() == pytest.approx([1.1, 1.1])
    stages = table.drop(index="product", level="variable")
    assert stages["won"].tolist() == pytest.approx([2.1, 2.1, 2.1])
    assert stages["lost"].tolist() == pytest.approx([3.1, 2.1, 0.1])


def test_unseen_or_missing_values_are_skipped_and_no_stage_scores_zero():
    rows = pd.DataFrame({"stage_rank": [0.0, 0.0, np.nan], "product": ["never seen", None, "A"]})
    p = hand_model().predict_proba(rows)[:, 1]
    # only the prior and stage 0 (a factor of 1 for won and lost) remain
    assert p.tolist() == [odoo_percent(2.1 / 5.2)] * 2 + [0.0]


def test_probabilities_are_clamped_to_odoos_bounds():
    n = 2000
    X = pd.DataFrame(
        {
            "stage_rank": np.zeros(n + 1),
            "product": ["A"] * n + ["B"],
            "account_region": ["X"] * n + ["Y"],
        }
    )
    y = np.r_[np.ones(n, dtype=int), 0]
    model = OdooNaiveBayes(("product", "account_region"), team_column=None).fit(X, y)
    rows = pd.DataFrame(
        {"stage_rank": [0.0, 0.0], "product": ["A", "B"], "account_region": ["X", "Y"]}
    )
    # unclamped: 1 - 4e-6 and 3e-9
    assert model.predict_proba(rows)[:, 1].tolist() == [0.9999, 0.0001]


def test_each_team_has_its_own_table_and_unknown_teams_use_all_of_them():
    X = pd.DataFrame({"stage_rank": np.zeros(4), "rep_team": ["T1", "T1", "T2", "T2"]})
    y = np.array([1, 0, 0, 0])
    model = OdooNaiveBayes(("rep_team",)).fit(X, y)
    rows = pd.DataFrame({"stage_rank": np.zeros(4), "rep_team": ["T1", "T2", "T9", None]})
    # T1: won 1.1, lost 1.1; T2: won 0.1, lost 2.1; all teams: the sums 1.2 and 3.2
    expected = [odoo_percent(0.5), odoo_percent(0.1 / 2.2)] + [odoo_percent(1.2 / 4.4)] * 2
    np.testing.assert_allclose(model.predict_proba(rows)[:, 1], expected, atol=1e-12)


def test_team_table_equals_learning_from_that_team_alone():
    rng = np.random.default_rng(3)
    n = 400
    X = pd.DataFrame(
        {
            "stage_rank": rng.integers(0, 5, n).astype(float),
            "product": rng.choice(list("PQR"), n),
            "account_industry": rng.choice(list("abcd"), n),
            "account_region": rng.choice(["EU", "NA"], n),
            "rep_team": rng.choice(["T1", "T2", "T3"], n),
        }
    )
    y = (rng.random(n) < 0.1 + 0.15 * X["stage_rank"]).astype(int).to_numpy()
    together = OdooNaiveBayes().fit(X, y)
    t1 = (X["rep_team"] == "T1").to_numpy()
    alone = OdooNaiveBayes(team_column=None).fit(X[t1], y[t1])
    np.testing.assert_allclose(
        together.predict_proba(X[t1])[:, 1], alone.predict_proba(X[t1])[:, 1], atol=1e-12
    )
    assert clone(together).get_params() == together.get_params()


def test_references_refuse_to_predict_before_fit():
    X, _ = hand_frame()
    with pytest.raises(NotFittedError):
        OdooNaiveBayes().predict_proba(X)
    with pytest.raises(NotFittedError):
        DefaultLGBM().predict_proba(X)


def test_closed_deal_rows_are_each_closed_deals_last_snapshot():
    t = pd.Timestamp
    snapshots = pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D1", "D3", "D2", "D1", "D4"],
            "as_of": [t("2024-01-01"), t("2024-01-01"), t("2024-01-08"), t("2024-01-08"),
                      t("2024-01-08"), t("2024-01-15"), t("2024-01-15")],
        }
    )  # fmt: skip
    deals = pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D3", "D4"],
            "closed_at": [t("2024-01-20"), t("2024-01-10"), pd.NaT, t("2024-03-01")],
            "outcome": ["won", "lost", None, "won"],
        }
    )
    rows = np.arange(5)  # D1's last snapshot (position 5) is not a training row
    positions, won = closed_deal_rows(snapshots, rows, deals, t("2024-02-01"))
    # D1 at its last training snapshot, D2; D3 is open, D4 closed after the cut-off
    assert positions.tolist() == [2, 4]
    assert won.tolist() == [1, 0]


def synthetic(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "count": rng.integers(0, 5, n),
            "colour": pd.Series(rng.choice(["red", "green", "blue"], n), dtype="str"),
        }
    )
    logit = X["x"] + (X["colour"] == "red") * 1.5 - 0.8
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y


def test_default_lightgbm_is_lightgbms_defaults_with_frozen_categories():
    X, y = synthetic()
    model = DefaultLGBM(("colour",), random_state=0).fit(X, y)
    used = model.model_.get_params()
    defaults = LGBMClassifier().get_params()
    changed = {k for k in defaults if used[k] != defaults[k]}
    assert changed == {"random_state", "n_jobs"}
    assert set(used) - set(defaults) == {"verbose"}
    assert model.categories_ == {"colour": ["blue", "green", "red"]}
    infos = model.model_.booster_.dump_model()["feature_infos"]
    # category codes (a categorical feature), not a numeric range
    assert set(infos["colour"]["values"]) >= {0, 1, 2} and infos["x"]["values"] == []
    unseen = X.head(5).assign(colour="purple")
    missing = X.head(5).assign(colour=None)
    np.testing.assert_array_equal(model.predict_proba(unseen), model.predict_proba(missing))
    again = DefaultLGBM(("colour",), random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    # it learned something: the red category and x rank the rows
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, model.predict_proba(X)[:, 1]) > 0.75
