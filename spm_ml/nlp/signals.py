"""From email text to deal signals: score every email once, keep only the derived scores.

The deal features (:mod:`spm_ml.features.email_signals`) read ``p_negative``,
``p_neutral`` and ``p_positive`` columns on the emails table.  :func:`score_emails` adds them
and drops the subject and body from the returned tables: downstream steps (training,
batch outputs, MLflow) then cannot leak email text even by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.features.email_signals import SENTIMENT_COLUMNS
from spm_ml.nlp.batch import ModelLike, resolve_model

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("subject", "body")


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
