"""Fit the sentiment pipeline: text classifier first, then the lexicon blend on top.

The blend is fitted on *out-of-fold* classifier probabilities (``blend_folds``-fold
cross-fitting): in-sample probabilities of a bag-of-words model are over-confident and would
teach the blend to ignore the lexicon, which is exactly the knowledge that carries to text
unlike the training set.  Its temperature is then chosen on blend predictions for rows the
blend did not see (:func:`calibrate_blend`), so the probabilities are calibrated on held-out
text, and the calibration error before and after is stored with the model.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import numpy as np
from thinc.api import Config

from spm_ml.errors import TrainingError
from spm_ml.nlp.components import LABELS, SentimentBlend, softmax
from spm_ml.nlp.lexicon import FEATURE_NAMES
from spm_ml.nlp.pipeline import TrainingSettings, build_nlp, load_config
from spm_ml.nlp.scoring import SentimentModel

logger = logging.getLogger(__name__)

__all__ = ["calibrate_blend", "fit_blend", "fit_pipeline"]


def _train_textcat(config: Config, texts: Sequence[str], labels: Sequence[str], seed: int):
    """Return a pipeline whose textcat is trained on ``texts`` (blend left unfitted)."""
    from spacy.training import Example
    from spacy.util import compounding, fix_random_seed, minibatch
    from thinc.api import Adam

    settings = TrainingSettings.from_config(config)
    fix_random_seed(seed)
    nlp = build_nlp(config)
    textcat = nlp.get_pipe("textcat")
    for label in LABELS:
        textcat.add_label(label)
    model = SentimentModel(nlp)
    docs = [doc for _, doc in model.prepare(texts)]
    examples = [
        Example.from_dict(doc, {"cats": {c: float(c == y) for c in LABELS}})
        for doc, y in zip(docs, labels, strict=True)
        if len(doc)  # nothing left after cleaning (a bare link, a quoted reply): no evidence
    ]
    optimizer = Adam(settings.learn_rate)
    nlp.initialize(lambda: examples, sgd=optimizer)
    rng = random.Random(seed)
    order = list(range(len(examples)))
    with nlp.select_pipes(enable=["textcat"]):
        for epoch in range(settings.max_epochs):
            rng.shuffle(order)
            sizes = compounding(settings.batch_start, settings.batch_stop, 1.001)
            losses: dict[str, float] = {}
            for batch in minibatch([examples[i] for i in order], size=sizes):
                nlp.update(batch, drop=settings.dropout, sgd=optimizer, losses=losses)
            logger.debug("epoch %d textcat loss %.4f", epoch, losses.get("textcat", 0.0))
    return model


def _folds(labels: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """Stratified fold indices, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    y = np.asarray(labels)
    for label in LABELS:
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[j % k].append(int(i))
    return [np.asarray(sorted(f), dtype=np.int64) for f in folds]


