"""Sentiment quality on real text nobody here wrote (the airline tweets), in one run.

1. Cross-domain: the default model (built from the shipped sales sentences, never trained
   on tweets) against VADER (compound >= 0.05 positive, <= -0.05 negative) on every tweet.
2. In-domain: ``train_sentiment`` on a stratified 80% of the tweets, macro-F1 on the other
   20%, against TF-IDF (word 1-2 grams) + logistic regression trained on the same split.

Usage::

    python benchmarks/sentiment_quality.py [--tweets ../shared/data/airline_tweets/Tweets.csv]

Prints a Markdown table and a JSON line.  The tweets are CC BY-NC-SA: evaluation only.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from spm_ml.nlp import score_texts
from spm_ml.nlp.default_model import ensure_default_model
from spm_ml.nlp.experiment import stratified_split, train_sentiment
from spm_ml.nlp.lexicon import vader_compound
from spm_ml.nlp.pipeline import TrainingSettings, load_config

DEFAULT_TWEETS = Path(__file__).resolve().parents[2] / "shared/data/airline_tweets/Tweets.csv"


def vader_labels(texts: list[str]) -> list[str]:
    out = []
    for text in texts:
        c = vader_compound(text)
        out.append("positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral")
    return out


def macro_f1(y_true, y_pred) -> float:
    y_pred = ["neutral" if pd.isna(p) else p for p in y_pred]
    return float(f1_score(y_true, y_pred, average="macro"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=Path, default=DEFAULT_TWEETS)
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--label-col", default="airline_sentiment")
    args = parser.parse_args()

    frame = pd.read_csv(args.tweets)
    texts = frame[args.text_col].astype(str).tolist()
    labels = frame[args.label_col].tolist()

    start = time.perf_counter()
    ensure_default_model()
    build_s = time.perf_counter() - start
    default_scores = score_texts(texts)
    cross = macro_f1(labels, default_scores["label"].tolist())
    vader = macro_f1(labels, vader_labels(texts))
    flagged = int((~default_scores["is_english"]).sum())

    settings = TrainingSettings.from_config(load_config())
    train_idx, test_idx = stratified_split(labels, settings.test_size, settings.seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_sentiment(
            args.tweets,
            args.text_col,
            args.label_col,
            Path(tmp) / "model",
            workdir=Path(tmp) / "work",
        )
    in_domain = result.metrics["macro_f1"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vectorizer.fit_transform([texts[i] for i in train_idx])
    clf = LogisticRegression(max_iter=2000, C=10.0 if False else 1.0)
    clf.fit(x_train, [labels[i] for i in train_idx])
    tfidf = macro_f1(
        [labels[i] for i in test_idx],
        clf.predict(vectorizer.transform([texts[i] for i in test_idx])),
    )

    rows = [
        ("cross-domain, all tweets", "default model", cross, "VADER +/-0.05", vader),
        ("in-domain, 20% held out", "train sentiment", in_domain, "TF-IDF 1-2g + LR", tfidf),
    ]
    print(
        f"# sentiment quality ({len(texts)} tweets, {platform.machine()}, "
        f"default build {build_s:.1f} s, {flagged} flagged non-English)"
    )
    print("| setting | ours | macro-F1 | reference | macro-F1 | difference |")
    print("| --- | --- | ---: | --- | ---: | ---: |")
    for setting, ours, a, ref, b in rows:
        print(f"| {setting} | {ours} | {a:.3f} | {ref} | {b:.3f} | {a - b:+.3f} |")
    print(
        json.dumps(
            {
                "cross_domain_macro_f1": round(cross, 4),
                "vader_macro_f1": round(vader, 4),
                "in_domain_macro_f1": round(in_domain, 4),
                "tfidf_lr_macro_f1": round(tfidf, 4),
                "in_domain_accuracy": round(result.metrics["accuracy"], 4),
                "n_train": len(train_idx),
                "n_test": len(test_idx),
                "flagged_non_english": flagged,
                "default_build_seconds": round(build_s, 1),
            }
        )
    )
    np.testing.assert_equal(len(default_scores), len(texts))


if __name__ == "__main__":
    main()
