"""Behavioural tests of the default model (CheckList style): MFT, direction, invariance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.nlp import score_texts
from spm_ml.nlp.scoring import OUTPUT_COLUMNS, aggregate_sentences

MFT = {
    "negative": [
        "We are not interested.",
        "We have decided to go with another vendor.",
        "Please cancel our subscription.",
        "The price is far too high for us.",
        "Your support team never got back to me, this is unacceptable.",
    ],
    "neutral": [
        "Can we move the call to Thursday at 2pm?",
        "Please find the signed NDA attached.",
        "Our legal team will send the redlines next week.",
        "What are your payment terms?",
        "I'm out of the office until Monday.",
    ],
    "positive": [
        "We're excited to move forward with the pilot.",
        "The demo was great, the team loved it.",
        "Budget is approved and we are ready to sign.",
        "Thank you, your support has been fantastic.",
        "We are very interested in the enterprise plan.",
    ],
}


@pytest.mark.parametrize("label", sorted(MFT))
def test_minimum_functionality_per_class(default_model, label):
    scores = score_texts(MFT[label], model=default_model)
    assert list(scores.columns) == list(OUTPUT_COLUMNS)
    assert (scores["label"] == label).mean() >= 0.8, scores


def test_negation_flips_interest(default_model):
    scores = score_texts(
        ["We are interested in a demo.", "We are not interested in a demo."], model=default_model
    )
    assert scores["p_positive"][0] > scores["p_positive"][1]
    assert scores["p_negative"][1] > scores["p_negative"][0]
    assert scores["label"][1] == "negative"


def test_intensity_raises_confidence(default_model):
    mild, strong = score_texts(
        ["The onboarding was good.", "The onboarding was absolutely amazing!!"],
        model=default_model,
    )["p_positive"]
    assert strong > mild
    mild, strong = score_texts(
        ["The rollout was bad.", "The rollout was a complete disaster!!"], model=default_model
    )["p_negative"]
    assert strong >= mild


@pytest.mark.parametrize(
    "template",
    [
        "Hi {name}, we are cancelling the {n} seats and moving to {company}, sorry.",
        "{name} from {company} said the pilot with {n} reps went really well.",
        "Can {name} join the call about the {n} licences for {company}?",
    ],
)
def test_invariance_to_names_numbers_and_companies(default_model, template):
    fills = [
        {"name": "Anna", "company": "Globex", "n": "5"},
        {"name": "Rahul", "company": "Initrode Systems", "n": "250"},
        {"name": "Zoë", "company": "Blue Harbor Ltd", "n": "12"},
    ]
    scores = score_texts([template.format(**f) for f in fills], model=default_model)
    assert scores["label"].nunique() == 1, scores
    probs = scores[["p_negative", "p_neutral", "p_positive"]].to_numpy()
    assert np.abs(probs - probs[0]).max() < 0.25


def test_polite_closing_does_not_hide_a_cancellation(default_model):
    email = (
        "Hi Sam,\n\nAfter a long review we have decided to cancel the order and go with "
        "another vendor.\n\nThanks so much for all your help, it was a pleasure working with "
        "you!\n\nBest regards,\nJo"
    )
    scores = score_texts([email], model=default_model)
    assert scores["label"][0] == "negative"
    assert scores["n_sentences"][0] >= 2


def test_aggregation_weights_negative_sentences_more():
    cancel, thanks = [0.9, 0.05, 0.05], [0.02, 0.08, 0.9]
    pooled = aggregate_sentences(np.array([cancel, thanks]))
    assert pooled.argmax() == 0
    assert pooled.sum() == pytest.approx(1.0)
    # An even mix of neutral sentences stays neutral; one sentence passes through.
    assert aggregate_sentences(np.array([[0.1, 0.8, 0.1]] * 3)).argmax() == 1
    np.testing.assert_allclose(aggregate_sentences(np.array([thanks])), thanks)


def test_bad_inputs_give_flags_not_guesses(default_model):
    texts = [
        "",
        "Nous avons décidé de ne pas renouveler le contrat, merci pour votre compréhension.",
        "<html><body><p>We are <b>thrilled</b> with the results!</p></body></html>",
        "We are really happy with the service. " * 27_000,  # ~1 MB
        "Caf\ufffd meeting was excellent",
    ]
    scores = score_texts(texts, model=default_model)
    assert scores["label"].isna()[0] and np.isnan(scores["p_neutral"][0])
    assert not scores["is_english"][1] and scores["label"].isna()[1]
    assert np.isnan(scores["p_positive"][1])
    assert scores["label"][2] == "positive"
    assert scores["label"][3] == "positive"
    assert scores["label"][4] == "positive"
    assert len(scores) == len(texts)


def test_score_texts_accepts_any_sequence_and_keeps_order(default_model):
    texts = pd.Series(["Please cancel.", "Love it!", "See you at 3pm."], index=[7, 3, 9])
    scores = score_texts(texts.tolist(), model=default_model)
    assert list(scores.index) == [0, 1, 2]
    assert scores["label"].tolist() == ["negative", "positive", "neutral"]
    assert np.allclose(scores[["p_negative", "p_neutral", "p_positive"]].sum(axis=1), 1.0)


def test_batch_equals_single_row(default_model):
    texts = MFT["negative"] + MFT["positive"]
    batch = score_texts(texts, model=default_model)
    single = pd.concat([score_texts([t], model=default_model) for t in texts], ignore_index=True)
    pd.testing.assert_frame_equal(batch, single)


# Business phrases, both directions; none of them is a training sentence (checked below).
BUSINESS = {
    "positive": [
        "Revenue grew 12% this quarter.",
        "Our costs fell by a fifth compared with last year.",
        "The board signed off on a bigger budget for next year.",
        "Bookings rose sharply in the second half.",
        "We closed the quarter well ahead of target.",
        "Thanks a lot, we will have the signed order back to you by Friday.",
    ],
    "negative": [
        "They cut the budget for next year.",
        "Revenue fell 12% this quarter.",
        "Operating costs rose sharply and squeezed our margins.",
        "The rollout slipped again and is now two months late.",
        "The client escalated the outage to their CEO.",
        "We lost the renewal to a cheaper competitor.",
    ],
}


def test_business_phrases_are_not_training_sentences():
    from spm_ml.nlp.corpus import training_sentences

    texts = {t.strip().lower() for t in training_sentences()[0]}
    for phrases in [*BUSINESS.values(), *DIRECTION_PAIRS]:
        assert not [p for p in phrases if p.lower() in texts]


@pytest.mark.parametrize("label", sorted(BUSINESS))
def test_business_phrases_both_directions(default_model, label):
    scores = score_texts(BUSINESS[label], model=default_model)
    assert (scores["label"] == label).mean() >= 0.8, scores


DIRECTION_PAIRS = [
    ("Revenue grew 9% in the spring.", "Revenue fell 9% in the spring."),
    ("Our costs fell by 9 percent in the spring.", "Our costs rose by 9 percent in the spring."),
    ("They raised the budget for next year.", "They cut the budget for next year."),
    ("The launch is on schedule.", "The launch is behind schedule."),
]


@pytest.mark.parametrize(("better", "worse"), DIRECTION_PAIRS)
def test_direction_of_change_moves_the_polarity(default_model, better, worse):
    scores = score_texts([better, worse], model=default_model)
    polarity = (scores["p_positive"] - scores["p_negative"]).to_numpy()
    assert polarity[0] > polarity[1] + 0.2, scores


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  \n\t ",
        "Best regards,\nJo Smith\nAccount Executive\nAcme Inc | +1 555 0100",
        "Kind regards,\n\nPriya",
        "Sent from my iPhone",
        "-- \nJo Smith\nVP Sales",
        "On Mon, Jun 3, 2024 at 9:14 AM Sam <sam@example.com> wrote:\n> We love it, thanks!",
        "https://example.com/pricing",
        "12 345 678",
    ],
)
def test_nothing_to_judge_abstains(default_model, text):
    scores = score_texts([text], model=default_model)
    assert scores["label"].isna()[0], scores
    assert np.isnan(scores[["p_negative", "p_neutral", "p_positive"]].to_numpy()).all()
    assert scores["n_sentences"][0] == 0


@pytest.mark.parametrize(
    "text",
    [
        "Wir haben beschlossen, den Vertrag nicht zu verlängern. Vielen Dank für Ihr Verständnis.",
        "Hemos decidido no renovar el contrato, muchas gracias por todo el apoyo.",
        "Nous sommes très contents du service et nous allons signer le contrat la semaine "
        "prochaine.",
        "我们决定不续约，谢谢。",
        "Мы решили не продлевать договор, спасибо.",
    ],
)
def test_non_english_is_flagged_not_guessed(default_model, text):
    scores = score_texts([text], model=default_model)
    assert not scores["is_english"][0]
    assert scores["label"].isna()[0] and np.isnan(scores["p_positive"][0])


SARCASM = [
    "Great, another delay on the contract. Just what we needed.",
    "Oh wonderful, the invoice is wrong again.",
    "Thanks for nothing, we are still waiting for the quote.",
    "Love how nobody has answered my ticket in two weeks.",
    "Fantastic, the demo crashed in front of our CFO.",
    "Brilliant, you doubled the price right before renewal.",
    "Perfect timing, the integration broke on launch day.",
    "Nice to finally hear back after a month of silence.",
]
"""Sarcastic complaints, written before either scorer was run on them: praise words around
bad news, where a lexicon reads the praise."""


def test_sarcasm_where_vader_fails(default_model):
    from spm_ml.nlp.lexicon import vader_compound

    vader_positive = sum(vader_compound(t) >= 0.05 for t in SARCASM)
    assert vader_positive == len(SARCASM)  # every one fools VADER
    labels = score_texts(SARCASM, model=default_model)["label"].tolist()
    # 6 of 8 read as negative on 2026-12-06; the two misses ("Great, another delay... Just
    # what we needed", "Nice to finally hear back after a month of silence") carry no
    # negative word at all
    assert labels.count("negative") >= 6, labels
