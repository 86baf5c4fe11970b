"""``Tables``: the one typed container every pipeline passes around.

A validated sales organisation's history: the nine contract tables as pandas DataFrames
with parsed dtypes (ids as ``string``, times as naive UTC ``datetime64[ns]``, amounts as
``float64``), plus the time the data was extracted (``as_of``).  Features take a ``Tables``
and an ``as_of`` and never mutate it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields

import pandas as pd

from spm_ml.data.schema import TABLE_NAMES, TABLES


@dataclass(frozen=True)
class Tables:
    """The nine contract tables of one organisation.

    ``rep_history`` is optional: left out, it is an empty frame with the contract's columns
    (no manager or team change recorded), so code written for eight tables keeps working.

    ``extracted_at`` is when the data was pulled from the CRM: nothing in it may be dated
    later, and "open" deals are open as of that moment.  It is ``None`` when unknown.

    ``non_feature_columns`` names, per table, extra columns the source says must never become
    features (identifiers, targets, flags that follow the outcome); adapters set it from their
    ``NON_FEATURE_COLUMNS`` and feature code refuses those columns.  Empty for plain folders
    and databases.
    """

    reps: pd.DataFrame
    accounts: pd.DataFrame
    deals: pd.DataFrame
    deal_history: pd.DataFrame
    activities: pd.DataFrame
    emails: pd.DataFrame
    quotas: pd.DataFrame
    compensation: pd.DataFrame
    rep_history: pd.DataFrame = field(default_factory=lambda: _empty("rep_history"))
    extracted_at: pd.Timestamp | None = None
    non_feature_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in TABLE_NAMES:
            if not isinstance(getattr(self, name), pd.DataFrame):
                raise TypeError(f"Tables.{name} must be a pandas DataFrame")
        # a private copy, so the caller's dict cannot change it later
        frozen = {str(t): tuple(c) for t, c in dict(self.non_feature_columns).items()}
        object.__setattr__(self, "non_feature_columns", frozen)

    def items(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """Yield ``(table_name, frame)`` in contract order."""
        for name in TABLE_NAMES:
            yield name, getattr(self, name)

    def as_dict(self) -> dict[str, pd.DataFrame]:
        return dict(self.items())

    def replace(self, **frames: pd.DataFrame) -> Tables:
        """A copy with some tables swapped (the container itself is immutable)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(frames)
        return Tables(**current)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={len(df):,}" for n, df in self.items())
        return f"Tables({sizes}, extracted_at={self.extracted_at})"


def _empty(name: str) -> pd.DataFrame:
    """A fresh (shallow) copy of the contract's empty frame, built once: request paths build
    ``Tables`` per call and must not pay for typing an empty frame each time."""
    return _empty_template(name).copy(deep=False)


@functools.cache
def _empty_template(name: str) -> pd.DataFrame:
    from spm_ml.data.parse import empty_frame  # parse imports this module

    return empty_frame(TABLES[name])


def concat_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows of ``frames`` one after the other; a single non-empty frame is returned as it
    is (concatenating costs more than a request's rows), and all-empty gives the first."""
    non_empty = [f for f in frames if len(f)]
    if len(non_empty) <= 1:
        return non_empty[0] if non_empty else frames[0]
    return pd.concat(non_empty, ignore_index=True)
