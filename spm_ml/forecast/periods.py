"""Forecast periods and who is forecast in them: the reps, each with a scale for the draws.

A period is the organisation's quota period (the quotas table's distinct start and end
dates) or, for an organisation without quotas (the Maven CRM export), a calendar quarter.
The reps forecast in a period at ``as_of`` are everyone who can book in it: reps with a
quota for it (employed at ``as_of``), the owners at ``as_of`` of the deals open then, and
reps who booked in it before ``as_of`` (a leaver's early bookings still count).

The Monte Carlo draws in money (the engine's ``scale`` is 1 for every rep; quota risk draws
the same engine in shares of quota).  Quota is only what the forecast is compared against:
bookings from deals not created yet do not grow with a rep's quota (on the simulated
organisation their correlation with it is -0.10 in money, -0.40 as a share of it), so
drawing them as shares of quota over-forecast the company by 10% at a quarter elapsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.errors import SpmMlError
from spm_ml.features.attainment import Bookings, period_close
from spm_ml.features.deal_fields import owner_at
from spm_ml.features.deals import open_deals_at
from spm_ml.features.snapshots import extraction_time


@dataclass(frozen=True)
class Period:
    """A forecast period: its first and last day (inclusive, as quotas' ``period_end``)."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def close(self) -> pd.Timestamp:
        """The exclusive end: the midnight after ``end``."""
        return period_close(self.end)

    @property
    def label(self) -> str:
        quarter = pd.Period(self.start, freq="Q")
        if quarter.start_time == self.start and quarter.end_time.normalize() == self.end:
            return str(quarter)
        return f"{self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"

    def at(self, fraction: float) -> pd.Timestamp:
        """The moment ``fraction`` of the period has elapsed, in whole days (as quota-risk
        snapshots are taken)."""
        days = (self.close - self.start) / pd.Timedelta(days=1)
        return self.start + pd.Timedelta(days=int(np.round(days * fraction)))

    def fraction(self, as_of: pd.Timestamp) -> float:
        """Share of the period elapsed at ``as_of``."""
        return float((as_of - self.start) / (self.close - self.start))


def periods_of(tables: Tables) -> list[Period]:
    """The organisation's periods in time order: its quota periods, else calendar quarters
    from the first deal's creation to the extraction."""
    if not tables.quotas.empty:
        spans = tables.quotas[["period_start", "period_end"]].drop_duplicates()
        spans = spans.sort_values(["period_start", "period_end"])
        return [Period(pd.Timestamp(s), pd.Timestamp(e).normalize()) for s, e in spans.to_numpy()]
    first = tables.deals["created_at"].min()
    quarters = pd.period_range(first, extraction_time(tables), freq="Q")
    return [Period(q.start_time, q.end_time.normalize()) for q in quarters]


def parse_period(text: str, tables: Tables) -> Period:
    """A period named as ``2025Q3``, ``2025-07`` (a month), ``2025`` (a year), or by any date
    inside one of the organisation's periods (``2025-08-15``)."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = pd.Timestamp(text)
            for period in periods_of(tables):
                if period.start <= day < period.close:
                    return period
            quarter = pd.Period(day, freq="Q")
        else:
            quarter = pd.Period(text)
    except ValueError as err:
        raise SpmMlError(
            f"--period {text!r} is not a period: use 2025Q3, 2025-07, 2025 or a date inside one"
        ) from err
    return Period(quarter.start_time, quarter.end_time.normalize())


def rep_quotas(tables: Tables, reps: np.ndarray, period: Period) -> np.ndarray:
    """Each rep's quota for ``period`` (NaN without one)."""
    quotas = tables.quotas[tables.quotas["quota_amount"] > 0]
    this = quotas[quotas["period_start"] == period.start].drop_duplicates("rep_id")
    return this.set_index("rep_id")["quota_amount"].reindex(reps).to_numpy(dtype=np.float64)


def period_snapshots(
    tables: Tables,
    period: Period,
    as_of: pd.Timestamp,
    bookings: Bookings | None = None,
    owners: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per rep who can book in ``period`` as seen at ``as_of`` (module docstring).

    Columns: ``rep_id, period_start, period_end, quota``, ``quota_amount`` (the draws'
    scale, the column the quota-risk inputs divide by: 1, money), ``as_of,
    fraction_elapsed`` and ``active`` (employed at ``as_of``: only an active rep creates new
    deals).  ``owners``: who owned each deal open at ``as_of``
    (:func:`~spm_ml.features.quota.open_deal_owners`' ``rep_id`` there), when the caller
    has them.
    """
    bookings = bookings or Bookings.build(tables)
    as_of = pd.Timestamp(as_of)
    reps = tables.reps.set_index("rep_id")
    employed = (reps["hire_date"] < as_of) & ~(reps["exit_date"] < as_of)
    quotas = tables.quotas
    with_quota = quotas.loc[
        (quotas["period_start"] == period.start) & (quotas["quota_amount"] > 0), "rep_id"
    ]
    if owners is None:
        open_now = open_deals_at(tables, as_of)
        owners = owner_at(tables, open_now) if len(open_now) else np.array([], dtype=object)
    won = bookings.deals
    booked = won.loc[(won["closed_at"] >= period.start) & (won["closed_at"] < as_of), "rep_id"]
    candidates = set(with_quota[with_quota.map(employed).fillna(False).astype(bool)])
    candidates |= {r for r in owners if isinstance(r, str)} | set(booked)
    rep_ids = np.array(sorted(candidates), dtype=object)
    quota = rep_quotas(tables, rep_ids, period)
    active = employed.reindex(rep_ids).fillna(False).to_numpy(dtype=bool)
    return pd.DataFrame(
        {
            "rep_id": rep_ids,
            "period_start": period.start,
            "period_end": period.end,
            "quota": quota,
            "quota_amount": 1.0,
            "as_of": as_of,
            "fraction_elapsed": period.fraction(as_of),
            "active": active,
        }
    ).astype({"as_of": "datetime64[ns]", "period_start": "datetime64[ns]"})
