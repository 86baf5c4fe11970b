"""Quarter-end deal timing: reps short of quota pull wins in, reps far above push them out.

Real attainment distributions bunch up just above 100% because reps manage the timing of
deals around the quarter end.  Without this, lumpy enterprise wins would spread attainment
far wider than the published bands.  Two behaviours, both well known to RevOps:

* **pull-in**: a rep below quota asks a buyer who was going to sign in the first weeks of
  next quarter to sign now, for a discount (the close moves into the last days of the
  quarter and the amount is cut 5-20%);
* **push** ("sandbagging"): a rep well above quota lets late wins slip into next quarter.

Only deals already at their final open stage qualify, so replaying a deal's history stays
consistent: events after the new close time are dropped when the tables are assembled.
"""

from __future__ import annotations

import numpy as np

from spm_ml.data.simulate.clock import MINUTES_PER_DAY
from spm_ml.data.simulate.config import DealKnobs
from spm_ml.data.simulate.ownership import OwnerLedger
from spm_ml.data.simulate.store import ColumnStore

DAY = MINUTES_PER_DAY


def booked_amount(deals: ColumnStore) -> np.ndarray:
    """Amount booked at close: the final amount, or the discounted one for pull-ins."""
    override = deals["close_amount"]
    return np.where(np.isnan(override), deals["final_amount"], override)


def bookings(
    deals: ColumnStore, ledger: OwnerLedger, qs: int, qe: int, n_people: int
) -> np.ndarray:
    """Won amount with close in ``[qs, qe)`` credited to the owner at close, per person."""
    close = deals["close"]
    d = np.flatnonzero(deals["won"] & (close >= qs) & (close < qe))
    owner = ledger.owner_at(d, close[d])
    return np.bincount(owner, weights=booked_amount(deals)[d], minlength=n_people)


def _prefix_within(owner: np.ndarray, amount: np.ndarray, budget: np.ndarray, inclusive: bool):
    """Per owner (rows sorted by owner then priority), which rows fit the owner's budget."""
    csum = np.cumsum(amount)
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    before = csum - amount - np.where(group_start > 0, csum[group_start - 1], 0.0)
    return (before + amount <= budget) if inclusive else (before < budget)


def manage_quarter_end(
    deals: ColumnStore,
    ledger: OwnerLedger,
    rep: np.ndarray,
    quota: np.ndarray,
    full: np.ndarray,
    still_employed: np.ndarray,
    qs: int,
    qe: int,
    n_people: int,
    knobs: DealKnobs,
    rng: np.random.Generator,
) -> None:
    """Move close times (in place) for the quarter ``[qs, qe)`` of reps ``rep``."""
    close = deals["close"]
    won = deals["won"]
    booked = bookings(deals, ledger, qs, qe, n_people)
    att = booked[rep] / np.maximum(quota, 1.0)

    # push: far above quota -> let late wins slip into next quarter
    pushers = (
        full
        & still_employed
        & (att >= knobs.push_above)
        & (rng.random(len(rep)) < knobs.quarter_end_push)
    )
    surplus = np.zeros(n_people)
    surplus[rep[pushers]] = booked[rep[pushers]] - knobs.push_keep * quota[pushers]
    d = np.flatnonzero(won & (close >= qe - 45 * DAY) & (close < qe) & ~deals["pulled"])
    if len(d) and pushers.any():
        owner = ledger.owner_at(d, close[d])
        d, owner = d[surplus[owner] > 0], owner[surplus[owner] > 0]
        order = np.lexsort((-close[d], owner))
        d, owner = d[order], owner[order]
        amount = booked_amount(deals)[d]
        take = _prefix_within(owner, amount, surplus[owner], inclusive=True)
        d = d[take]
        close[d] = qe + (rng.uniform(0.05, 10.0, len(d)) * DAY).astype(np.int64)
        deals["pushed"][d] = True

    # pull-in: short of quota -> bring early next-quarter wins forward, at a discount
    booked = bookings(deals, ledger, qs, qe, n_people)
    att = booked[rep] / np.maximum(quota, 1.0)
    pullers = still_employed & (att < 1.0) & (rng.random(len(rep)) < knobs.quarter_end_pull_in)
    need = np.zeros(n_people)
    need[rep[pullers]] = quota[pullers] - booked[rep[pullers]]
    d = np.flatnonzero(
        won
        & (close >= qe)
        & (close < qe + 45 * DAY)
        & (deals["last_stage_change"] < qe - 2 * DAY)
        & ~deals["pushed"]
    )
    if len(d) and pullers.any():
        owner = ledger.owner_at(d, np.full(len(d), qe))
        same = ledger.owner_at(d, np.full(len(d), qe - 3 * DAY)) == owner
        keep = (need[owner] > 0) & same
        d, owner = d[keep], owner[keep]
        order = np.lexsort((close[d], owner))
        d, owner = d[order], owner[order]
        amount = deals["final_amount"][d]
        take = _prefix_within(owner, amount, need[owner], inclusive=False)
        d = d[take]
        earliest = np.maximum(deals["last_stage_change"][d], deals["created"][d]) + 60
        new_close = qe - (rng.uniform(0.02, 3.0, len(d)) * DAY).astype(np.int64)
        close[d] = np.maximum(new_close, earliest)
        discount = rng.uniform(0.8, 0.95, len(d))
        deals["close_amount"][d] = np.maximum(500.0, np.round(amount[take] * discount, -2))
        deals["pulled"][d] = True
