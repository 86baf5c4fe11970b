"""The default model on real text it never trained on, against VADER (issue 20).

Guards what the default model achieves (docs/benchmarks.md, Sentiment): a polarity AUC never
below VADER's on any set or review source, macro-F1 clearly above VADER's on the tweets and
the pooled reviews, and no source more than 0.01 below VADER's macro-F1 (IMDb sentences sit
at VADER's level; the +0.10 target is missed there, see the benchmark).  Reads
``../shared/data`` (skips without it); nothing from there is copied or trained on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.nlp import score_texts
from spm_ml.nlp.evaluation import polarity_auc, polarity_macro_f1
from spm_ml.nlp.lexicon import vader_compound

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def _sets(root) -> dict[str, tuple[list[str], list[str]]]:
    reviews = pd.read_csv(root / "review_sentences/sentences.csv")
    sets = {
        f"reviews, {source}": (part["text"].astype(str).tolist(), part["label"].tolist())
        for source, part in reviews.groupby("source")
    }
    sets["reviews, all"] = (reviews["text"].astype(str).tolist(), reviews["label"].tolist())
    tweets = pd.read_csv(root / "airline_tweets/Tweets.csv").sample(4000, random_state=0)
    sets["airline tweets"] = (tweets["text"].astype(str).tolist(), tweets["airline_sentiment"])
    return sets


def test_never_below_vader_on_real_sets(default_model, shared_data):
    for name, (texts, labels) in _sets(shared_data).items():
        labels = list(labels)
        scores = score_texts(texts, model=default_model)
        vader = np.asarray([vader_compound(t) for t in texts])
        vader_labels = np.where(vader >= 0.05, "positive", np.where(vader <= -0.05, "negative",
                                "neutral"))  # fmt: skip
        ours_f1 = polarity_macro_f1(labels, scores["label"].tolist())
        ours_auc = polarity_auc(labels, scores["p_positive"] - scores["p_negative"])
        vader_f1 = polarity_macro_f1(labels, vader_labels.tolist())
        assert ours_auc >= polarity_auc(labels, vader), name
        assert ours_f1 >= vader_f1 - 0.01, name
        if name in ("airline tweets", "reviews, all"):
            assert ours_f1 >= vader_f1 + 0.05, name
