"""The default sentiment model: built from the shipped sentences on first use, then cached.

No model binary lives in git.  The first call trains the pipeline on the labelled sentences
in ``spm_ml/nlp/data`` with the packaged config (deterministic, ~20 s on 2 cores) and writes
an MLflow pyfunc folder under :func:`spm_ml.settings.cache_dir`.  The folder name carries a
fingerprint of the sentences, the config and the model version, so editing either builds a
new model instead of serving a stale one.  A file lock serialises concurrent first uses
(e.g. two workers), and the folder appears by atomic rename, so nobody reads half a model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

from spm_ml import settings
from spm_ml.nlp.corpus import corpus_files
from spm_ml.nlp.files import file_lock
from spm_ml.nlp.lexicon import FEATURE_NAMES, lexicon_digest
from spm_ml.nlp.pipeline import DEFAULT_CONFIG
from spm_ml.nlp.scoring import SentimentModel, pipeline_dir

logger = logging.getLogger(__name__)

__all__ = ["MODEL_VERSION", "default_model_dir", "ensure_default_model", "load_default_model"]

MODEL_VERSION = "sentiment-default.v2"
"""Bump when code changes (cleaning, features, training) alter what the default model learns;
the shipped sentences, slot values, word lists and the config are fingerprinted
automatically."""

_loaded: dict[Path, SentimentModel] = {}
_lock = threading.Lock()


def _inputs_digest() -> str:
    """Hash of everything the default model is built from (names its cache folder).

    Not the model's identity: that is :attr:`SentimentModel.fingerprint`, a hash of the
    trained weights, which is what score caches and deal-win models record.
    """
    from spm_ml.nlp.corpus import POLITE_LINES, SLOT_VALUES

    digest = hashlib.sha256(MODEL_VERSION.encode())
    digest.update(repr((POLITE_LINES, sorted(SLOT_VALUES.items()))).encode())
    for name, text in sorted(corpus_files().items()):
        digest.update(name.encode())
        digest.update(text.encode("utf-8"))
    digest.update(lexicon_digest().encode())
    digest.update(repr(FEATURE_NAMES).encode())
    digest.update(DEFAULT_CONFIG.read_bytes())
    return digest.hexdigest()[:12]


def default_model_dir() -> Path:
    """Where the default model for this package version lives (it may not exist yet)."""
    return settings.cache_dir() / "sentiment" / f"default-{_inputs_digest()}"


def ensure_default_model() -> Path:
    """Build the default model if it is not in the cache yet; return its pyfunc folder."""
    target = default_model_dir()
    if (target / "MLmodel").is_file():
        return target
    with file_lock(target.parent / ".build.lock"):
        if (target / "MLmodel").is_file():  # another process built it while we waited
            return target
        from spm_ml.nlp.corpus import labelled_sentences
        from spm_ml.nlp.pyfunc import save_pyfunc
        from spm_ml.nlp.training import fit_pipeline

        logger.info("Building the default sentiment model in %s (first use).", target)
        texts, labels, groups = labelled_sentences()
        # Group folds: the blend learns how far to trust the classifier on text unlike its
        # training text (chosen by benchmarks/sentiment_selection.py).
        model = fit_pipeline(texts, labels, groups=groups)
        save_pyfunc(model, target)
        os.utime(target)
    return target


def load_default_model() -> SentimentModel:
    """The default model, built on first use and kept in memory for the process."""
    target = default_model_dir()
    with _lock:
        model = _loaded.get(target)
        if model is None:
            ensure_default_model()
            model = SentimentModel.load(pipeline_dir(target))
            _loaded[target] = model
    return model
