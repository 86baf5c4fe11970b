"""Sentiment quality on real text nobody here wrote, next to two lexicons, in one run.

1. Cross-domain: the default model (built from the shipped sentences, never trained on any
   of these sets) on every set it never saw: the airline tweets (3 classes) and the review
   sentences (Amazon, IMDb, Yelp; 2 classes, each source also on its own).  Per set:
   macro-F1 (a neutral answer on a two-class set counts as a miss) and the ROC AUC of the
   polarity ``p_positive - p_negative`` (positive vs negative rows), next to VADER
   (compound >= 0.05 positive, <= -0.05 negative; AUC of compound) and AFINN (sign of the
   summed word scores; AUC of that sum).  Calibration: top-label ECE of the default model on
   the tweets (the only real 3-class set) and on its own held-out text (recorded at build).
2. In-domain: ``train_sentiment`` on a stratified 80% of the tweets, macro-F1 on the other
   20%, against TF-IDF (word 1-2 grams) + logistic regression trained on the same split.

Usage::

    python benchmarks/sentiment_quality.py [--data ../shared/data] [--skip-in-domain]

Prints Markdown tables and a JSON line.  The tweets are CC BY-NC-SA and the review sentences
CC BY 4.0: both are read for evaluation only, never copied into the repository or trained
on by the default model.  AFINN (``pip install afinn``; data ODbL, package GPL) is an
evaluation reference only and is not a dependency of the package.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from spm_ml.nlp import score_texts
from spm_ml.nlp.default_model import ensure_default_model, load_default_model
from spm_ml.nlp.evaluation import expected_calibration_error, polarity_auc, polarity_macro_f1
from spm_ml.nlp.experiment import stratified_split, train_sentiment
from spm_ml.nlp.lexicon import vader_compound
from spm_ml.nlp.pipeline import TrainingSettings, load_config

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data"
PROBS = ["p_negative", "p_neutral", "p_positive"]


def sign_labels(scores: np.ndarray, threshold: float) -> list[str]:
    return [
        "positive" if s >= threshold else "negative" if s <= -threshold else "neutral"
        for s in scores
    ]


def afinn_scorer() -> Callable[[list[str]], np.ndarray] | None:
    try:
        from afinn import Afinn
    except ImportError:
        return None
    afinn = Afinn(emoticons=True)
    return lambda texts: np.asarray([afinn.score(t) for t in texts], dtype=np.float64)


def load_sets(data: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Evaluation sets by name: (texts, labels)."""
    sets: dict[str, tuple[list[str], list[str]]] = {}
    tweets = pd.read_csv(data / "airline_tweets/Tweets.csv")
    sets["airline tweets"] = (
        tweets["text"].astype(str).tolist(),
        tweets["airline_sentiment"].tolist(),
    )
    reviews = pd.read_csv(data / "review_sentences/sentences.csv")
    sets["reviews, all"] = (reviews["text"].astype(str).tolist(), reviews["label"].tolist())
    for source, part in reviews.groupby("source", sort=True):
        sets[f"reviews, {source}"] = (part["text"].astype(str).tolist(), part["label"].tolist())
    return sets


def cross_domain(sets: dict[str, tuple[list[str], list[str]]]) -> list[dict]:
    afinn = afinn_scorer()
    rows = []
    for name, (texts, labels) in sets.items():
        scores = score_texts(texts)
        polarity = (scores["p_positive"] - scores["p_negative"]).to_numpy()
        vader = np.asarray([vader_compound(t) for t in texts])
        row = {
            "set": name,
            "n": len(texts),
            "ours_f1": polarity_macro_f1(labels, scores["label"].tolist()),
            "ours_auc": polarity_auc(labels, polarity),
            "vader_f1": polarity_macro_f1(labels, sign_labels(vader, 0.05)),
            "vader_auc": polarity_auc(labels, vader),
            "neutral_share": float((scores["label"].fillna("neutral") == "neutral").mean()),
            "flagged": int(scores["label"].isna().sum()),
        }
        if afinn is not None:
            values = afinn(texts)
            row["afinn_f1"] = polarity_macro_f1(labels, sign_labels(values, 0.5))
            row["afinn_auc"] = polarity_auc(labels, values)
        if "neutral" in set(labels):
            row["ours_ece"] = expected_calibration_error(labels, scores[PROBS].to_numpy())
        rows.append(row)
    return rows


def in_domain(tweets: Path) -> tuple[float, float, dict]:
    frame = pd.read_csv(tweets)
    texts = frame["text"].astype(str).tolist()
    labels = frame["airline_sentiment"].tolist()
    settings = TrainingSettings.from_config(load_config())
    train_idx, test_idx = stratified_split(labels, settings.test_size, settings.seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_sentiment(
            tweets,
            "text",
            "airline_sentiment",
            Path(tmp) / "model",
            workdir=Path(tmp) / "work",
        )
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vectorizer.fit_transform([texts[i] for i in train_idx])
    clf = LogisticRegression(max_iter=2000, C=1.0)
    clf.fit(x_train, [labels[i] for i in train_idx])
    tfidf = polarity_macro_f1(
        [labels[i] for i in test_idx],
        clf.predict(vectorizer.transform([texts[i] for i in test_idx])),
    )
    extra = {"n_train": len(train_idx), "n_test": len(test_idx)}
    extra["in_domain_accuracy"] = round(result.metrics["accuracy"], 4)
    return result.metrics["macro_f1"], tfidf, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--skip-in-domain", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    ensure_default_model()
    build_s = time.perf_counter() - start
    calibration = getattr(load_default_model().blend, "calibration", None)
    rows = cross_domain(load_sets(args.data))

    print(
        f"# sentiment quality, cross-domain ({platform.machine()}, default build {build_s:.1f} s;"
        f" never trained on these sets)"
    )
    print(
        "| set | n | ours macro-F1 | VADER | AFINN | ours - VADER | ours AUC | VADER AUC "
        "| AFINN AUC | ours neutral share |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['set']} | {r['n']:,} | {r['ours_f1']:.3f} | {r['vader_f1']:.3f} | "
            f"{r.get('afinn_f1', float('nan')):.3f} | {r['ours_f1'] - r['vader_f1']:+.3f} | "
            f"{r['ours_auc']:.3f} | {r['vader_auc']:.3f} | {r.get('afinn_auc', float('nan')):.3f}"
            f" | {r['neutral_share']:.0%} |"
        )
    tweets_row = rows[0]
    print(
        f"\nCalibration (top-label ECE, 10 bins): airline tweets {tweets_row['ours_ece']:.3f}; "
        f"own held-out text before/after temperature: {calibration}"
    )
    out: dict = {
        "default_build_seconds": round(build_s, 1),
        "calibration": calibration,
        "cross_domain": [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows
        ],
    }
    if not args.skip_in_domain:
        ours, tfidf, extra = in_domain(args.data / "airline_tweets/Tweets.csv")
        print("\n| in-domain, tweets, stratified 20% held out | macro-F1 |")
        print("| --- | ---: |")
        print(f"| `train_sentiment` on the other 80% | {ours:.3f} |")
        print(f"| TF-IDF 1-2 grams + logistic regression, same split | {tfidf:.3f} |")
        out.update(in_domain_macro_f1=round(ours, 4), tfidf_lr_macro_f1=round(tfidf, 4), **extra)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
