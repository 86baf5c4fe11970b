"""Decide cheaply whether a text is English enough for an English sentiment model.

The model was trained on English only; on other languages its output is a guess, so such
texts get ``is_english=False`` and missing scores instead.  A stop-word heuristic is enough
for this flag, runs in microseconds and needs no downloaded language-identification model.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["is_english"]

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_MIN_WORDS = 5
_MIN_ENGLISH_SHARE = 0.15
_MIN_LATIN_SHARE = 0.7


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    # Function words plus VADER's rated words ("great", "late", "thanks"): telegraphic
    # English ("Great service, late bag") has few function words but many rated words.
    # Contractions split off by spaCy ("n't", "'s") never appear as whole words here.
    rated = SentimentIntensityAnalyzer().lexicon
    return frozenset(w for w in [*STOP_WORDS, *rated] if w.isalpha())


def is_english(text: str) -> bool:
    """Return False when ``text`` is clearly not English.

    Rules: mostly non-Latin letters means not English; with at least five words, English
    function words ("the", "we", "to", ...) and VADER-rated words must make up at least 15%
    of them.  Shorter Latin-script texts ("Thanks!") are given the benefit of the doubt.
    """
    words = _WORD.findall(text)
    if not words:
        return True
    letters = "".join(words)
    if not letters.isascii():
        latin = sum(1 for ch in letters if ch < "\u0250")
        if latin / len(letters) < _MIN_LATIN_SHARE:
            return False
    if len(words) < _MIN_WORDS:
        return True
    known = _english_words()
    sample = words[:200]
    share = sum(1 for w in sample if w.lower() in known) / len(sample)
    return share >= _MIN_ENGLISH_SHARE
