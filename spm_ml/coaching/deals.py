"""Deal coaching: the drivers of a deal's win probability in words, and the levers that
would raise it most, ranked by the model's own re-scored probability (a what-if).

A lever's uplift is the deal-win model's probability for the deal's feature row with the
lever's changes applied (``catalogue.toml``), minus its probability as it stands, in
percentage points.  Every lever of every deal is scored in one call of the model, the same
call that scores the deals themselves (``CalibratedGBM.score_and_explain``): no per-lever
loop, and the what-if means exactly what the score means.

The uplift is the model's estimate, not a promise: the model learned what deals that had,
say, more meetings went on to do, not what a meeting causes.  ``benchmarks/coaching_proof.py``
checks, in the simulated organisation where the causes are known, that following the top
recommendation raises the win rate more than a random lever or the top driver does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from spm_ml.coaching.levers import Catalogue, Lever, catalogue
from spm_ml.errors import SpmMlError
from spm_ml.features.deals import Columns

UPLIFT_NOTE = (
    "Uplift is the model's estimate of how the win probability would change, learned from "
    "past deals; it is not a promise of what the action will do. Read it as a ranking: "
    "where the true effects are known (the simulated organisation), following the top "
    "recommendation gained a quarter to a half of the estimate."
)
MIN_UPLIFT_PP = 0.1
"""Recommendations below a tenth of a point are noise, not advice."""


class WhatIfError(SpmMlError, ValueError):
    """A what-if names a feature the model does not read, or gives a value it cannot use."""

    status = 422

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Recommendation:
    """A lever for one deal and what the model expects it to do."""

    lever: str
    sentence: str
    probability: float
    """The deal's win probability with the lever applied."""
    uplift_pp: float
    """``probability`` minus the current probability, in percentage points."""

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, as ``dataclasses.asdict`` gives them (its recursive deep
        copy cost a tenth of a batch chunk's time, for four plain values)."""
        return dict(vars(self))


@dataclass(frozen=True)
class DealCoaching:
    """One deal's probability, drivers in words, and up to three recommendations."""

    deal_id: str
    as_of: pd.Timestamp
    probability: float
    drivers: list[dict[str, Any]]
    """Top drivers, largest |SHAP| first: feature, words, value, shap, direction,
    actionable, text."""
    recommendations: list[Recommendation] = field(default_factory=list)
    context: list[dict[str, Any]] = field(default_factory=list)
    """The drivers no lever changes (industry, amount...): explain, never advise."""
    note: str = UPLIFT_NOTE


def coach_deals(
    model,
    features: pd.DataFrame | Columns,
    *,
    top_k: int = 3,
    max_recommendations: int = 3,
    levers: Catalogue | None = None,
) -> list[DealCoaching]:
    """Drivers and ranked recommendations for each row of ``features``.

    Parameters
    ----------
    model
        A fitted deal-win model (``CalibratedGBM``): ``score_and_explain`` and
        ``feature_names_in_``.
    features
        Deal feature rows as :class:`~spm_ml.scoring.DealScorer` builds them (a frame or
        columns, with ``deal_id`` and ``as_of``).
    top_k
        Drivers to explain per deal.
    max_recommendations
        At most this many levers per deal, best first; only levers the model expects to
        raise the probability (by at least :data:`MIN_UPLIFT_PP`) are advice.
    """
    book = levers or catalogue()
    columns = _columns(features)
    n = len(columns["deal_id"])
    usable = _usable_levers(book, model)
    rows, which = _lever_rows(columns, usable, book, model)
    # the deals and every (deal, lever) row, scored in one call; drivers for the deals only
    probability, drivers = model.score_and_explain(_stack(columns, rows, model), top_k, explain=n)
    base, rescored = probability[:n], probability[n:]
    # each deal's (deal, lever) rows, in row order: one sort, not a scan per deal
    by_deal = np.argsort(which[0], kind="stable")
    ends = np.searchsorted(which[0][by_deal], np.arange(n), side="right")
    results = []
    for i in range(n):
        words = [_in_words(d, book) for d in drivers[i]]
        recommendations = []
        for position in by_deal[(ends[i - 1] if i else 0) : ends[i]]:
            lever = usable[which[1][position]]
            uplift = 100.0 * (rescored[position] - base[i])
            if uplift >= MIN_UPLIFT_PP:
                recommendations.append(
                    Recommendation(
                        lever.name, lever.sentence, float(rescored[position]), float(uplift)
                    )
                )
        recommendations.sort(key=lambda r: -r.uplift_pp)
        results.append(
            DealCoaching(
                deal_id=str(columns["deal_id"][i]),
                as_of=pd.Timestamp(columns["as_of"][i]),
                probability=float(base[i]),
                drivers=words,
                recommendations=recommendations[:max_recommendations],
                context=[d for d in words if not d["actionable"]],
            )
        )
    return results


def what_if(
    model,
    features: pd.DataFrame | Columns,
    changes: Sequence[Mapping[str, Any]],
    *,
    top_k: int = 3,
    levers: Catalogue | None = None,
) -> tuple[np.ndarray, np.ndarray, list[list[dict[str, Any]]]]:
    """Each row re-scored with its own changes (``{feature: new value}``), in one call.

    Returns the current probabilities, the changed ones, and the changed rows' drivers in
    words.  Shares (``catalogue.toml [shares]``) follow their parts unless set themselves.
    Raises :class:`WhatIfError` naming a feature the model does not read, or a category
    value that is not text; an unseen category is allowed (scored as training scored
    unseen values).
    """
    book = levers or catalogue()
    columns = _columns(features)
    n = len(columns["deal_id"])
    if len(changes) != n:
        raise WhatIfError(f"{len(changes)} sets of changes for {n} deals", "changes")
    names = set(model.feature_names_in_)
    # only the columns a change touches are copied (as objects: a change may set None)
    touched = {feature for change in changes for feature in change} & names
    changed = dict(columns)
    for feature in touched:
        changed[feature] = np.array(columns[feature], dtype=object, copy=True)
    for i, change in enumerate(changes):
        for feature, value in change.items():
            if feature not in names:
                raise WhatIfError(
                    f"the model reads no feature {feature!r} (see GET /v1/deals/features or "
                    "the model card)",
                    f"{i}.changes.{feature}",
                )
            if feature in model.categories_:
                if value is not None and not isinstance(value, str):
                    raise WhatIfError(f"{feature} is a category: send text", f"{i}.{feature}")
            elif value is not None and not _finite_number(value):
                raise WhatIfError(f"{feature} must be a finite number", f"{i}.{feature}")
            changed[feature][i] = value
    changed.update(_numeric({feature: changed[feature] for feature in touched}, model))
    for share in book.shares:
        if share.name in names and all(share.name not in c for c in changes):
            changed[share.name] = _share(changed, share.numerator, share.other)
    probability, drivers = model.score_and_explain(_stack(columns, [changed], model), top_k)
    return (
        probability[:n],
        probability[n:],
        [[_in_words(d, book) for d in row] for row in drivers[n:]],
    )


# -- internals ------------------------------------------------------------------------------
def _columns(features: pd.DataFrame | Columns) -> Columns:
    if isinstance(features, pd.DataFrame):
        return {name: features[name].to_numpy() for name in features.columns}
    return {name: np.asarray(values) for name, values in features.items()}


def _usable_levers(book: Catalogue, model) -> list[Lever]:
    """Levers that move at least one feature this model reads."""
    names = set(model.feature_names_in_)
    return [lever for lever in book.levers.values() if names & set(lever.changes)]


def _lever_rows(
    columns: Columns, usable: list[Lever], book: Catalogue, model
) -> tuple[list[Columns], tuple[np.ndarray, np.ndarray]]:
    """For each lever, the rows of the deals it applies to with its changes applied.

    Returns the blocks and, for each row of their concatenation, (deal position, lever
    position).
    """
    names = set(model.feature_names_in_)
    stages = columns.get("stage", np.full(len(columns["deal_id"]), None, dtype=object))
    blocks, deal_of, lever_of = [], [], []
    for j, lever in enumerate(usable):
        rows = np.flatnonzero(lever.applies_to(stages))
        if not len(rows):
            continue
        block = {name: values[rows] for name, values in columns.items()}
        for feature, change in lever.changes.items():
            if feature in names:
                block[feature] = change.apply(block[feature])
        for share in book.shares:
            if share.name in names and (set(lever.changes) & {share.numerator, share.other}):
                block[share.name] = _share(block, share.numerator, share.other)
        blocks.append(block)
        deal_of.append(rows)
        lever_of.append(np.full(len(rows), j))
    if not blocks:
        return [], (np.zeros(0, dtype=int), np.zeros(0, dtype=int))
    return blocks, (np.concatenate(deal_of), np.concatenate(lever_of))


def _stack(base: Columns, blocks: list[Columns], model) -> Columns:
    """The model's columns of ``base`` followed by each block's rows (numbers stay float:
    the model's matrix is built from them without a text round trip)."""
    out = {}
    for name in model.feature_names_in_:
        parts = [base[name], *(b[name] for b in blocks)]
        if name in model.categories_:
            out[name] = np.concatenate([np.asarray(p, dtype=object) for p in parts])
        else:
            out[name] = np.concatenate([_floats(p) for p in parts])
    return out


def _floats(values: Any) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "fiub":
        return values.astype("float64", copy=False)
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )


