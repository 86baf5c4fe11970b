"""The coaching catalogue: what each deal feature means, and what a rep can do about it.

Everything about levers lives in one file, ``catalogue.toml`` beside this module, so that
adding an action or rewording a sentence is an edit to data, never to code:

* ``[levers.NAME]``: an action a rep can take on a deal: the ``sentence`` shown to people,
  the ``action`` it is in the simulated organisation (``benchmarks/coaching_proof.py``
  applies it there to check that the advice works), the ``stages`` it applies in (all open
  stages when absent), and ``changes``: the features it moves, each by ``"+N"`` (one more
  meeting adds one to every meeting count) or ``"=V"`` (and sets the days since the last
  meeting to 0).  Counts are windowed at ``as_of``: the what-if reads "as if it happened
  now".
* ``[shares.NAME]``: features that are a ratio of two others (``numerator``,
  ``denominator_also``), recomputed after the changes so a what-if row stays coherent.
* ``[features]``: every deal feature's plain words (``custom_*`` fields are described by
  name).  A feature is actionable when some lever changes it; anything else is context.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Literal

import numpy as np

from spm_ml.data.schema import OPEN_STAGES
from spm_ml.errors import SpmMlError

Action = Literal["meeting", "demo", "call", "contact", "outbound_email"]
ACTIONS: tuple[Action, ...] = ("meeting", "demo", "call", "contact", "outbound_email")
"""What a lever is in the simulated organisation (spm_ml/data/simulate/intervention.py)."""

CUSTOM_PREFIX = "custom_"


class CatalogueError(SpmMlError, ValueError):
    """The coaching catalogue is malformed (a test reads it at every run)."""


@dataclass(frozen=True)
class Change:
    """How a lever moves one feature: add ``amount``, or set it to ``amount``."""

    kind: Literal["add", "set"]
    amount: float

    @classmethod
    def parse(cls, text: str, where: str) -> Change:
        text = str(text).strip()
        try:
            if text.startswith("+"):
                return cls("add", float(text[1:]))
            if text.startswith("="):
                return cls("set", float(text[1:]))
        except ValueError:
            pass
        raise CatalogueError(f"{where}: a change is '+N' or '=V', got {text!r}")

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The feature's values after the change (a missing count counts as 0)."""
        values = np.asarray(values, dtype="float64")
        if self.kind == "set":
            return np.full(len(values), self.amount)
        return np.nan_to_num(values, nan=0.0) + self.amount


@dataclass(frozen=True)
class Lever:
    """An action a rep can take on a deal, and the features it moves."""

    name: str
    sentence: str
    action: Action
    changes: Mapping[str, Change]
    stages: tuple[str, ...] = OPEN_STAGES

    def applies_to(self, stages: np.ndarray) -> np.ndarray:
        """Which deals (by current stage) the lever is advice for."""
        return np.isin(np.asarray(stages, dtype=object), list(self.stages))


@dataclass(frozen=True)
class Share:
    """A feature that is ``numerator / (numerator + other)``, recomputed after changes."""

    name: str
    numerator: str
    other: str


@dataclass(frozen=True)
class Catalogue:
    """The parsed ``catalogue.toml``."""

    levers: Mapping[str, Lever]
    shares: tuple[Share, ...]
    words: Mapping[str, str]

    def levers_for_feature(self, feature: str) -> list[Lever]:
        """Levers that change ``feature``, in catalogue order (empty: not actionable)."""
        return [lever for lever in self.levers.values() if feature in lever.changes]

    def is_actionable(self, feature: str) -> bool:
        return feature in self._actionable

    @cached_property
    def _actionable(self) -> frozenset[str]:
        """Every feature some lever changes: asked for each driver of every deal scored."""
        return frozenset(feature for lever in self.levers.values() for feature in lever.changes)

    def feature_words(self, feature: str) -> str:
        """A feature in plain words (``custom_<name>``: the CRM field's name)."""
        if feature in self.words:
            return self.words[feature]
        if feature.startswith(CUSTOM_PREFIX):
            return f"custom CRM field '{feature[len(CUSTOM_PREFIX) :]}'"
        return feature.replace("_", " ")

    def undescribed(self, features: list[str]) -> list[str]:
        """Features with no plain words (a test keeps this empty for the deal model)."""
        return [f for f in features if f not in self.words and not f.startswith(CUSTOM_PREFIX)]


def parse_catalogue(document: Mapping) -> Catalogue:
    """A :class:`Catalogue` from the TOML document's data, checked."""
    levers = {}
    for name, entry in document.get("levers", {}).items():
        where = f"catalogue.toml [levers.{name}]"
        action = entry.get("action")
        if action not in ACTIONS:
            raise CatalogueError(f"{where}: action must be one of {', '.join(ACTIONS)}")
        stages = tuple(entry.get("stages", OPEN_STAGES))
        unknown = [s for s in stages if s not in OPEN_STAGES]
        if unknown:
            raise CatalogueError(f"{where}: stages {unknown} are not open stages")
        changes = {
            feature: Change.parse(text, f"{where} changes.{feature}")
            for feature, text in entry.get("changes", {}).items()
        }
        if not changes or not entry.get("sentence"):
            raise CatalogueError(f"{where}: needs a sentence and at least one change")
        levers[name] = Lever(name, entry["sentence"], action, changes, stages)
    shares = tuple(
        Share(name, entry["numerator"], entry["other"])
        for name, entry in document.get("shares", {}).items()
    )
    return Catalogue(levers=levers, shares=shares, words=dict(document.get("features", {})))


@cache
def catalogue() -> Catalogue:
    """The shipped catalogue (read once per process)."""
    text = resources.files("spm_ml.coaching").joinpath("catalogue.toml").read_text("utf-8")
    return parse_catalogue(tomllib.loads(text))


def levers_for_feature(feature: str) -> list[Lever]:
    """Levers of the shipped catalogue that change ``feature``."""
    return catalogue().levers_for_feature(feature)


def is_actionable(feature: str) -> bool:
    return catalogue().is_actionable(feature)


def feature_words(feature: str) -> str:
    return catalogue().feature_words(feature)


def __getattr__(name: str):
    # ``LEVERS``: the shipped levers by name, in catalogue order, read on first use (no file
    # is read at import time)
    if name == "LEVERS":
        return catalogue().levers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
