"""Score emails: clean, split into sentences, classify each, aggregate to the email.

Units: every sentence of the email; a short text (at most ``whole_text_max_tokens`` tokens,
60 by default) with several sentences also contributes its whole reading as one more unit,
which keeps the context a model trained on whole messages expects.  Long emails are scored
per sentence only.

Aggregation rule (why: one polite closing line must not hide a cancellation).  Each unit
``i`` gets probabilities ``p_i = (neg, neu, pos)`` from the classifier + lexicon blend and a
weight ``w_i = neutral_weight + negative_weight * neg_i + pos_i`` (defaults 0.1 and 3.0, set
in the pipeline config).  The email's probabilities are the weighted mean ``sum w_i p_i /
sum w_i``: opinionated sentences count more than small talk, and negative ones count triple,
because in sales a single "we are going with a competitor" decides the thread however warmly
it is wrapped.  Emails that are empty after cleaning, or not English, get missing scores
(``label`` is missing, ``p_*`` are NaN) rather than a guess.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from spm_ml.nlp.cleaning import clean_email
from spm_ml.nlp.components import LABELS, SentimentBlend
from spm_ml.nlp.language import is_english
from spm_ml.nlp.pipeline import PRE_PIPES

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span

logger = logging.getLogger(__name__)

__all__ = [
    "OUTPUT_COLUMNS",
    "SCORING_VERSION",
    "SentimentModel",
    "aggregate_sentences",
    "pipeline_dir",
]

OUTPUT_COLUMNS: tuple[str, ...] = (
    "label",
    "p_negative",
    "p_neutral",
    "p_positive",
    "is_english",
    "n_sentences",
)
"""Columns of every score frame, in order."""

PIPELINE_ARTIFACT = "pipeline"
"""Artifact key (and sub-folder of ``artifacts/``) of the spaCy pipeline in a pyfunc folder."""

MAX_SENTENCES = 200
"""Sentences scored per email at most (cleaned text is already capped in characters)."""

SCORING_VERSION = "email-scoring.v1"
"""Part of every model's :attr:`SentimentModel.fingerprint`.  Bump it when code outside the
saved pipeline (sentence units, aggregation, the language check) changes the scores a model
gives the same text, so caches and deal-win models keyed on the fingerprint notice."""


def pipeline_dir(model_dir: str | Path) -> Path:
    """The spaCy pipeline folder inside a pyfunc model folder (see :mod:`.pyfunc`)."""
    return Path(model_dir) / "artifacts" / PIPELINE_ARTIFACT


def aggregate_sentences(
    probs: np.ndarray, negative_weight: float = 3.0, neutral_weight: float = 0.1
) -> np.ndarray:
    """Pool ``(k, 3)`` sentence probabilities into one email distribution (see module doc).

    Examples
    --------
    >>> p = np.array([[0.9, 0.05, 0.05], [0.02, 0.08, 0.9]])  # cancellation, "Thanks!"
    >>> aggregate_sentences(p).argmax()  # negative
    0
    """
    probs = np.asarray(probs, dtype=np.float64)
    weights = neutral_weight + negative_weight * probs[:, 0] + probs[:, 2]
    return weights @ probs / weights.sum()


_LETTER = re.compile(r"[^\W\d_]")


class SentimentModel:
    """A trained sentiment pipeline with the email-level scoring logic around it.

    Parameters
    ----------
    nlp
        A pipeline built from ``sentiment.cfg`` whose ``textcat`` (and blend) are trained.
    """

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp
        self.blend: SentimentBlend = nlp.get_pipe("spm_ml_sentiment_blend")

    @cached_property
    def fingerprint(self) -> str:
        """Identity of this model's scores: 32 hex digits, the same in every process and run.

        A BLAKE2b digest of :data:`SCORING_VERSION` and the serialised pipeline (config,
        tokenizer settings, classifier and blend weights; not the string store, which
        :meth:`save` leaves out too), so a saved and re-loaded model keeps its fingerprint
        and a retrained one with different weights gets a new one.  Computed on first use
        (about 15 ms) and then kept: train a model before asking for it.
        """
        digest = hashlib.blake2b(SCORING_VERSION.encode(), digest_size=16)
        digest.update(self.nlp.to_bytes(exclude=["vocab"]))
        return digest.hexdigest()

    def prepare(self, texts: Iterable[object]) -> list[tuple[str, Doc]]:
        """Clean, tokenise and split ``texts`` into sentences; returns (clean text, doc)."""
        tokenizer = self.nlp.tokenizer
        pre = [self.nlp.get_pipe(name) for name in PRE_PIPES if name in self.nlp.pipe_names]
        prepared = []
        for text in texts:
            clean = clean_email(text, tokenizer.max_chars)  # type: ignore[arg-type]
            doc = tokenizer.tokenize_clean(clean)
            for proc in pre:
                doc = proc(doc)
            prepared.append((clean, doc))
        return prepared

    def textcat_probs(self, units: Sequence[Doc | Span]) -> np.ndarray:
        """``(n, 3)`` probabilities of the text classifier alone for docs or sentence spans."""
        if not units:
            return np.zeros((0, len(LABELS)))
        textcat = self.nlp.get_pipe("textcat")
        order = [textcat.labels.index(label) for label in LABELS]
        chunks = [
            textcat.model.predict(list(units[i : i + 1024])) for i in range(0, len(units), 1024)
        ]
        return np.vstack([np.asarray(c) for c in chunks])[:, order]

    def classify(self, units: Sequence[Doc | Span]) -> np.ndarray:
        """``(n, 3)`` blended probabilities for docs or sentence spans."""
        return self.blend.combine(self.textcat_probs(units), units)

    def score(self, texts: Sequence[object]) -> pd.DataFrame:
        """Score ``texts``; returns one row per text with :data:`OUTPUT_COLUMNS`."""
        unit_docs: list[Doc | Span] = []
        english: list[bool] = []
        n_sentences: list[int] = []
        n_units: list[int] = []
        whole_max = self.blend.whole_text_max_tokens
        for clean, doc in self.prepare(texts):
            ok = bool(clean) and is_english(clean)
            english.append(ok or not clean)
            spans = list(doc.sents) if ok else []
            if len(spans) == 1:
                units = [(doc, clean)] if _LETTER.search(clean) else []
            else:
                units = [(s, clean[s.start_char : s.end_char]) for s in spans]
                units = [(s, t) for s, t in units if _LETTER.search(t)][:MAX_SENTENCES]
            n_sentences.append(len(units))
            if len(units) > 1 and len(doc) <= whole_max:
                units.append((doc, clean))  # short text: its whole reading is one more vote
            n_units.append(len(units))
            unit_docs.extend(u for u, _ in units)
        probs = self.classify(unit_docs)
        result = np.full((len(n_units), len(LABELS)), np.nan)
        start = 0
        for index, count in enumerate(n_units):
            if count:
                result[index] = aggregate_sentences(
                    probs[start : start + count],
                    self.blend.negative_weight,
                    self.blend.neutral_weight,
                )
                start += count
        labels = pd.array(
            [LABELS[int(np.argmax(row))] if not np.isnan(row[0]) else pd.NA for row in result],
            dtype="string",
        )
        return pd.DataFrame(
            {
                "label": labels,
                "p_negative": result[:, 0],
                "p_neutral": result[:, 1],
                "p_positive": result[:, 2],
                "is_english": np.asarray(english, dtype=bool),
                "n_sentences": np.asarray(n_sentences, dtype=np.int64),
            }
        )

    def score_batches(
        self,
        texts: Sequence[object],
        batch_size: int = 512,
        on_batch: Callable[[int], None] | None = None,
        n_process: int = 1,
    ) -> pd.DataFrame:
        """:meth:`score` in batches, calling ``on_batch(n_done_in_batch)`` after each.

        ``n_process > 1`` scores batches in forked worker processes (POSIX only; elsewhere
        it falls back to one process); results come back in input order.
        """
        chunks = [list(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        if not chunks:
            return self.score([])
        frames: list[pd.DataFrame] = []
        if n_process > 1 and len(chunks) > 1 and "fork" in mp.get_all_start_methods():
            global _WORKER_MODEL
            _WORKER_MODEL = self  # inherited by the forked workers, never pickled
            pool = ProcessPoolExecutor(
                min(n_process, len(chunks)),
                mp_context=mp.get_context("fork"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
            try:
                results = pool.map(_score_in_worker, chunks)
                for chunk, frame in zip(chunks, results, strict=True):
                    frames.append(frame)
                    if on_batch is not None:
                        on_batch(len(chunk))
            except BaseException:
                # SIGTERM (the CLI turns it into SystemExit), Ctrl-C or an error: stop the
                # workers now; a clean shutdown would first let each finish its batch.
                _kill_workers(pool)
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                _WORKER_MODEL = None
        else:
            for chunk in chunks:
                frames.append(self.score(chunk))
                if on_batch is not None:
                    on_batch(len(chunk))
        return pd.concat(frames, ignore_index=True)

    def save(self, path: str | Path) -> Path:
        """Write the spaCy pipeline to ``path`` without its string store.

        The string store would list every token seen in training, i.e. words of the
        training emails; the classifier works on hashes and does not need it.
        """
        path = Path(path)
        self.nlp.to_disk(path, exclude=["vocab"])
        return path

    @classmethod
    def load(cls, path: str | Path) -> SentimentModel:
        """Load a pipeline written by :meth:`save`."""
        import spacy

        import spm_ml.nlp.components  # noqa: F401  (registers the config's functions)

        return cls(spacy.load(Path(path), exclude=["vocab"]))


_WORKER_MODEL: SentimentModel | None = None


def _score_in_worker(texts: list[object]) -> pd.DataFrame:
    assert _WORKER_MODEL is not None, "worker started without a model"
    return _WORKER_MODEL.score(texts)


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _start_worker(parent_pid: int) -> None:
    """Make a forked scoring worker stop with its parent, however the parent stops.

    A worker holds a copy of the model (hundreds of MB); one that outlives its parent runs
    for good.  Through fork it inherits the parent's signal handlers: SIGTERM goes back to
    the default (die), and Ctrl-C is left to the parent, which then stops the workers.
    On Linux the kernel also kills the worker when the parent dies without cleaning up
    (SIGKILL, a crash).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool``'s workers at once, mid-batch; the caller is abandoning the results."""
    if hasattr(pool, "terminate_workers"):  # Python 3.14+
        pool.terminate_workers()
        return
    # Before 3.14 the executor has no public way to stop busy workers; its process table is
    # the only handle on them.  Read it before shutdown() drops it.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=5)