def _share(columns: Columns, numerator: str, other: str) -> np.ndarray:
    top = np.asarray(columns[numerator], dtype="float64")
    total = top + np.asarray(columns[other], dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, top / np.where(total > 0, total, 1.0), np.nan)


def _numeric(columns: Columns, model) -> Columns:
    """Numeric features as floats (a what-if sends JSON numbers and nulls)."""
    return {
        name: values
        if name in model.categories_ or name not in model.feature_names_in_
        else _floats(values)
        for name, values in columns.items()
    }


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.number))
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
    )


def _in_words(driver: dict[str, Any], book: Catalogue) -> dict[str, Any]:
    """A driver with its plain words, whether a rep can act on it, and one sentence."""
    feature = driver["feature"]
    words = book.feature_words(feature)
    value = driver["value"]
    shown = "unknown" if value is None else _shown(value, words)
    effect = "raises" if driver["shap"] > 0 else "lowers"
    return {
        **driver,
        "words": words,
        "actionable": book.is_actionable(feature),
        "text": f"{words[:1].upper()}{words[1:]}: {shown} ({effect} the win probability)",
    }


def _shown(value: Any, words: str = "") -> str:
    """A value as a person reads it: whole days (timestamps make fractions of a day that
    mean nothing to a rep), large numbers with separators, small ones to two decimals."""
    if isinstance(value, float):
        in_days = words.startswith("days") or "(days)" in words
        whole = in_days or abs(value) >= 100 or value == int(value)
        return f"{value:,.0f}" if whole else f"{value:.2f}"
    return str(value)
