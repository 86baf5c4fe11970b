"""spaCy building blocks that the pipeline config (``sentiment.cfg``) refers to by name.

* ``spm_ml.EmailTokenizer.v1``: cleans the raw email (:func:`~spm_ml.nlp.cleaning.clean_email`)
  and then tokenises with the ordinary English rules, so cleaning is part of the pipeline
  and cannot be forgotten at serving time; numbers get one shared ``NORM`` so "3 days" and
  "30 days" read the same.
* ``spm_ml_sentences``: sentence boundaries at terminal punctuation and line breaks.
* ``spm_ml.TextCatBOWNorm.v1``: spaCy's bag-of-n-grams text classifier over ``NORM``
  (lower-case, numbers merged) instead of ``ORTH``, so case and digits do not split features;
  ``.v2`` (the packaged config's) also leaves out punctuation other than "?".
* ``spm_ml_sentiment_blend``: a multinomial logistic layer over the text classifier's
  log-probabilities plus :mod:`~spm_ml.nlp.lexicon` features, temperature-scaled; it
  carries the lexicons' knowledge to texts unlike the training sentences.

Registration happens when this module is imported (spaCy's registry is how configs find
code); nothing is built or loaded then.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import spacy
from spacy.attrs import IS_SPACE, LIKE_NUM, NORM, ORTH, SENT_START
from spacy.language import Language
from spacy.ml.models.textcat import resize_and_set_ref, resize_linear_weighted
from spacy.tokens import Doc, Span
from spacy.util import registry
from thinc.api import (
    Logistic,
    Model,
    SparseLinear_v2,
    chain,
    resizable,
    softmax_activation,
    with_cpu,
)

from spm_ml.nlp.cleaning import MAX_CHARS, clean_email
from spm_ml.nlp.lexicon import FEATURE_NAMES, lexicon_digest, lexicon_features

logger = logging.getLogger(__name__)

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
"""The three exclusive classes, in the order of the ``p_*`` columns."""

NUM_NORM = "<num>"
_DIGIT = re.compile(r"\d")


def is_member(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_keys)`` for a small sorted key array, several times faster
    on the short arrays of single sentences (a binary search instead of a sort)."""
    if len(sorted_keys) == 0 or len(values) == 0:
        return np.zeros(len(values), dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[idx] == values


class EmailTokenizer:
    """Tokenizer that cleans the email first; serialises through the wrapped tokenizer."""

    def __init__(self, nlp: Language, max_chars: int = MAX_CHARS) -> None:
        from spacy.tokenizer import Tokenizer

        defaults = nlp.Defaults
        prefix = spacy.util.compile_prefix_regex(defaults.prefixes).search
        suffix = spacy.util.compile_suffix_regex(defaults.suffixes).search
        infix = spacy.util.compile_infix_regex(defaults.infixes).finditer
        self.inner = Tokenizer(
            nlp.vocab,
            rules=defaults.tokenizer_exceptions,
            prefix_search=prefix,
            suffix_search=suffix,
            infix_finditer=infix,
            token_match=defaults.token_match,
            url_match=defaults.url_match,
        )
        self.max_chars = max_chars

    def __call__(self, text: str) -> Doc:
        return self.tokenize_clean(clean_email(text, self.max_chars))

    def tokenize_clean(self, text: str) -> Doc:
        """Tokenise text that is already clean (e.g. one sentence of a cleaned email)."""
        doc = self.inner(text)
        if _DIGIT.search(text):
            # Array access keeps this C-speed; only number tokens are touched from Python.
            for i in np.flatnonzero(doc.to_array(LIKE_NUM)):
                doc[int(i)].norm_ = NUM_NORM
        return doc

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        for text in texts:
            yield self(text)

    def to_bytes(self, **kwargs: Any) -> bytes:
        return self.inner.to_bytes(**kwargs)

    def from_bytes(self, data: bytes, **kwargs: Any) -> EmailTokenizer:
        self.inner.from_bytes(data, **kwargs)
        return self

    def to_disk(self, path: str | Path, **kwargs: Any) -> None:
        self.inner.to_disk(path, **kwargs)

    def from_disk(self, path: str | Path, **kwargs: Any) -> EmailTokenizer:
        self.inner.from_disk(path, **kwargs)
        return self


@registry.tokenizers("spm_ml.EmailTokenizer.v1")
def create_email_tokenizer(max_chars: int = MAX_CHARS) -> Callable[[Language], EmailTokenizer]:
    """Config factory for :class:`EmailTokenizer`."""
    return partial(EmailTokenizer, max_chars=max_chars)


class SentenceSplitter:
    """Rule-based sentence boundaries for emails, vectorised over the token arrays.

    Same rule as spaCy's ``sentencizer`` (a sentence starts at the first non-punctuation
    token after terminal punctuation), plus: a line break starts a sentence, because emails
    often have lines without full stops.  Five times faster than the ``sentencizer``, which
    matters for batch scoring.
    """

    def __init__(self, nlp: Language, name: str, punct_chars: list[str] | None = None) -> None:
        from spacy.pipeline import Sentencizer

        self.name = name
        self.punct_chars = list(punct_chars or Sentencizer.default_punct_chars)
        # Runs such as "..." and "!!" are single tokens; they end sentences too.
        runs = [ch * k for ch in ".!?" for k in (2, 3, 4)] + ["?!", "!?", "…"]
        self._punct = np.asarray(
            sorted({nlp.vocab.strings.add(ch) for ch in [*self.punct_chars, *runs]}),
            dtype=np.uint64,
        )

    def __call__(self, doc: Doc) -> Doc:
        n = len(doc)
        if n == 0:
            return doc
        orth = doc.to_array(ORTH)
        punct = is_member(orth, self._punct)
        starts = np.zeros(n, dtype=bool)
        starts[0] = True
        starts[1:] = punct[:-1] & ~punct[1:]
        for i in np.flatnonzero(doc.to_array(IS_SPACE)):  # few: only "\n" and space runs
            if i + 1 < n and "\n" in doc[int(i)].text:
                starts[int(i) + 1] = True
        values = np.where(starts, 1, -1).astype(np.int64).reshape(-1, 1)
        doc.from_array([SENT_START], values.astype(np.uint64))
        return doc

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return json.dumps({"punct_chars": self.punct_chars}).encode("utf-8")

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> SentenceSplitter:
        return self

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        return None

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> SentenceSplitter:
        return self


@Language.factory("spm_ml_sentences", default_config={"punct_chars": None})
def create_sentence_splitter(
    nlp: Language, name: str, punct_chars: list[str] | None
) -> SentenceSplitter:
    """Config factory for :class:`SentenceSplitter`."""
    return SentenceSplitter(nlp, name, punct_chars)


_SILENT_PUNCT = (".", ",", ";", ":", "!", "!!", "!!!", "...", "-", "--", "(", ")", '"', "'")
"""Punctuation the v2 classifier does not read ("?" stays: questions are mostly neutral).
In short written sentences "!" ends praise and "." ends complaints, so a bag of n-grams
learns the full stop as negative evidence; sentiment words and the lexicon carry intensity."""


def _norm_ngrams(ngram_size: int, skip: tuple[str, ...] = ()) -> Model:
    """spaCy's ``extract_ngrams`` over ``NORM`` that also accepts Spans (sentences).

    Tokens whose ``NORM`` is in ``skip`` are left out before the n-grams are formed.
    """
    from spacy.strings import get_string_id

    skip_keys = np.asarray(sorted(get_string_id(t) for t in skip), dtype=np.uint64)

    def forward(model: Model, docs: list[Doc | Span], is_train: bool):
        # Vectorised over the batch: one NORM array per document (sentences are slices of
        # it), n-grams formed on the concatenation and those crossing a unit boundary
        # dropped, then a stable sort by unit restores spaCy's order (each unit's unigrams,
        # then its bigrams).  Unlike spaCy's version, repeated n-grams are not merged with
        # np.unique: the sparse linear layer sums W[key] * value, so k copies with value 1
        # equal one copy with value k.
        ops = model.ops
        n_units = len(docs)
        cache: dict[int, np.ndarray] = {}
        pieces = []
        for unit in docs:
            if isinstance(unit, Span):
                doc, start, end = unit.doc, unit.start, unit.end
            else:
                doc, start, end = unit, 0, len(unit)
            arr = cache.get(id(doc))
            if arr is None:
                arr = np.ascontiguousarray(doc.to_array(NORM), dtype=np.uint64).reshape(-1)
                cache[id(doc)] = arr
            pieces.append(arr[start:end])
        sizes = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=n_units)
        flat = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint64)
        owner = np.repeat(np.arange(n_units), sizes)
        if len(skip_keys):
            keep = ~is_member(flat, skip_keys)
            flat, owner = flat[keep], owner[keep]
        keys, owners = [flat], [owner]
        for n in range(2, ngram_size + 1):
            if len(flat) >= n:
                grams = np.asarray(ops.ngrams(n, flat), dtype=np.uint64)
                first = owner[: len(flat) - n + 1]
                same = first == owner[n - 1 :]
                keys.append(grams[same])
                owners.append(first[same])
        all_owner = np.concatenate(owners)
        order = np.argsort(all_owner, kind="stable")
        all_keys = np.ascontiguousarray(np.concatenate(keys)[order])
        lengths = np.bincount(all_owner, minlength=n_units)
        vals = np.ones(len(all_keys), dtype="f")
        return (all_keys, vals, ops.asarray(lengths, dtype="int32")), lambda d_y: []

    model: Model = Model("norm_ngrams", forward)
    model.attrs["ngram_size"] = ngram_size
    return model


