"""Calibration, polarity metrics and the vectorised lexicon features."""

from __future__ import annotations

import numpy as np
import pytest

from spm_ml.nlp.evaluation import expected_calibration_error, polarity_auc, polarity_macro_f1
from spm_ml.nlp.lexicon import FEATURE_NAMES, lexicon_features, vader_compound


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    # 10 rows at confidence 0.8 for "positive", 8 of them right: calibrated.
    probs = np.tile([0.1, 0.1, 0.8], (10, 1))
    truth = ["positive"] * 8 + ["negative"] * 2
    assert expected_calibration_error(truth, probs) == pytest.approx(0.0)
    # The same answers at confidence 0.99: the gap is 0.19.
    probs = np.tile([0.005, 0.005, 0.99], (10, 1))
    assert expected_calibration_error(truth, probs) == pytest.approx(0.19)
    # Abstentions (NaN rows) are skipped, not counted as confident answers.
    probs = np.vstack([probs, [np.nan] * 3])
    assert expected_calibration_error([*truth, "neutral"], probs) == pytest.approx(0.19)


def test_polarity_metrics_count_neutral_as_a_miss_and_rank_abstentions_in_the_middle():
    truth = ["positive", "negative", "positive", "negative"]
    assert polarity_macro_f1(truth, ["positive", "negative", "positive", "negative"]) == 1.0
    assert polarity_macro_f1(truth, ["positive", "negative", "neutral", None]) < 1.0
    assert polarity_auc(truth, [0.9, -0.8, np.nan, -0.2]) == pytest.approx(1.0)
    assert polarity_auc([*truth, "neutral"], [0.9, -0.8, 0.5, -0.2, 5.0]) == pytest.approx(1.0)


def test_default_model_records_its_calibration(default_model):
    calibration = default_model.blend.calibration
    assert calibration is not None
    assert 0.25 <= default_model.blend.temperature <= 4.0
    assert calibration["temperature"] == pytest.approx(default_model.blend.temperature, abs=1e-3)
    assert calibration["log_loss_after"] <= calibration["log_loss_before"] + 1e-6
    assert calibration["ece_after"] < 0.1
    assert calibration["held_out_rows"] > 1000


@pytest.fixture(scope="module")
def tokenizer(default_model):
    return default_model.nlp.tokenizer


def test_lexicon_features_follow_vader_rules(tokenizer):
    texts = [
        "The service was good.",
        "The service was not good.",
        "The service was very good!",
        "The food was great, but the service was awful.",
        "The app is buggy and the outage lasted hours.",
        "The meeting is on Tuesday at 10am.",
    ]
    f = lexicon_features([tokenizer(t) for t in texts])
    col = {name: f[:, i] for i, name in enumerate(FEATURE_NAMES)}
    assert f.shape == (len(texts), len(FEATURE_NAMES))
    compound = col["vader_pos_part"] - col["vader_neg_part"]
    assert compound[0] > 0 > compound[1]  # negation flips
    assert compound[2] > compound[0]  # booster and "!"
    assert compound[3] < 0  # "but": what follows weighs more
    assert col["domain_compound"][4] < 0 and compound[4] == 0  # VADER rates neither word
    assert not f[5].any()  # no rated word
    assert col["negations"][1] > 0 and col["question"].sum() == 0


def test_lexicon_features_of_a_batch_equal_one_by_one_for_docs_and_spans(tokenizer, default_model):
    texts = ["Not bad at all. Terrible support!", "Great. But late", "", "no", "Love it"]
    docs = [default_model.prepare([t])[0][1] for t in texts]
    units = [doc for doc in docs] + [s for doc in docs for s in doc.sents]
    batch = lexicon_features(units)
    single = np.vstack([lexicon_features([u]) for u in units])
    np.testing.assert_allclose(batch, single)


def test_lexicon_compound_agrees_with_vader_on_the_training_sentences(tokenizer):
    from spm_ml.nlp.corpus import training_sentences

    texts = training_sentences()[0][:600]
    f = lexicon_features([tokenizer(t) for t in texts])
    ours = f[:, 0] - f[:, 1]
    vader = np.asarray([vader_compound(t) for t in texts])
    rated = (np.abs(vader) >= 0.05) & (np.abs(ours) >= 0.05)
    assert rated.sum() > 200
    assert (np.sign(ours[rated]) == np.sign(vader[rated])).mean() > 0.9
    assert np.corrcoef(ours, vader)[0, 1] > 0.85


def test_a_blend_saved_with_other_lexicon_features_asks_for_retraining(default_model):
    import json

    from spm_ml.errors import SchemaError

    state = json.loads(default_model.blend.to_bytes())
    state["features"] = state["features"][:-1]
    state["coef"] = [row[:-1] for row in state["coef"]]
    with pytest.raises(SchemaError, match="retrain"):
        default_model.blend.from_bytes(json.dumps(state).encode())
    # The model's own state loads back unchanged.
    default_model.blend.from_bytes(default_model.blend.to_bytes())
    assert default_model.blend.is_fitted
