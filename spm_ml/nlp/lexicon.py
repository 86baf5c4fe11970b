"""Lexicon knowledge as numeric features, computed on token arrays for whole batches at once.

Two word lists, both shippable:

* VADER's ~7,500 rated words (MIT licence, read from the ``vaderSentiment`` wheel);
* ``data/domain_lexicon.txt``, written for spm-ml (Apache-2.0): business and product words
  VADER does not rate ("outage", "overdue", "refund", "churn", "seamless", "flimsy").
  Direction verbs ("grew", "fell", "cut") are deliberately absent: "revenue grew" and
  "costs grew" point opposite ways, which the text classifier learns from the shipped
  sentences; a word list cannot.

A classifier trained on a few thousand sentences cannot learn that vocabulary, so the
lists' view of every unit is fed to the blending step next to the classifier's
probabilities.  The scoring follows VADER's main rules (valence sum, a negation in the three
previous tokens flips and damps, "but" shifts weight to what follows, a booster word
strengthens the next, "!" amplifies, ``s / sqrt(s^2 + 15)`` normalisation) but reads the
spaCy token arrays of the whole batch with numpy instead of re-tokenising every sentence in
Python: VADER itself took half of the scoring time.  Tables are built on first use, never at
import.  :func:`vader_compound` is the unmodified VADER score, the benchmarks' reference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span

__all__ = [
    "FEATURE_NAMES",
    "domain_lexicon",
    "lexicon_digest",
    "lexicon_features",
    "vader_compound",
]

FEATURE_NAMES: tuple[str, ...] = (
    "vader_pos_part",
    "vader_neg_part",
    "vader_pos_share",
    "vader_neg_share",
    "n_pos_words",
    "n_neg_words",
    "max_valence",
    "min_valence",
    "negations",
    "domain_compound",
    "domain_pos_part",
    "domain_neg_part",
    "question",
    "direction",
)
"""Order of the columns :func:`lexicon_features` returns (stored with fitted blends).  "!"
has no column of its own: it amplifies the compound score, as in VADER; a flag alone
learnt the courtesy lines of the training text ("Have a great weekend!") instead."""

# Direction of change times what changes: "revenue grew" and "costs fell" are good news,
# "revenue fell" and "costs grew" bad news.  Neither a word list nor a bag of words can say
# so (the sign is in the pair), hence one feature for the pair within a unit.
UP_WORDS: tuple[str, ...] = (
    "grew", "grow", "grows", "growing", "grown", "rose", "rise", "rises", "rising", "risen",
    "increased", "increase", "increases", "increasing", "climbed", "climbing", "jumped",
    "surged", "soared", "doubled", "tripled", "higher", "expanded", "gained", "raised",
    "boosted", "up", "widened", "accelerated",
)  # fmt: skip
DOWN_WORDS: tuple[str, ...] = (
    "fell", "fall", "falls", "falling", "fallen", "dropped", "drop", "drops", "declined",
    "decline", "declining", "decreased", "decrease", "decreasing", "shrank", "shrink",
    "shrinking", "slipped", "down", "halved", "lower", "lowered", "cut", "cuts", "reduced",
    "reduce", "slashed", "plunged", "slumped", "tumbled", "lost", "narrowed", "eased",
)  # fmt: skip
GOOD_QUANTITIES: tuple[str, ...] = (
    "revenue", "revenues", "sales", "bookings", "profit", "profits", "margin", "margins",
    "pipeline", "renewals", "orders", "income", "earnings", "share", "satisfaction", "budget",
    "budgets", "funding", "demand", "productivity", "retention", "ebitda", "arr", "mrr",
    "dividend", "customers", "users", "traffic", "conversion", "nps", "bookings", "quota",
    "attainment", "adoption", "usage", "outlook", "forecast", "growth", "volume", "volumes",
)  # fmt: skip
BAD_QUANTITIES: tuple[str, ...] = (
    "costs", "cost", "expenses", "expense", "churn", "loss", "losses", "complaints", "returns",
    "backlog", "debt", "prices", "price", "fees", "delays", "turnover", "defects", "tickets",
    "deficit", "inflation", "unemployment", "spending", "attrition", "overheads", "risk",
)  # fmt: skip

_NEGATION_SCALAR = -0.74  # VADER's N_SCALAR
_BOOSTER_STEP = 0.293  # VADER's B_INCR
_EXCLAMATION_STEP = 0.292  # VADER's amplifier per "!" (at most 4)
_ALPHA = 15.0  # VADER's normalisation constant
_EXTRA_NEGATIONS = ("no", "never", "nothing", "nobody", "cannot", "without", "none", "neither")


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment import vaderSentiment as vs

    class FastAnalyzer(vs.SentimentIntensityAnalyzer):
        """VADER with its per-character emoji pass skipped for ASCII text (no emoji there).

        The rest of ``polarity_scores`` is VADER 3.3.2's own (MIT licence) with one shortcut
        (an unrated word contributes 0 without the per-word rule calls), so scores are
        identical; the two changes halve VADER's time on long emails.
        """

        def polarity_scores(self, text: str) -> dict[str, float]:
            if not text.isascii():
                return super().polarity_scores(text)
            sentitext = vs.SentiText(text.strip())
            lexicon = self.lexicon
            sentiments: list[float] = []
            words = sentitext.words_and_emoticons
            for i, item in enumerate(words):
                lowered = item.lower()
                if (
                    lowered not in lexicon  # VADER appends 0 for unrated words
                    or lowered in vs.BOOSTER_DICT
                    or (i < len(words) - 1 and lowered == "kind" and words[i + 1].lower() == "of")
                ):
                    sentiments.append(0)
                    continue
                sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
            sentiments = self._but_check(words, sentiments)
            return self.score_valence(sentiments, text.strip())

    return FastAnalyzer()


def vader_compound(text: str) -> float:
    """VADER's compound score in [-1, 1] (the reference the benchmarks compare against)."""
    return float(_analyzer().polarity_scores(text)["compound"])