def _bow_classifier(
    exclusive_classes: bool, ngram_size: int, length: int, nO: int | None, skip: tuple[str, ...]
) -> Model[list[Doc], Any]:
    fill_defaults = {"b": -1e6 if exclusive_classes else 0, "W": 0}
    sparse_linear = SparseLinear_v2(nO=nO, length=length)
    resizable_layer = resizable(
        sparse_linear, resize_layer=partial(resize_linear_weighted, fill_defaults=fill_defaults)
    )
    output = softmax_activation() if exclusive_classes else Logistic()
    features = chain(_norm_ngrams(ngram_size, skip), resizable_layer)
    model = chain(with_cpu(features, features.ops), with_cpu(output, output.ops))
    if nO is not None:
        model.set_dim("nO", nO)
    model.set_ref("output_layer", sparse_linear)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs["resize_output"] = partial(resize_and_set_ref, resizable_layer=resizable_layer)
    return model


@registry.architectures("spm_ml.TextCatBOWNorm.v1")
def build_bow_norm_classifier(
    exclusive_classes: bool,
    ngram_size: int,
    length: int = 262144,
    nO: int | None = None,
) -> Model[list[Doc], Any]:
    """spaCy's ``TextCatBOW.v3`` reading ``NORM`` instead of ``ORTH`` (see module doc).

    Kept unchanged so that models saved with it score as they were evaluated."""
    return _bow_classifier(exclusive_classes, ngram_size, length, nO, ())


