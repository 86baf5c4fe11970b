"""The labelled sentences shipped with the package, used to build the default model.

The sentences were written for spm-ml (Apache-2.0, as the project) to cover what sales
emails say: interest, scheduling, pricing push-back, choosing a competitor, cancellations,
silence-breaking, legal and procurement steps, support complaints.  ``{slots}`` (names,
companies, numbers, days) are filled deterministically so the model sees many names and
learns to ignore them.
"""

from __future__ import annotations

import random
import re
from importlib import resources

from spm_ml.nlp.components import LABELS

__all__ = ["SLOT_VALUES", "corpus_files", "training_sentences"]

_COMPANIES = (
    "Acme",
    "Northwind Traders",
    "Globex",
    "Initech Systems Inc",
    "Contoso",
    "Vendorly",
    "Blue Ridge Partners",
    "QuotaCo",
    "Orbit Data Group Ltd",
)

SLOT_VALUES: dict[str, tuple[str, ...]] = {
    "name": (
        "Priya",
        "John",
        "Mei",
        "Carlos",
        "Fatima",
        "Olu",
        "Sven",
        "Ana",
        "Mary Ann",
        "Keiko",
        "José Luis",
        "Dmitri",
    ),
    # One pool for both: if competitors had their own names, the model would learn that a
    # name is negative, breaking invariance to company names.
    "company": _COMPANIES,
    "competitor": _COMPANIES,
    "product": ("the platform", "SPM Cloud", "the quota planner", "the analytics add-on"),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "next week"),
    "month": ("January", "March", "June", "September", "October", "December"),
    "city": ("London", "Chicago", "Austin", "Berlin", "Toronto", "Singapore"),
    "n": ("2", "3", "5", "10", "25", "120"),
}
"""Values the ``{slot}`` placeholders are filled with."""

_SLOT = re.compile(r"\{(\w+)\}")
_VARIANTS = 3

POLITE_LINES: tuple[str, ...] = (
    "Thanks for all your help!",
    "Thanks for your time.",
    "Thank you for understanding.",
    "We appreciate your effort.",
    "Best of luck with everything.",
    "Have a great weekend!",
    "Thanks again.",
    "Hope you are well.",
    "Happy to chat if you have questions.",
)
"""Courtesy lines appended to sentences to make short emails that keep the sentence's label:
the model must learn that politeness does not change what an email says."""


def corpus_files() -> dict[str, str]:
    """The raw text of the three sentence files, by label (also fingerprints the model)."""
    root = resources.files("spm_ml.nlp") / "data"
    return {
        label: (root / f"sales_sentences_{label}.txt").read_text(encoding="utf-8")
        for label in LABELS
    }


def training_sentences(seed: int = 13) -> tuple[list[str], list[str]]:
    """Return ``(texts, labels)``: every shipped sentence, templated ones in 3 variants,
    plus every second sentence again with a courtesy line (:data:`POLITE_LINES`)."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    for label, raw in corpus_files().items():
        for line in raw.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not _SLOT.search(line):
                texts.append(line)
                labels.append(label)
                continue
            for _ in range(_VARIANTS):
                texts.append(_SLOT.sub(lambda m: rng.choice(SLOT_VALUES[m.group(1)]), line))
                labels.append(label)
    # Short emails: a sentence with a courtesy line before or after keeps its label.
    for index in range(0, len(texts), 2):
        polite = rng.choice(POLITE_LINES)
        text = texts[index]
        composed = f"{polite} {text}" if rng.random() < 0.3 else f"{text} {polite}"
        texts.append(composed)
        labels.append(labels[index])
    return texts, labels
