"""From email text to deal signals: score every email once, keep only the derived scores.

The deal features (:mod:`spm_ml.features.email_signals`) read ``p_negative``,
``p_neutral`` and ``p_positive`` columns on the emails table.  :func:`score_emails` adds them
and drops the subject and body from the returned tables: downstream steps (training,
batch outputs, MLflow) then cannot leak email text even by accident.

The score cache
---------------
:func:`with_email_scores` can keep the scores in a Parquet file (one per work folder, see
:func:`spm_ml.settings.email_scores_path`) so a re-run scores only what is new.  A cached
score is reused only for the same email id, the same text and the same model: each row is
keyed by ``email_id``, ``text_hash`` (BLAKE2b-128 of the text as scored, see
:func:`text_hashes`) and ``model`` (:attr:`SentimentModel.fingerprint
<spm_ml.nlp.scoring.SentimentModel.fingerprint>`).  Two organisations in one work folder,
an edited email or a retrained model therefore never reuse each other's scores.  The file
holds those keys and the three probabilities, never text.  It is replaced atomically under
a lock; a file that cannot be read (truncated, not Parquet, an older layout) is rebuilt with
a warning naming it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.features.email_signals import SENTIMENT_COLUMNS, has_sentiment
from spm_ml.nlp.batch import ModelLike, resolve_model
from spm_ml.nlp.files import file_lock, write_parquet_atomic
from spm_ml.nlp.scoring import SentimentModel

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_COLUMNS",
    "FINGERPRINT_ATTR",
    "email_texts",
    "score_emails",
    "text_hashes",
    "with_email_scores",
]

TEXT_COLUMNS = ("subject", "body")

CACHE_COLUMNS: tuple[str, ...] = ("email_id", "text_hash", "model", *SENTIMENT_COLUMNS)
"""Columns of the score cache: the key (id, text hash, model fingerprint) and the scores."""

FINGERPRINT_ATTR = "sentiment_fingerprint"
"""Key in ``emails.attrs`` of the tables that :func:`with_email_scores` and
:func:`score_emails` return: the fingerprint of the model that produced the scores."""

_KEY = ["email_id", "text_hash"]


def with_email_scores(
    tables: Tables,
    *,
    cache: Path | None = None,
    model: ModelLike = None,
    n_process: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> Tables:
    """Tables ready for deal features: emails scored once, bodies gone.

    A no-op (apart from dropping any subject and body) when the emails already carry
    scores, or when there are none, so every pipeline (training, promotion, batch, service)
    can call it and they all see the same features.  ``model`` is the sentiment model (a
    :class:`~spm_ml.nlp.scoring.SentimentModel`, a model folder or MLflow URI; default: the
    built-in model).  With ``cache``, emails scored before with the same text and the same
    model are not scored again, and new scores are added to it (see the module doc).

    The returned ``emails.attrs[FINGERPRINT_ATTR]`` names the model that scored them; the
    same value is ``sentiment_fingerprint(model)``.
    """
    emails = tables.emails
    if has_sentiment(tables) or emails.empty or "body" not in emails.columns:
        if any(c in emails.columns for c in TEXT_COLUMNS):
            return tables.replace(emails=_without_text(emails))
        return tables
    scorer = resolve_model(model)
    fingerprint = scorer.fingerprint
    texts = email_texts(emails)
    keys = pd.MultiIndex.from_arrays(
        [emails["email_id"].astype(str).to_numpy(), text_hashes(texts)], names=_KEY
    )
    known = _cached_scores(cache, fingerprint)
    todo = ~keys.isin(known.index)
    if todo.any():
        # An id and text that occur twice are scored once.
        new = pd.Series(texts, index=keys)[todo]
        new = new[~new.index.duplicated()]
        scores = _score(scorer, new.tolist(), n_process=n_process, progress=progress)
        fresh = scores[list(SENTIMENT_COLUMNS)].set_axis(new.index)
        if cache is not None:
            _add_to_cache(cache, fresh, fingerprint)
        known = fresh if known.empty else pd.concat([known, fresh])
    logger.info(
        "email sentiment: %d emails, %d scored now, %d from the cache",
        len(emails),
        int(todo.sum()),
        int((~todo).sum()),
    )
    return tables.replace(emails=_with_scores(emails, known.reindex(keys), fingerprint))


def text_hashes(texts: Sequence[str]) -> list[str]:
    """BLAKE2b-128 hex digest of each text: a cache key that does not hold the text."""
    return [
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        for text in texts
    ]


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
    them as unscored.  No cache: every email is scored.
    """
    emails = tables.emails
    scorer = resolve_model(model)
    scores = _score(
        scorer, email_texts(emails), batch_size=batch_size, n_process=n_process, progress=progress
    )
    logger.info("scored %d emails (%d unscored)", len(scores), scores["p_positive"].isna().sum())
    return tables.replace(emails=_with_scores(emails, scores, scorer.fingerprint))