@lru_cache(maxsize=1)
def domain_lexicon() -> dict[str, float]:
    """The shipped business and product word list: word -> valence in [-4, 4]."""
    raw = (resources.files("spm_ml.nlp") / "data" / "domain_lexicon.txt").read_text("utf-8")
    table: dict[str, float] = {}
    for line in raw.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, value = line.split("\t")
        table[word.strip().lower()] = float(value)
    return table


@dataclass(frozen=True)
class _HashTable:
    """Sorted spaCy string hashes with one value each: a vectorised dict lookup."""

    keys: np.ndarray
    values: np.ndarray

    @classmethod
    def build(cls, mapping: dict[str, float]) -> _HashTable:
        from spacy.strings import get_string_id

        pairs = sorted((get_string_id(w), v) for w, v in mapping.items())
        keys = np.asarray([k for k, _ in pairs], dtype=np.uint64)
        keys, first = np.unique(keys, return_index=True)
        values = np.asarray([v for _, v in pairs], dtype=np.float64)[first]
        return cls(keys, values)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        if len(self.keys) == 0 or len(hashes) == 0:
            return np.zeros(len(hashes))
        idx = np.minimum(np.searchsorted(self.keys, hashes), len(self.keys) - 1)
        return np.where(self.keys[idx] == hashes, self.values[idx], 0.0)


@dataclass(frozen=True)
class _Tables:
    vader: _HashTable
    domain: _HashTable
    negation: _HashTable
    booster: _HashTable
    but: _HashTable
    exclamation: _HashTable
    question: _HashTable
    change: _HashTable
    quantity: _HashTable


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE

    vader = {w: float(v) for w, v in _analyzer().lexicon.items()}
    negations = {w: 1.0 for w in [*NEGATE, *_EXTRA_NEGATIONS]}
    boosters = {w: float(np.sign(v)) for w, v in BOOSTER_DICT.items() if " " not in w}
    return _Tables(
        vader=_HashTable.build(vader),
        domain=_HashTable.build(domain_lexicon()),
        negation=_HashTable.build(negations),
        booster=_HashTable.build(boosters),
        but=_HashTable.build({"but": 1.0, "however": 1.0}),
        exclamation=_HashTable.build({"!": 1.0, "!!": 2.0, "!!!": 3.0, "!!!!": 4.0}),
        question=_HashTable.build({"?": 1.0, "??": 1.0, "???": 1.0, "?!": 1.0, "!?": 1.0}),
        change=_HashTable.build(
            {**dict.fromkeys(UP_WORDS, 1.0), **dict.fromkeys(DOWN_WORDS, -1.0)}
        ),
        quantity=_HashTable.build(
            {**dict.fromkeys(GOOD_QUANTITIES, 1.0), **dict.fromkeys(BAD_QUANTITIES, -1.0)}
        ),
    )


def lexicon_digest() -> str:
    """Hash of both word lists: saved with a fitted blend, so it enters the model fingerprint
    (a changed list changes the scores of unchanged weights)."""
    digest = hashlib.sha256()
    for mapping in (_analyzer().lexicon, domain_lexicon()):
        for word, value in sorted(mapping.items()):
            digest.update(f"{word}\t{value}\n".encode())
    digest.update(repr((UP_WORDS, DOWN_WORDS, GOOD_QUANTITIES, BAD_QUANTITIES)).encode())
    return digest.hexdigest()[:16]


def _token_arrays(units: Sequence[Doc | Span]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated NORM hashes and IS_PUNCT flags of ``units``, plus each unit's length."""
    from spacy.attrs import IS_PUNCT, NORM
    from spacy.tokens import Span

    cache: dict[int, np.ndarray] = {}
    pieces: list[np.ndarray] = []
    lengths = np.zeros(len(units), dtype=np.int64)
    for i, unit in enumerate(units):
        if isinstance(unit, Span):
            doc, start, end = unit.doc, unit.start, unit.end
        else:
            doc, start, end = unit, 0, len(unit)
        arr = cache.get(id(doc))
        if arr is None:
            arr = cache[id(doc)] = doc.to_array([NORM, IS_PUNCT]).reshape(-1, 2)
        pieces.append(arr[start:end])
        lengths[i] = end - start
    if not pieces or lengths.sum() == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool), lengths
    both = np.concatenate(pieces)
    return both[:, 0].astype(np.uint64), both[:, 1].astype(bool), lengths


