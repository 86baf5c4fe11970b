"""How the default sentiment architecture was chosen: held out by topic, on our own text only.

The shipped sentences come in three groups (sales emails, business reporting, review-like
opinions; :data:`spm_ml.nlp.corpus.GROUPS`).  Each variant is trained on two groups and
scored on the third, which it never saw: a stand-in for real text unlike the training text
that uses none of the real evaluation sets (those stay untouched for
``benchmarks/sentiment_quality.py``).  Reported per held-out group and on average: macro-F1
over three classes, ROC AUC of ``p_positive - p_negative`` (positive vs negative rows) and
top-label ECE.

Usage::

    python benchmarks/sentiment_selection.py
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np

from spm_ml.nlp.components import LABELS
from spm_ml.nlp.corpus import GROUPS, labelled_sentences
from spm_ml.nlp.evaluation import expected_calibration_error, polarity_auc, polarity_macro_f1
from spm_ml.nlp.pipeline import load_config
from spm_ml.nlp.training import fit_pipeline

VARIANTS: dict[str, tuple[dict, bool]] = {
    "textcat alone (calibrated)": ({"components.spm_ml_sentiment_blend.use_lexicon": False}, False),
    "textcat + lexicon blend, random folds": ({}, False),
    "textcat + lexicon blend, group folds": ({}, True),
    "textcat reading punctuation (v1) + lexicon blend, group folds": (
        {"components.textcat.model.@architectures": "spm_ml.TextCatBOWNorm.v1"},
        True,
    ),
    "textcat unigrams + lexicon blend, group folds": (
        {"components.textcat.model.ngram_size": 1},
        True,
    ),
}


def evaluate(overrides: dict, use_groups: bool, held_out: str) -> dict[str, float]:
    texts, labels, groups = labelled_sentences()
    train = [i for i, g in enumerate(groups) if g != held_out]
    test = [i for i, g in enumerate(groups) if g == held_out]
    model = fit_pipeline(
        [texts[i] for i in train],
        [labels[i] for i in train],
        load_config(overrides=overrides),
        groups=[groups[i] for i in train] if use_groups else None,
    )
    scores = model.score([texts[i] for i in test])
    truth = [labels[i] for i in test]
    probs = scores[["p_" + label for label in LABELS]].to_numpy()
    return {
        "macro_f1": polarity_macro_f1(truth, scores["label"].tolist()),
        "auc": polarity_auc(truth, probs[:, 2] - probs[:, 0]),
        "ece": expected_calibration_error(truth, probs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", help="only these variants (repeatable)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = args.variant or list(VARIANTS)
    print("| variant | held out | macro-F1 | AUC | ECE |")
    print("| --- | --- | ---: | ---: | ---: |")
    results: dict[str, dict] = {}
    for name in names:
        overrides, use_groups = VARIANTS[name]
        per = {g: evaluate(overrides, use_groups, g) for g in GROUPS}
        mean = {k: float(np.mean([r[k] for r in per.values()])) for k in ("macro_f1", "auc", "ece")}
        for g, r in [*per.items(), ("mean", mean)]:
            print(f"| {name} | {g} | {r['macro_f1']:.3f} | {r['auc']:.3f} | {r['ece']:.3f} |")
        results[name] = {"per_group": per, "mean": mean}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
