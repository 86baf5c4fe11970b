"""Score texts and tables with the default or a given sentiment model."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from spm_ml.nlp.scoring import OUTPUT_COLUMNS, SentimentModel
from spm_ml.nlp.tables import read_table, require_column, write_table

logger = logging.getLogger(__name__)

__all__ = ["resolve_model", "score_table", "score_texts", "sentiment_fingerprint"]

ModelLike = SentimentModel | str | Path | None


def resolve_model(model: ModelLike = None) -> SentimentModel:
    """``None`` -> the default model; a path or MLflow URI -> that model; a model -> itself."""
    if model is None:
        from spm_ml.nlp.default_model import load_default_model

        return load_default_model()
    if isinstance(model, SentimentModel):
        return model
    from spm_ml.nlp.pyfunc import load_sentiment_model

    return load_sentiment_model(model)


def sentiment_fingerprint(model: ModelLike = None) -> str:
    """Fingerprint of a sentiment model (default: the built-in one), as scores are keyed.

    The value :attr:`SentimentModel.fingerprint` gives for the model that
    :func:`resolve_model` returns: 32 hex digits, equal for the same weights in any process,
    different for a retrained model.  Store it with anything built from email scores (a
    deal-win model) to check later that the same sentiment model scores its inputs.  The
    built-in model is loaded (and built on first use) to compute it.

    Examples
    --------
    >>> len(sentiment_fingerprint())  # doctest: +SKIP
    32
    """
    return resolve_model(model).fingerprint


def score_texts(texts: Sequence[str], model: ModelLike = None) -> pd.DataFrame:
    """Sentiment of each text: ``label, p_negative, p_neutral, p_positive`` (+ flags).

    The entry point for deal features: one row per input text, in order, with a fresh
    ``RangeIndex``.  Non-English or empty texts get a missing label and NaN probabilities.

    Examples
    --------
    >>> score_texts(["We are going with another vendor."])["label"].iloc[0]  # doctest: +SKIP
    'negative'
    """
    return resolve_model(model).score(list(texts))


def score_table(
    table: str | Path,
    text_col: str,
    out: str | Path,
    model: ModelLike = None,
    batch_size: int = 512,
    on_batch: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    n_process: int = 1,
) -> Path:
    """Add the score columns to ``table`` and write it to ``out`` (format by extension).

    The output is the user's own table annotated, so its columns (the text included) are
    kept; nothing of the text is logged.  Existing score columns are replaced.
    ``n_process`` worker processes score batches in parallel (see
    :meth:`SentimentModel.score_batches`).
    """
    frame = read_table(table)
    require_column(frame, text_col, table)
    scorer = resolve_model(model)
    texts = frame[text_col].tolist()
    if on_start is not None:
        on_start(len(texts))
    scores = scorer.score_batches(
        texts, batch_size=batch_size, on_batch=on_batch, n_process=n_process
    )
    frame = frame.drop(columns=[c for c in OUTPUT_COLUMNS if c in frame.columns])
    frame = pd.concat([frame.reset_index(drop=True), scores], axis=1)
    path = write_table(frame, out)
    logger.info("Scored %d rows of %s into %s.", len(frame), Path(table).name, path)
    return path
