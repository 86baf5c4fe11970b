"""Quotas and compensation: how targets are set and how attainment turns into pay.

* A quarter's quota is the expected bookings of an average ramped rep with the seat's segment
  focus, times the quota-setter's *estimate* of the territory's potential (wrong by
  ``territory_estimate_sd``: an over-estimated territory gets a quota its pipeline cannot
  cover), times the rep's ramp and hike multiplier, prorated for partial quarters.
* After a quarter at or above ``hike_after`` the rep's quota is usually hiked for the
  following quarters (the "recent hike" that lowers engagement and raises attrition).
* Pay: a base salary and a target incentive by segment focus, scaled by the rep's pay level
  (some reps are paid ~15% below market; market pay grows every year and reviews raise the
  level, see :mod:`~spm_ml.data.simulate.careers`); the incentive pays out linearly from the
  threshold to 100% of attainment, then with an accelerator, up to a cap.
"""

from __future__ import annotations

import numpy as np

from spm_ml.data.simulate import catalog
from spm_ml.data.simulate.config import DealKnobs, PayKnobs

NOMINAL_WIN_RATE = np.array([0.31, 0.22, 0.145])
"""Approximate win rate per segment, used only to size quotas (the simulation decides)."""


def expected_monthly_bookings(focus: np.ndarray, deals: DealKnobs) -> np.ndarray:
    """Expected won amount per month of an average ramped rep with this segment focus."""
    mix = np.asarray(deals.segment_mix)
    price = np.asarray(catalog.PRODUCT_BY_SEGMENT) @ np.asarray(catalog.PRODUCT_PRICE)
    mean_amount = np.asarray(deals.amount_median) * np.exp(np.asarray(deals.amount_sigma) ** 2 / 2)
    per_deal = mix @ (NOMINAL_WIN_RATE * mean_amount * price)
    return np.asarray(deals.deals_per_month)[focus] * per_deal[focus]


def ramp_factor(tenure_months: np.ndarray, focus: np.ndarray, pay: PayKnobs) -> np.ndarray:
    """Share of a full quota carried by a rep with this tenure at the end of the quarter.

    Nothing closes before a first sales cycle has passed (``lag``), then the quota ramps
    linearly; bigger-deal seats ramp slower because their deals take longer to close.
    """
    lag = np.array([1.0, 2.0, 3.5])[focus]
    months = pay.ramp_months * np.array([0.6, 1.0, 1.4])[focus]
    return np.clip((tenure_months - lag) / months, 0.1, 1.0)


def payout_rate(attainment: np.ndarray, pay: PayKnobs) -> np.ndarray:
    """Share of the target incentive paid for a given attainment (threshold, accelerator, cap)."""
    att = np.asarray(attainment, dtype=float)
    below = np.where(att < pay.payout_threshold, 0.0, att)
    above = 1.0 + pay.accelerator * (att - 1.0)
    return np.minimum(np.where(att <= 1.0, below, above), pay.payout_cap)


def quarterly_pay(
    focus: np.ndarray, pay_level: np.ndarray, proration: np.ndarray, pay: PayKnobs
) -> tuple[np.ndarray, np.ndarray]:
    """Base pay and target incentive for a quarter (a 50/50 pay mix), rounded to dollars."""
    base = np.asarray(pay.annual_base)[focus] / 4.0 * pay_level * proration
    return np.round(base), np.round(base)


MINUTES_PER_YEAR = 365.25 * 24 * 60


def market_index(minutes: np.ndarray | int, pay: PayKnobs) -> np.ndarray:
    """Market pay at simulation time ``minutes`` relative to the start of the history."""
    years = np.asarray(minutes, dtype=float) / MINUTES_PER_YEAR
    return (1.0 + pay.market_growth_per_year) ** years