def fit_blend(blend: SentimentBlend, features: np.ndarray, labels: Sequence[str], c: float) -> None:
    """Fit the blend's multinomial logistic weights on ``features`` (out-of-fold rows)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray([LABELS.index(label) for label in labels])
    clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    clf.fit(features, y)
    coef = np.zeros((len(LABELS), features.shape[1]))
    intercept = np.full(len(LABELS), -30.0)  # a class absent from training is never chosen
    if len(clf.classes_) == 2:  # sklearn stores one row for a binary problem
        coef[clf.classes_[1]] = clf.coef_[0] / 2
        coef[clf.classes_[0]] = -clf.coef_[0] / 2
        intercept[clf.classes_[1]] = clf.intercept_[0] / 2
        intercept[clf.classes_[0]] = -clf.intercept_[0] / 2
    else:
        coef[clf.classes_] = clf.coef_
        intercept[clf.classes_] = clf.intercept_
    blend.set_weights(coef, intercept)


def _nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    probs = softmax(logits / temperature)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))


def calibrate_blend(
    blend: SentimentBlend,
    features: np.ndarray,
    labels: Sequence[str],
    settings: TrainingSettings,
    folds: list[np.ndarray] | None = None,
) -> None:
    """Choose the blend's temperature on held-out rows; record ECE before and after.

    The rows are cross-fitted a second time: the blend is fitted on ``blend_folds - 1``
    folds of the (already out-of-fold) features and predicts the remaining fold, so every
    row gets a prediction from a blend that never saw it.  The temperature minimising the
    log loss of those predictions is kept (bounded search over [0.25, 4]); ECE with and
    without it goes into :attr:`SentimentBlend.calibration`.  ``folds`` replaces the random
    stratified folds (e.g. one per topic group).
    """
    from scipy.optimize import minimize_scalar

    from spm_ml.nlp.evaluation import expected_calibration_error

    y = np.asarray([LABELS.index(label) for label in labels])
    logits = np.zeros((len(labels), len(LABELS)))
    if folds is None:
        folds = _folds(labels, settings.blend_folds, settings.seed + 100)
    for fold in folds:
        mask = np.ones(len(labels), dtype=bool)
        mask[fold] = False
        part = SentimentBlend("held-out", 0.0, 0.0, blend.use_lexicon, 0)
        fit_blend(part, features[mask], [labels[i] for i in np.flatnonzero(mask)], settings.blend_c)
        logits[fold] = part.logits(features[fold])
    found = minimize_scalar(lambda t: _nll(logits, y, t), bounds=(0.25, 4.0), method="bounded")
    temperature = float(found.x)
    blend.temperature = temperature
    blend.calibration = {
        "held_out_rows": len(labels),
        "folds": len(folds),
        "temperature": round(temperature, 4),
        "ece_before": round(expected_calibration_error(labels, softmax(logits)), 4),
        "ece_after": round(expected_calibration_error(labels, softmax(logits / temperature)), 4),
        "log_loss_before": round(_nll(logits, y, 1.0), 4),
        "log_loss_after": round(_nll(logits, y, temperature), 4),
    }
    logger.info("Sentiment blend calibration on held-out rows: %s", blend.calibration)


def _group_folds(groups: Sequence[str]) -> list[np.ndarray]:
    """One fold per group: the rows of each group, in sorted group order."""
    array = np.asarray(groups)
    return [np.flatnonzero(array == g) for g in sorted(set(groups))]


def fit_pipeline(
    texts: Sequence[str],
    labels: Sequence[str],
    config: Config | None = None,
    groups: Sequence[str] | None = None,
) -> SentimentModel:
    """Train the full pipeline on ``texts`` with class names ``labels``; deterministic.

    Parameters
    ----------
    texts
        Raw email bodies or sentences (cleaned by the pipeline's tokenizer).
    labels
        One of :data:`~spm_ml.nlp.components.LABELS` per text (see
        :func:`~spm_ml.nlp.labels.map_labels`).
    config
        A config from :func:`~spm_ml.nlp.pipeline.load_config`; the packaged one by default.
    groups
        Optional topic group of each text (at least two groups).  When given, the blend and
        its temperature learn from predictions on whole groups the classifier (and blend)
        did not see, one fold per group, instead of random folds: it then learns how far
        to trust the classifier on text unlike its training text, which is what the
        default model meets.  Without groups (a user's own labelled emails) the folds are
        random and stratified.
    """
    config = config if config is not None else load_config()
    settings = TrainingSettings.from_config(config)
    if len(texts) != len(labels):
        raise TrainingError(f"{len(texts)} texts but {len(labels)} labels.")
    present = sorted(set(labels))
    if len(present) < 2:
        raise TrainingError(f"Training needs at least two classes; got only {present}.")
    counts = {label: list(labels).count(label) for label in present}
    if min(counts.values()) < settings.blend_folds:
        raise TrainingError(
            f"Each class needs at least {settings.blend_folds} examples; got {counts}."
        )
    model = _train_textcat(config, texts, labels, settings.seed)
    if not model.blend.use_lexicon and settings.blend_folds < 2:
        return model
    width = len(LABELS) + (len(FEATURE_NAMES) if model.blend.use_lexicon else 0)
    features = np.zeros((len(texts), width))
    if groups is not None and len(set(groups)) < 2:
        raise TrainingError("Group folds need at least two groups.")
    folds = (
        _group_folds(groups)
        if groups is not None
        else _folds(labels, settings.blend_folds, settings.seed)
    )
    for k, fold in enumerate(folds):
        mask = np.ones(len(texts), dtype=bool)
        mask[fold] = False
        train_idx = np.flatnonzero(mask)
        part = _train_textcat(
            config,
            [texts[i] for i in train_idx],
            [labels[i] for i in train_idx],
            settings.seed + k + 1,
        )
        prepared = part.prepare([texts[i] for i in fold])
        probs = part.textcat_probs([doc for _, doc in prepared])
        features[fold] = part.blend.features(probs, [doc for _, doc in prepared])
    calibrate_blend(
        model.blend,
        features,
        labels,
        settings,
        folds=folds if groups is not None else None,
    )
    fit_blend(model.blend, features, labels, settings.blend_c)
    logger.info("Trained sentiment pipeline on %d texts (%s).", len(texts), counts)
    return model
