"""Planting custom fields with or without history, for the feature tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables


def with_tracked_field(
    tables: Tables, name: str, choices: tuple[str, ...], seed: int = 0
) -> tuple[Tables, pd.DataFrame]:
    """``tables`` with custom field ``name`` on deals and its changes in ``deal_history``.

    Each deal gets an initial value and 0-3 later changes, dated between its creation and its
    close (or extraction).  Half the deals record the initial value as a row at creation
    (``old_value`` empty); the others only record changes, so before the first change the
    value is that row's ``old_value``; deals without a change and without an initial row have
    no history at all and keep their deals-table value.  Returns the tables and the
    ground-truth timeline ``(deal_id, start, value)``: the value from ``start`` on.
    """
    rng = np.random.default_rng(seed)
    deals = tables.deals
    end = tables.extracted_at
    rows, timeline, final = [], [], []
    for deal_id, created, closed in zip(
        deals["deal_id"], deals["created_at"], deals["closed_at"], strict=True
    ):
        stop = closed if pd.notna(closed) else end
        value = str(rng.choice(choices))
        timeline.append((deal_id, created, value))
        if rng.random() < 0.5:
            rows.append((deal_id, created, None, value))
        span = (stop - created).total_seconds()
        n_changes = int(rng.integers(0, 4)) if span > 86_400 else 0
        offsets = np.sort(rng.uniform(0.05, 0.95, n_changes)) * span
        for offset in offsets:
            at = (created + pd.Timedelta(seconds=float(offset))).floor("s")
            new = str(rng.choice([c for c in choices if c != value]))
            rows.append((deal_id, at, value, new))
            timeline.append((deal_id, at, new))
            value = new
        final.append(value)
    added = pd.DataFrame(rows, columns=["deal_id", "changed_at", "old_value", "new_value"])
    added = added.assign(field=name)[tables.deal_history.columns[:5]]
    added = added.astype(tables.deal_history.dtypes[added.columns].to_dict())
    history = pd.concat([tables.deal_history, added], ignore_index=True)
    deals = deals.assign(**{name: pd.array(final, dtype="str")})
    truth = pd.DataFrame(timeline, columns=["deal_id", "start", "value"])
    return tables.replace(deals=deals, deal_history=history), truth


def value_at(truth: pd.DataFrame, deal_id: str, as_of: pd.Timestamp) -> str:
    """The planted field's value of ``deal_id`` strictly before ``as_of`` (its timeline)."""
    mine = truth[(truth["deal_id"] == deal_id) & (truth["start"] < as_of)]
    return mine["value"].iloc[-1]
