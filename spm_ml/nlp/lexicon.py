"""Lexicon knowledge as numeric features: VADER scores, polar word counts, negations.

VADER (MIT licence, shipped in the ``vaderSentiment`` wheel) knows ~7,500 rated words plus
rules for negation, intensifiers and "but".  A classifier trained on a few hundred sales
sentences cannot learn that vocabulary, so the lexicon's view of every sentence is fed to
the blending step next to the text classifier's probabilities.  The analyser is created on
first use, never at import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["FEATURE_NAMES", "lexicon_features", "vader_compound"]

FEATURE_NAMES: tuple[str, ...] = (
    "vader_neg",
    "vader_neu",
    "vader_pos",
    "vader_compound",
    "compound_pos",
    "compound_neg",
    "n_pos_words",
    "n_neg_words",
    "max_valence",
    "min_valence",
    "negations",
    "question",
    "exclamation",
)
"""Order of the columns :func:`lexicon_features` returns (stored with fitted blends)."""

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


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


@lru_cache(maxsize=1)
def _negations() -> frozenset[str]:
    from vaderSentiment.vaderSentiment import NEGATE

    return frozenset(NEGATE) | {"no", "never", "nothing", "nobody", "cannot", "without"}


def vader_compound(text: str) -> float:
    """VADER's compound score in [-1, 1] (the reference the benchmarks compare against)."""
    return float(_analyzer().polarity_scores(text)["compound"])


_NO_SENTIMENT = {"neg": 0.0, "neu": 1.0, "pos": 0.0, "compound": 0.0}


def _row(text: str) -> list[float]:
    analyzer = _analyzer()
    lexicon = analyzer.lexicon
    lowered = text.lower()
    words = _WORD.findall(lowered)
    valences = [lexicon[w] for w in words if w in lexicon]
    if valences or not text.isascii() or any(t in lexicon for t in lowered.split()):
        scores = analyzer.polarity_scores(text)
    else:
        # No rated word or emoticon: VADER's answer is fixed, skip its per-word rules.
        scores = _NO_SENTIMENT
    negations = _negations()
    compound = scores["compound"]
    return [
        scores["neg"],
        scores["neu"],
        scores["pos"],
        compound,
        max(compound, 0.0),
        max(-compound, 0.0),
        min(sum(1 for v in valences if v > 0), 3) / 3.0,
        min(sum(1 for v in valences if v < 0), 3) / 3.0,
        max(valences, default=0.0) / 4.0,
        min(valences, default=0.0) / 4.0,
        min(sum(1 for w in words if w in negations), 3) / 3.0,
        1.0 if "?" in text else 0.0,
        1.0 if "!" in text else 0.0,
    ]


def lexicon_features(texts: Sequence[str]) -> np.ndarray:
    """Return a ``(len(texts), len(FEATURE_NAMES))`` float array of lexicon features.

    All features are bounded (roughly [-1, 1]) so one linear blend fits short and long
    sentences alike; counts are capped rather than divided by length, so extra neutral
    words (a long company name) do not dilute them.
    """
    if not texts:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float64)
    return np.asarray([_row(t) for t in texts], dtype=np.float64)
