"""Deal coaching: the catalogue covers the model, levers are re-scored in one call, the
ranking is the model's own what-if, and non-actionable drivers are never advice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from spm_ml import registry, settings
from spm_ml.coaching.deals import (
    UPLIFT_NOTE,
    Recommendation,
    WhatIfError,
    coach_deals,
    what_if,
)
from spm_ml.coaching.levers import (
    ACTIONS,
    CatalogueError,
    catalogue,
    is_actionable,
    levers_for_feature,
    parse_catalogue,
)
from spm_ml.data.io import load_tables
from spm_ml.features.deals import deal_features, open_deals_at
from spm_ml.nlp.signals import with_email_scores
from spm_ml.scoring import DealRequest, DealScorer


@pytest.fixture(scope="module")
def scorer(trained_workdir) -> DealScorer:
    registry.use_local_store(trained_workdir)
    loaded = registry.load_model("deal-win", alias=registry.CHAMPION)
    tables = with_email_scores(
        load_tables(settings.data_source(trained_workdir)),
        cache=settings.email_scores_path(trained_workdir),
    )
    return DealScorer.for_model(loaded, tables)


@pytest.fixture(scope="module")
def open_features(scorer) -> pd.DataFrame:
    as_of = scorer.tables.deals["created_at"].max()
    snapshots = open_deals_at(scorer.tables, as_of).head(60)
    return deal_features(scorer.tables, snapshots, scorer.feature_config, scorer.context)


def test_catalogue_describes_every_model_feature_and_changes_only_real_ones(scorer):
    book = catalogue()
    names = list(scorer.model.feature_names_in_)
    assert book.undescribed(names) == []
    for lever in book.levers.values():
        assert lever.action in ACTIONS
        unknown = set(lever.changes) - set(names)
        assert not unknown, f"{lever.name} changes features the model lacks: {unknown}"
    assert is_actionable("meetings_30d") and not is_actionable("account_industry")
    assert [lever.name for lever in levers_for_feature("days_since_activity")][0] == "hold_meeting"


def test_a_malformed_catalogue_is_refused_with_the_place_named():
    with pytest.raises(CatalogueError, match=r"levers.x.*action"):
        parse_catalogue({"levers": {"x": {"sentence": "s", "action": "bribe", "changes": {}}}})
    with pytest.raises(CatalogueError, match=r"changes.meetings_30d"):
        lever = {"sentence": "s", "action": "meeting", "changes": {"meetings_30d": "1"}}
        parse_catalogue({"levers": {"x": lever}})


def test_uplift_is_the_models_rescored_probability(scorer, open_features):
    coached = coach_deals(scorer.model, open_features, top_k=5)
    assert len(coached) == len(open_features)
    probability = scorer.model.predict_proba(open_features)[:, 1]
    np.testing.assert_allclose([c.probability for c in coached], probability, atol=1e-12)
    book = catalogue()
    with_advice = [c for c in coached if c.recommendations]
    assert with_advice, "no deal got a recommendation"
    for deal in with_advice[:10]:
        i = int(np.flatnonzero(open_features["deal_id"].to_numpy() == deal.deal_id)[0])
        row = open_features.iloc[[i]].copy()
        top = deal.recommendations[0]
        for feature, change in book.levers[top.lever].changes.items():
            row[feature] = change.apply(row[feature].to_numpy())
        row["email_inbound_share_30d"] = row["emails_inbound_30d"] / (
            row["emails_inbound_30d"] + row["emails_outbound_30d"]
        ).where(lambda t: t > 0)
        expected = scorer.model.predict_proba(row)[0, 1]
        assert top.probability == pytest.approx(expected, abs=1e-12)
        assert top.uplift_pp == pytest.approx(100 * (expected - deal.probability), abs=1e-9)
        uplifts = [r.uplift_pp for r in deal.recommendations]
        assert uplifts == sorted(uplifts, reverse=True) and min(uplifts) > 0
        assert len(deal.recommendations) <= 3
        assert deal.note == UPLIFT_NOTE


def test_non_actionable_drivers_are_context_never_advice(scorer, open_features):
    for deal in coach_deals(scorer.model, open_features, top_k=8):
        advised = {r.lever for r in deal.recommendations}
        assert advised <= set(catalogue().levers)
        assert all(not d["actionable"] for d in deal.context)
        for driver in deal.drivers:
            assert driver["actionable"] == is_actionable(driver["feature"])
            assert driver["text"] and driver["words"]


def test_levers_are_scored_in_one_model_call(scorer, open_features, monkeypatch):
    calls = []
    original = type(scorer.model).score_and_explain

    def counting(self, X, k=3, **options):
        calls.append(len(next(iter(X.values()))))
        return original(self, X, k, **options)

    monkeypatch.setattr(type(scorer.model), "score_and_explain", counting)
    coach_deals(scorer.model, open_features)
    assert len(calls) == 1 and calls[0] > len(open_features)


def test_what_if_rescores_changed_values_and_names_unknown_features(scorer, open_features):
    rows = open_features.head(3)
    changes = [{"meetings_30d": 5}, {"account_industry": "never-seen"}, {}]
    now, after, drivers = what_if(scorer.model, rows, changes)
    np.testing.assert_allclose(now, scorer.model.predict_proba(rows)[:, 1], atol=1e-12)
    changed = rows.copy()
    changed.iloc[0, changed.columns.get_loc("meetings_30d")] = 5
    changed.iloc[1, changed.columns.get_loc("account_industry")] = "never-seen"
    np.testing.assert_allclose(after, scorer.model.predict_proba(changed)[:, 1], atol=1e-12)
    assert after[2] == pytest.approx(now[2], abs=1e-12) and len(drivers) == 3
    with pytest.raises(WhatIfError, match="no feature 'meetings'") as error:
        what_if(scorer.model, rows.head(1), [{"meetings": 1}])
    assert error.value.field == "0.changes.meetings"
    with pytest.raises(WhatIfError, match="finite"):
        what_if(scorer.model, rows.head(1), [{"meetings_30d": float("nan")}])


def test_api_requests_coach_like_the_batch(scorer, open_features):
    ids = open_features["deal_id"].head(5).tolist()
    as_of = pd.Timestamp(open_features["as_of"].iloc[0])
    requests = [DealRequest(as_of=as_of, deal_id=i) for i in ids] + [
        DealRequest(as_of=as_of, deal_id="no-such-deal")
    ]
    served = scorer.coach_requests(requests)
    batch = {c.deal_id: c for c in scorer.coach(open_features[["deal_id", "as_of"]].head(5))}
    for deal_id, result in zip(ids, served[:5], strict=True):
        assert result.probability == pytest.approx(batch[deal_id].probability, abs=1e-9)
        assert [r.lever for r in result.recommendations] == [
            r.lever for r in batch[deal_id].recommendations
        ]
    assert served[5].error is not None and served[5].error.field == "deal_id"


def test_driver_sentences_show_whole_days_and_readable_numbers():
    from spm_ml.coaching.deals import _in_words
    from spm_ml.coaching.levers import catalogue

    book = catalogue()
    age = _in_words({"feature": "deal_age_days", "value": 12.61, "shap": -0.2}, book)
    assert age["text"] == "Deal age (days): 13 (lowers the win probability)"
    rate = _in_words({"feature": "activities_30d", "value": 2.5, "shap": 0.1}, book)
    assert ": 2.50 (raises" in rate["text"]


def test_a_recommendation_as_a_dict_is_what_asdict_gives():
    """The batch and the API write ``as_dict`` (built directly, it is 20x cheaper): the same
    keys in the same order and the same values as ``dataclasses.asdict``."""
    recommendation = Recommendation("demo", "Book a demo.", 0.41, 3.5)
    mine, theirs = recommendation.as_dict(), dataclasses.asdict(recommendation)
    assert list(mine.items()) == list(theirs.items())
    mine["lever"] = "changed"  # a copy: the frozen recommendation is untouched
    assert recommendation.lever == "demo"