def _score(
    scorer: SentimentModel,
    texts: list[str],
    *,
    batch_size: int = 512,
    n_process: int,
    progress: Callable[[str, int, int], None] | None,
) -> pd.DataFrame:
    done = [0]

    def on_batch(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress("scoring emails", done[0], len(texts))

    return scorer.score_batches(
        texts, batch_size=batch_size, on_batch=on_batch, n_process=n_process
    )


def _without_text(emails: pd.DataFrame) -> pd.DataFrame:
    return emails.drop(columns=[c for c in TEXT_COLUMNS if c in emails.columns])


def _with_scores(emails: pd.DataFrame, scores: pd.DataFrame, fingerprint: str) -> pd.DataFrame:
    """``emails`` without text, with the score columns of ``scores`` (row for row)."""
    scored = _without_text(emails).drop(
        columns=[c for c in SENTIMENT_COLUMNS if c in emails.columns]
    )
    for column in SENTIMENT_COLUMNS:
        scored[column] = scores[column].to_numpy(dtype=float)
    scored.attrs[FINGERPRINT_ATTR] = fingerprint
    return scored


def _empty_cache() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email_id": pd.Series(dtype=str),
            "text_hash": pd.Series(dtype=str),
            "model": pd.Series(dtype=str),
            **{c: pd.Series(dtype=float) for c in SENTIMENT_COLUMNS},
        }
    )


def _read_cache(cache: Path | None, *, warn: bool = True) -> pd.DataFrame:
    """Every row of the cache file; empty (and a warning) when it cannot be used."""
    if cache is None or not cache.exists():
        return _empty_cache()
    try:
        frame = pd.read_parquet(cache)
        missing = [c for c in CACHE_COLUMNS if c not in frame.columns]
        if not missing:
            return frame.astype(
                {"email_id": str, "text_hash": str, "model": str}
                | dict.fromkeys(SENTIMENT_COLUMNS, float)
            )[list(CACHE_COLUMNS)]
        reason = f"has no column(s) {missing} (an older layout keyed by email id only)"
    except Exception as exc:  # any unreadable file is rebuilt, never a crash
        # Only the exception's type: the cache holds no text, but a reader's message is
        # not ours to vouch for.
        reason = f"cannot be read ({type(exc).__name__}: truncated or not Parquet)"
    if warn:
        logger.warning(
            "Email-score cache %s %s; it will be rebuilt and its emails scored again.",
            cache,
            reason,
        )
    return _empty_cache()


def _cached_scores(cache: Path | None, fingerprint: str) -> pd.DataFrame:
    """Scores of ``fingerprint``'s model in the cache, indexed by (email_id, text_hash)."""
    frame = _read_cache(cache)
    frame = frame[frame["model"] == fingerprint].set_index(_KEY)[list(SENTIMENT_COLUMNS)]
    return frame[~frame.index.duplicated(keep="last")]


def _add_to_cache(cache: Path, fresh: pd.DataFrame, fingerprint: str) -> None:
    """Merge ``fresh`` scores into the cache file, replacing it in one step.

    The file is re-read under the lock so that entries another process wrote since our
    first read are kept.
    """
    rows = fresh.reset_index().assign(model=fingerprint)[list(CACHE_COLUMNS)]
    with file_lock(cache.with_name(f".{cache.name}.lock")):
        current = _read_cache(cache, warn=False)  # a bad file was reported when first read
        merged = rows if current.empty else pd.concat([current, rows], ignore_index=True)
        merged = merged.drop_duplicates(["email_id", "text_hash", "model"], keep="last")
        write_parquet_atomic(merged, cache)