def _shift(values: np.ndarray, k: int, pos: np.ndarray) -> np.ndarray:
    """``values`` of the token ``k`` places earlier in the same unit (0 at the unit start)."""
    out = np.zeros_like(values)
    out[k:] = values[:-k] if k < len(values) else out[k:]
    out[pos < k] = 0
    return out


def _normalise(total: np.ndarray) -> np.ndarray:
    return total / np.sqrt(total * total + _ALPHA)


def lexicon_features(units: Sequence[Doc | Span]) -> np.ndarray:
    """Return a ``(len(units), len(FEATURE_NAMES))`` float array of lexicon features.

    ``units`` are spaCy docs or sentence spans from the pipeline's tokenizer (NORM is the
    lower-case form, "n't" reads "not").  All features are bounded (roughly [-1, 1]) so one
    linear blend fits short and long sentences alike; counts are capped rather than divided
    by length, so extra neutral words (a long company name) do not dilute them.
    """
    n = len(units)
    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float64)
    if n == 0:
        return out
    tables = _tables()
    norms, punct, lengths = _token_arrays(units)
    if len(norms) == 0:
        return out
    unit = np.repeat(np.arange(n), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(len(norms)) - starts[unit]

    def per_unit(values: np.ndarray) -> np.ndarray:
        return np.bincount(unit, weights=np.asarray(values, dtype=np.float64), minlength=n)

    negation = tables.negation.lookup(norms)
    negated = (_shift(negation, 1, pos) + _shift(negation, 2, pos) + _shift(negation, 3, pos)) > 0
    booster = _shift(tables.booster.lookup(norms), 1, pos)
    is_but = tables.but.lookup(norms)
    earlier = np.cumsum(is_but) - is_but  # "but"s before each token in the whole batch
    seen_before = earlier - earlier[starts[unit]]  # ... and in its own unit
    has_but = per_unit(is_but)[unit] > 0
    but_scale = np.where(seen_before > 0, 1.5, np.where(has_but & (is_but == 0), 0.5, 1.0))

    def scored(values: np.ndarray) -> np.ndarray:
        boosted = values + np.sign(values) * _BOOSTER_STEP * booster * (values != 0)
        return np.where(negated, boosted * _NEGATION_SCALAR, boosted) * but_scale

    vader = scored(tables.vader.lookup(norms))
    domain = scored(tables.domain.lookup(norms))
    bang = np.minimum(per_unit(tables.exclamation.lookup(norms)), 4)
    question = per_unit(tables.question.lookup(norms)) > 0

    total = per_unit(vader)
    total = total + np.sign(total) * bang * _EXCLAMATION_STEP
    compound = _normalise(total)
    words = ~punct
    pos_sum = per_unit(np.where(vader > 0, vader + 1, 0.0))
    neg_sum = per_unit(np.where(vader < 0, 1 - vader, 0.0))
    neutral = per_unit(words & (vader == 0))
    mass = np.maximum(pos_sum + neg_sum + neutral, 1e-9)
    max_v = np.zeros(n)
    min_v = np.zeros(n)
    np.maximum.at(max_v, unit, vader)
    np.minimum.at(min_v, unit, vader)
    domain_total = per_unit(domain)
    domain_compound = _normalise(domain_total)

    # The compound score is its positive part minus its negative part: the parts alone
    # avoid two exactly collinear columns in the blend.
    out[:, 0] = np.maximum(compound, 0.0)
    out[:, 1] = np.maximum(-compound, 0.0)
    out[:, 2] = pos_sum / mass
    out[:, 3] = neg_sum / mass
    out[:, 4] = np.minimum(per_unit(vader > 0), 3) / 3.0
    out[:, 5] = np.minimum(per_unit(vader < 0), 3) / 3.0
    out[:, 6] = max_v / 4.0
    out[:, 7] = min_v / 4.0
    out[:, 8] = np.minimum(per_unit(negation), 3) / 3.0
    out[:, 9] = domain_compound
    out[:, 10] = np.minimum(per_unit(domain > 0), 3) / 3.0
    out[:, 11] = np.minimum(per_unit(domain < 0), 3) / 3.0
    out[:, 12] = question
    # A negated change reverses ("revenue did not grow"); the unit's net direction times
    # its net quantity sign, each clipped to [-1, 1].
    change = tables.change.lookup(norms)
    change = np.where(negated, -change, change)
    out[:, 13] = np.clip(per_unit(change), -1, 1) * np.clip(
        per_unit(tables.quantity.lookup(norms)), -1, 1
    )
    return out
