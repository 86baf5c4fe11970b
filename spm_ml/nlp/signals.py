"""From email text to deal signals: score every email once, keep only the derived scores.

The deal features (:mod:`spm_ml.features.email_signals`) read ``p_negative``,
``p_neutral`` and ``p_positive`` columns on the emails table.  :func:`score_emails` adds them
and drops the subject and body from the returned tables: downstream steps (training,
batch outputs, MLflow) then cannot leak email text even by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.features.email_signals import SENTIMENT_COLUMNS, has_sentiment
from spm_ml.nlp.batch import ModelLike, resolve_model

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("subject", "body")


def with_email_scores(
    tables: Tables,
    *,
    cache: Path | None = None,
    n_process: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> Tables:
    """Tables ready for deal features: emails scored once, bodies gone.

    A no-op when the emails already carry scores (or there are none), so every pipeline
    (training, promotion, batch, service) can call it and they all see the same features.
    With ``cache`` (a Parquet file of ``email_id`` and the three scores: derived data, no
    text), emails scored before are not scored again and new scores are added to it.
    """
    emails = tables.emails
    if has_sentiment(tables) or emails.empty or "body" not in emails.columns:
        return tables
    known = _read_cache(cache)
    todo = ~emails["email_id"].isin(known.index)
    if todo.any():
        fresh = score_emails(
            tables.replace(emails=emails[todo]), n_process=n_process, progress=progress
        ).emails.set_index("email_id")[list(SENTIMENT_COLUMNS)]
        known = pd.concat([known, fresh])
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            known.reset_index().to_parquet(cache, index=False)
    scores = known.reindex(emails["email_id"].to_numpy())
    scored = emails.drop(columns=[c for c in (*TEXT_COLUMNS, *SENTIMENT_COLUMNS) if c in emails])
    for column in SENTIMENT_COLUMNS:
        scored[column] = scores[column].to_numpy(dtype=float)
    return tables.replace(emails=scored)


def _read_cache(cache: Path | None) -> pd.DataFrame:
    if cache is None or not cache.exists():
        return pd.DataFrame(columns=list(SENTIMENT_COLUMNS), dtype=float).rename_axis("email_id")
    return pd.read_parquet(cache).set_index("email_id")[list(SENTIMENT_COLUMNS)]


def email_texts(emails: pd.DataFrame) -> list[str]:
    """Subject and body as one text per email (the subject often carries the tone)."""
    subject = emails["subject"].fillna("").astype(str)
    body = emails["body"].fillna("").astype(str)
    return (subject.str.cat(body, sep="\n")).str.strip().tolist()


def score_emails(
    tables: Tables,
    model: ModelLike = None,
    *,
    batch_size: int = 512,
    n_process: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> Tables:
    """``tables`` whose emails carry sentiment scores instead of subject and body.

    Emails flagged non-English or empty get NaN scores (never a guess); the features treat
    them as unscored.
    """
    emails = tables.emails
    texts = email_texts(emails)
    done = [0]

    def on_batch(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress("scoring emails", done[0], len(texts))

    scores = resolve_model(model).score_batches(
        texts, batch_size=batch_size, on_batch=on_batch, n_process=n_process
    )
    scored = emails.drop(columns=[c for c in (*TEXT_COLUMNS, *SENTIMENT_COLUMNS) if c in emails])
    for column in SENTIMENT_COLUMNS:
        scored[column] = scores[column].to_numpy(dtype=float)
    logger.info("scored %d emails (%d unscored)", len(scored), scores["p_positive"].isna().sum())
    return tables.replace(emails=scored)