@registry.architectures("spm_ml.TextCatBOWNorm.v2")
def build_bow_norm_classifier_v2(
    exclusive_classes: bool,
    ngram_size: int,
    length: int = 262144,
    nO: int | None = None,
) -> Model[list[Doc], Any]:
    """:func:`build_bow_norm_classifier` without the punctuation in :data:`_SILENT_PUNCT`."""
    return _bow_classifier(exclusive_classes, ngram_size, length, nO, _SILENT_PUNCT)


class SentimentBlend:
    """Multinomial logistic layer over ``log(textcat probs)`` and lexicon features.

    Fitted outside spaCy (:func:`spm_ml.nlp.training.fit_blend`) on out-of-fold textcat
    predictions, so it learns how far to trust the classifier versus the lexicon, then
    temperature-scaled on held-out rows of the training text (:attr:`temperature`; the
    calibration errors before and after are kept in :attr:`calibration`).  Until fitted it
    passes the textcat probabilities through.  The scoring settings (``negative_weight``,
    ``neutral_weight``, ``whole_text_max_tokens``; see :mod:`spm_ml.nlp.scoring`) live here
    so that they travel with the model.
    """

    def __init__(
        self,
        name: str,
        negative_weight: float,
        neutral_weight: float,
        use_lexicon: bool,
        whole_text_max_tokens: int,
    ) -> None:
        self.name = name
        self.whole_text_max_tokens = whole_text_max_tokens
        self.negative_weight = negative_weight
        self.neutral_weight = neutral_weight
        self.use_lexicon = use_lexicon
        self.coef_: np.ndarray | None = None
        self.intercept_: np.ndarray | None = None
        self.temperature = 1.0
        self.calibration: dict[str, float] | None = None

    @property
    def is_fitted(self) -> bool:
        return self.coef_ is not None

    def features(self, textcat_probs: np.ndarray, units: Sequence[Doc | Span]) -> np.ndarray:
        """Blend inputs: log textcat probabilities (+ lexicon features of ``units``)."""
        probs = np.asarray(textcat_probs, dtype=np.float64).reshape(len(units), len(LABELS))
        parts = [np.log(np.clip(probs, 1e-6, 1.0))]
        if self.use_lexicon:
            parts.append(lexicon_features(units))
        return np.hstack(parts)

    def set_weights(self, coef: np.ndarray, intercept: np.ndarray) -> None:
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = np.asarray(intercept, dtype=np.float64)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Uncalibrated class scores of blend ``features`` (before the temperature)."""
        assert self.coef_ is not None and self.intercept_ is not None
        return features @ self.coef_.T + self.intercept_

    def combine(self, textcat_probs: np.ndarray, units: Sequence[Doc | Span]) -> np.ndarray:
        """Blended, temperature-scaled ``(n, 3)`` probabilities in :data:`LABELS` order."""
        textcat_probs = np.asarray(textcat_probs, dtype=np.float64)
        if not self.is_fitted or len(units) == 0:
            return textcat_probs.reshape(len(units), len(LABELS))
        return softmax(self.logits(self.features(textcat_probs, units)) / self.temperature)

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 256) -> Iterator[Doc]:
        batch: list[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._annotate(batch)
                batch = []
        if batch:
            yield from self._annotate(batch)

    def _annotate(self, docs: list[Doc]) -> list[Doc]:
        probs = [[doc.cats.get(label, 0.0) for label in LABELS] for doc in docs]
        for doc, row in zip(docs, self.combine(probs, docs), strict=True):
            doc.cats = {label: float(p) for label, p in zip(LABELS, row, strict=True)}
        return docs

    def _state(self) -> dict[str, Any]:
        return {
            "coef": None if self.coef_ is None else self.coef_.tolist(),
            "intercept": None if self.intercept_ is None else self.intercept_.tolist(),
            "temperature": self.temperature,
            "calibration": self.calibration,
            "features": ["logp_" + label for label in LABELS]
            + (list(FEATURE_NAMES) if self.use_lexicon else []),
            # The word lists are read from the installed packages, not saved: their hash
            # makes a changed list change the model's fingerprint.
            "lexicon": lexicon_digest() if self.use_lexicon else None,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        expected = self._state()["features"]
        if state.get("coef") is not None and state.get("features", expected) != expected:
            from spm_ml.errors import SchemaError

            raise SchemaError(
                "This sentiment model was trained with other lexicon features "
                f"({len(state['features'])} blend inputs, this spm-ml computes "
                f"{len(expected)}); retrain it with `spm-ml train sentiment`.",
                problems=[],
            )
        if state.get("coef") is not None:
            self.set_weights(np.asarray(state["coef"]), np.asarray(state["intercept"]))
        self.temperature = float(state.get("temperature", 1.0))
        self.calibration = state.get("calibration")
        saved = state.get("lexicon")
        if saved is not None and self.use_lexicon and saved != lexicon_digest():
            logger.warning(
                "The sentiment blend was fitted with other word lists (%s, now %s); "
                "its scores may differ from those it was evaluated with.",
                saved,
                lexicon_digest(),
            )

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return json.dumps(self._state()).encode("utf-8")

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> SentimentBlend:
        self._load_state(json.loads(data))
        return self

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "blend.json").write_text(json.dumps(self._state(), indent=1), encoding="utf-8")

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> SentimentBlend:
        self._load_state(json.loads((Path(path) / "blend.json").read_text(encoding="utf-8")))
        return self


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    logits = np.asarray(logits, dtype=np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


@Language.factory(
    "spm_ml_sentiment_blend",
    default_config={
        "negative_weight": 3.0,
        "neutral_weight": 0.1,
        "use_lexicon": True,
        "whole_text_max_tokens": 60,
    },
)
def create_sentiment_blend(
    nlp: Language,
    name: str,
    negative_weight: float,
    neutral_weight: float,
    use_lexicon: bool,
    whole_text_max_tokens: int,
) -> SentimentBlend:
    """Config factory for :class:`SentimentBlend`."""
    return SentimentBlend(name, negative_weight, neutral_weight, use_lexicon, whole_text_max_tokens)
