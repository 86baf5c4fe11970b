"""The snapshots' deals and their events, indexed once per :func:`deal_features` call.

Each block of deal features asks an :class:`~spm_ml.features.asof.EventIndex` about the
same deals' history, activities or emails.  Building those indexes (and the vocabulary of
deal ids behind them) once and handing them to every block changes no feature value: it
only stops each block from building them again, a cost a small request pays in full.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.features.asof import EventIndex, values_of, vocabulary_of


@dataclass(frozen=True)
class DealEvents:
    """The snapshots' deal ids and each per-deal table indexed by (deal, time)."""

    vocabulary: pd.Index
    history: EventIndex
    activities: EventIndex
    emails: EventIndex

    @classmethod
    def of(cls, tables: Tables, snapshots: pd.DataFrame) -> DealEvents:
        vocabulary = vocabulary_of(snapshots["deal_id"])

        def index(frame: pd.DataFrame, time: str) -> EventIndex:
            return EventIndex(values_of(frame, "deal_id"), values_of(frame, time), vocabulary)

        return cls(
            vocabulary=vocabulary,
            history=index(tables.deal_history, "changed_at"),
            activities=index(tables.activities, "occurred_at"),
            emails=index(tables.emails, "sent_at"),
        )
