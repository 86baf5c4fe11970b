"""The labelled sentences shipped with the package, used to build the default model.

The sentences were written for spm-ml (Apache-2.0, as the project), in three groups, one
file per group and class (``data/<group>_<label>.txt``):

* ``sales_sentences``: what sales emails say: interest, scheduling, pricing push-back,
  choosing a competitor, cancellations, silence-breaking, legal and procurement steps,
  support complaints;
* ``business_sentences``: business reporting and account talk in both directions: growth
  and decline, budgets, pricing, timing and delays, competitors, escalations, thanks and
  commitments;
* ``opinion_sentences``: short review-like opinions on products, services, places and films,
  so that everyday praise and complaint words are learnt too.

``{slots}`` (names, companies, numbers, days, metrics, directions) are filled
deterministically so the model sees many names and learns to ignore them, and sees "revenue
fell" as well as "costs fell" without a list of every pair.
"""

from __future__ import annotations

import random
import re
from importlib import resources

from spm_ml.nlp.components import LABELS

__all__ = [
    "GROUPS",
    "SLOT_VALUES",
    "corpus_files",
    "labelled_sentences",
    "training_sentences",
]

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
    # Quantities whose rise is good news ...
    "metric": (
        "revenue",
        "sales",
        "bookings",
        "net profit",
        "gross margin",
        "the pipeline",
        "renewals",
        "the win rate",
        "recurring revenue",
        "order volume",
        "market share",
        "customer satisfaction",
        "average deal size",
        "operating income",
        "earnings per share",
    ),
    # ... and quantities whose rise is bad news.
    "cost": (
        "costs",
        "churn",
        "operating expenses",
        "the support backlog",
        "customer complaints",
        "returns",
        "the sales cycle",
        "overdue invoices",
        "the net loss",
        "staff turnover",
    ),
    "up": (
        "grew",
        "rose",
        "increased",
        "climbed",
        "jumped",
        "went up",
        "was up",
        "surged",
        "doubled",
    ),
    "down": (
        "fell",
        "dropped",
        "declined",
        "decreased",
        "shrank",
        "slipped",
        "went down",
        "was down",
        "halved",
    ),
    "pct": ("12%", "3.5%", "20 percent", "40%", "7%", "by a third", "sharply", "slightly"),
    "period": (
        "this quarter",
        "year over year",
        "in the third quarter",
        "last month",
        "compared with last year",
        "in the first half",
        "in {month}",
    ),
    "thing": (
        "the food",
        "the service",
        "the hotel",
        "the phone",
        "the battery",
        "this movie",
        "the acting",
        "the staff",
        "the headset",
        "the app",
        "the room",
        "the plot",
        "the delivery",
        "the sound quality",
        "this product",
        "the flight",
        "the charger",
        "the show",
    ),
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


GROUPS: tuple[str, ...] = ("sales_sentences", "business_sentences", "opinion_sentences")
"""The sentence groups (file name prefixes), in build order."""


def corpus_files() -> dict[str, str]:
    """The raw text of every sentence file, by file name (also fingerprints the model)."""
    root = resources.files("spm_ml.nlp") / "data"
    return {
        f"{group}_{label}.txt": (root / f"{group}_{label}.txt").read_text(encoding="utf-8")
        for group in GROUPS
        for label in LABELS
    }


def _fill(line: str, rng: random.Random) -> str:
    """Fill ``{slots}``, including slots inside slot values ("in {month}")."""
    while _SLOT.search(line):
        line = _SLOT.sub(lambda m: rng.choice(SLOT_VALUES[m.group(1)]), line, count=1)
    return line


def labelled_sentences(seed: int = 13) -> tuple[list[str], list[str], list[str]]:
    """Return ``(texts, labels, groups)``: every shipped sentence, templated ones in 3
    variants, plus every second sentence again with a courtesy line (:data:`POLITE_LINES`).

    ``groups`` names the file group of each text, so that a model can be evaluated on a
    group it was not trained on (how the default architecture was chosen).
    """
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    groups: list[str] = []
    for name, raw in corpus_files().items():
        group, label = name.removesuffix(".txt").rsplit("_", 1)
        for line in raw.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            variants = _VARIANTS if _SLOT.search(line) else 1
            for _ in range(variants):
                texts.append(_fill(line, rng))
                labels.append(label)
                groups.append(group)
    # Short emails: a sentence with a courtesy line before or after keeps its label.
    for index in range(0, len(texts), 2):
        polite = rng.choice(POLITE_LINES)
        text = texts[index]
        composed = f"{polite} {text}" if rng.random() < 0.3 else f"{text} {polite}"
        texts.append(composed)
        labels.append(labels[index])
        groups.append(groups[index])
    return texts, labels, groups


def training_sentences(seed: int = 13) -> tuple[list[str], list[str]]:
    """Return ``(texts, labels)`` of :func:`labelled_sentences` (the default model's data)."""
    texts, labels, _ = labelled_sentences(seed)
    return texts, labels
