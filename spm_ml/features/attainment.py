"""Bookings and quota attainment, point in time: what a rep had booked by any moment.

A rep's bookings are the amounts of the deals they won: deals closed ``won``, credited to the
owner at the close (a deal reassigned mid-cycle books for whoever closed it) at the amount it
carried at the close (an edit after the close does not change history).  Both are known from
the close on, so bookings before ``t`` never read anything dated at or after ``t``.

A quota period covers whole days: a deal closed at any time on ``period_end`` counts, so the
period ends (exclusive) at the midnight after ``period_end`` (:func:`period_close`).
Attainment is bookings over quota; a zero quota has no attainment (NaN), never a division
by zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.features.asof import EventIndex, vocabulary_of
from spm_ml.features.deal_fields import field_at, owner_at_close


def period_close(period_end: pd.Series | pd.Timestamp) -> pd.Series | pd.Timestamp:
    """The exclusive end of a period whose last day is ``period_end``: the next midnight."""
    if isinstance(period_end, pd.Series):
        return period_end.dt.normalize() + pd.Timedelta(days=1)
    return period_end.normalize() + pd.Timedelta(days=1)


@dataclass(frozen=True)
class Bookings:
    """Won deals by the rep credited with them, dated at the close, with their amounts."""

    index: EventIndex
    amounts: np.ndarray
    """Amount at the close, aligned with the won deals the index was built on."""
    deals: pd.DataFrame
    """The won deals, aligned with ``amounts``: ``deal_id``, ``rep_id`` (credited),
    ``created_at``, ``closed_at``."""

    @classmethod
    def build(cls, tables: Tables, reps: pd.Index | None = None, outcome: str = "won") -> Bookings:
        """``outcome="lost"`` gives the same for lost deals (what a rep lost, and when)."""
        deals = tables.deals
        won = (deals["outcome"] == outcome).fillna(False).to_numpy() & deals["closed_at"].notna()
        won = np.asarray(won, dtype=bool)
        closer = owner_at_close(tables)[won]
        at_close = pd.DataFrame(
            {"deal_id": deals["deal_id"].to_numpy()[won], "as_of": deals["closed_at"][won]}
        )
        amounts = pd.to_numeric(
            pd.Series(field_at(tables, at_close, "amount")), errors="coerce"
        ).to_numpy(dtype=np.float64, na_value=np.nan)
        vocabulary = reps if reps is not None else vocabulary_of(tables.reps["rep_id"])
        index = EventIndex(pd.Series(closer, dtype="object"), at_close["as_of"], vocabulary)
        won_deals = pd.DataFrame(
            {
                "deal_id": at_close["deal_id"].to_numpy(),
                "rep_id": closer,
                "created_at": deals["created_at"].to_numpy()[won],
                "closed_at": at_close["as_of"].to_numpy(),
            }
        )
        return cls(index, amounts, won_deals)

    def before(self, reps: pd.Series | np.ndarray, times: pd.Series | np.ndarray) -> np.ndarray:
        """Amount each rep had booked before each time (all history)."""
        return self.index.sum(pd.Series(reps), pd.Series(times), values=self.amounts)

    def between(
        self,
        reps: pd.Series | np.ndarray,
        start: pd.Series | np.ndarray,
        end: pd.Series | np.ndarray,
    ) -> np.ndarray:
        """Amount each rep booked in ``[start, end)``."""
        return self.before(reps, end) - self.before(reps, start)


def period_attainment(tables: Tables, bookings: Bookings | None = None) -> pd.DataFrame:
    """Every quota row with its bookings and attainment, and when they became known.

    Columns: the quota columns, ``bookings`` (won in the period), ``attainment`` (bookings
    over quota; NaN for a zero quota) and ``known_at`` (the period's close: before it, the
    period's attainment is not a fact yet).
    """
    bookings = bookings or Bookings.build(tables)
    quotas = tables.quotas.reset_index(drop=True)
    close = period_close(quotas["period_end"])
    booked = bookings.between(quotas["rep_id"], quotas["period_start"], close)
    quota = quotas["quota_amount"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        attainment = np.where(quota > 0, booked / quota, np.nan)
    return quotas.assign(bookings=booked, attainment=attainment, known_at=close)
