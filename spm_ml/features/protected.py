"""Protected attributes: never features of a model about people.

An attrition (or any people) model that learns from age, gender, marital status, race or
religion would rank employees by who they are, not by what they do and how they are paid
and managed; in most jurisdictions acting on such a ranking is discrimination.  So a people
model drops every column named like a protected attribute, even where the source has it,
and a user cannot keep one with ``--keep-col``.  Names are matched word by word
(``MaritalStatus`` -> marital, status), so ``Percentage`` or ``Stage`` are not mistaken for
``age``; ``Over18``-style flags count as age.

The list follows the grounds of the EU Charter of Fundamental Rights (art. 21) and the US
EEOC's protected classes; a column whose name says none of these words but encodes one
(a first name, a photo) cannot be caught by its name: the model card says so.
"""

from __future__ import annotations

from spm_ml.features.tabular import name_tokens

PROTECTED_WORDS: dict[str, str] = {
    "age": "age",
    "birth": "age",
    "birthday": "age",
    "dob": "age",
    "gender": "sex or gender",
    "sex": "sex or gender",
    "marital": "marital status",
    "married": "marital status",
    "race": "race or ethnic origin",
    "racial": "race or ethnic origin",
    "ethnic": "race or ethnic origin",
    "ethnicity": "race or ethnic origin",
    "religion": "religion or belief",
    "religious": "religion or belief",
    "nationality": "nationality",
    "citizenship": "nationality",
    "disability": "disability",
    "disabled": "disability",
    "pregnancy": "pregnancy",
    "pregnant": "pregnancy",
    "orientation": "sexual orientation",
    "veteran": "veteran status",
}
"""Words of a column name that mark a protected attribute, and the ground each stands for."""


def protected_ground(column: str) -> str | None:
    """The protected ground a column's name says (``age`` for ``Age`` or ``Over18``), or None."""
    words = name_tokens(column)
    for word in words:
        if word in PROTECTED_WORDS:
            return PROTECTED_WORDS[word]
    for before, after in zip(words, words[1:], strict=False):
        if before in ("over", "under") and after.isdigit():  # Over18: an age threshold
            return "age"
    return None
