"""Map the label values of a user's table onto the three sentiment classes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from spm_ml.errors import SchemaError, TrainingError
from spm_ml.nlp.components import LABELS

__all__ = ["LABEL_SYNONYMS", "map_labels"]

LABEL_SYNONYMS: Mapping[str, str] = {
    **dict.fromkeys(["negative", "neg", "n", "-1", "-1.0", "bad", "-"], "negative"),
    **dict.fromkeys(["neutral", "neu", "0", "0.0", "none", "objective"], "neutral"),
    **dict.fromkeys(["positive", "pos", "p", "1", "1.0", "+1", "good", "+"], "positive"),
}
"""Accepted spellings (case-insensitive): names, abbreviations and the -1/0/1 convention."""


def map_labels(
    values: Iterable[object], column: str = "label", extra: Mapping[str, str] | None = None
) -> list[str]:
    """Return ``values`` as class names, or raise listing every unknown value.

    ``extra`` adds project-specific spellings (e.g. ``{"churned": "negative"}``).  A table
    whose labels cover fewer than two classes cannot train a classifier and raises
    :class:`~spm_ml.errors.TrainingError`.
    """
    table = {**LABEL_SYNONYMS, **{k.lower(): v for k, v in (extra or {}).items()}}
    mapped: list[str] = []
    unknown: Counter[str] = Counter()
    for value in values:
        key = str(value).strip().lower()
        label = table.get(key)
        if label is None:
            unknown[repr(value)] += 1
        else:
            mapped.append(label)
    if unknown and (len(unknown) > 20 or max(len(v) for v in unknown) > 24):
        # Many or long values: probably the text column. Never echo email text.
        raise SchemaError(
            f"Column {column!r} has {len(unknown)} distinct values that are not sentiment "
            f"classes (too many or too long to be labels: is it the text column?). Use one of "
            f"{list(LABELS)} (or neg/neu/pos, -1/0/1).",
            problems=[],
        )
    if unknown:
        shown = ", ".join(f"{v} ({n} rows)" for v, n in unknown.most_common(10))
        raise SchemaError(
            f"Column {column!r} has label values that are not sentiment classes: {shown}. "
            f"Use one of {list(LABELS)} (or neg/neu/pos, -1/0/1), or map them before training.",
            problems=list(unknown),
        )
    classes = sorted(set(mapped))
    if len(classes) < 2:
        raise TrainingError(
            f"Column {column!r} contains only the class {classes} ({len(mapped)} rows); "
            f"training needs at least two of {list(LABELS)}."
        )
    return mapped
