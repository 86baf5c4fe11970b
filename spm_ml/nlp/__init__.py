"""Email sentiment for sales conversations: clean, split, classify, aggregate.

Public entry points::

    score_texts(texts, model=None) -> DataFrame[label, p_negative, p_neutral, p_positive, ...]
    score_table(table, text_col, out, model=None)
    sentiment_fingerprint(model=None) -> str   (identity of a model's scores)
    train_sentiment(table, text_col, label_col, model_out, ...)
    clean_email(raw) -> str

The implementation lives in private-by-convention modules (``cleaning``, ``components``,
``pipeline``, ``training``, ``scoring``, ``default_model``, ``pyfunc``, ``lexicon``) that can
move without breaking these names.  Importing this package loads no model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "LABELS",
    "SentimentModel",
    "aggregate_sentences",
    "clean_email",
    "ensure_default_model",
    "fit_pipeline",
    "load_default_model",
    "load_sentiment_model",
    "map_labels",
    "save_pyfunc",
    "score_table",
    "score_texts",
    "sentiment_fingerprint",
    "train_sentiment",
]

_WHERE = {
    "LABELS": "components",
    "SentimentModel": "scoring",
    "aggregate_sentences": "scoring",
    "clean_email": "cleaning",
    "ensure_default_model": "default_model",
    "fit_pipeline": "training",
    "load_default_model": "default_model",
    "load_sentiment_model": "pyfunc",
    "map_labels": "labels",
    "save_pyfunc": "pyfunc",
    "score_table": "batch",
    "score_texts": "batch",
    "sentiment_fingerprint": "batch",
    "train_sentiment": "experiment",
}

if TYPE_CHECKING:
    from spm_ml.nlp.batch import score_table, score_texts, sentiment_fingerprint
    from spm_ml.nlp.cleaning import clean_email
    from spm_ml.nlp.components import LABELS
    from spm_ml.nlp.default_model import ensure_default_model, load_default_model
    from spm_ml.nlp.experiment import train_sentiment
    from spm_ml.nlp.labels import map_labels
    from spm_ml.nlp.pyfunc import load_sentiment_model, save_pyfunc
    from spm_ml.nlp.scoring import SentimentModel, aggregate_sentences
    from spm_ml.nlp.training import fit_pipeline


def __getattr__(name: str) -> Any:
    # Lazy: `import spm_ml.nlp` must not pull in spaCy and MLflow (STYLE 12).
    if name not in _WHERE:
        raise AttributeError(f"module 'spm_ml.nlp' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"spm_ml.nlp.{_WHERE[name]}"), name)
