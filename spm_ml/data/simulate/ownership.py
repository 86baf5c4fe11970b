"""Who owns a deal when: the original rep, then teammates who inherit it when the rep leaves.

Policy (documented in ``docs/simulator.md``): when a rep leaves, each of their open deals is
reassigned to a random teammate employed at that moment (else a rep of the same region, else
any active AE; if nobody is employed the deal is closed lost at the exit time).  Each move is
written to ``deal_history`` as a ``rep_id`` row dated at the exit (:meth:`OwnerLedger.transfers`);
the deals table shows the owner at close (or at extraction), and each activity and email
carries the owner at its own time.  The deal's trajectory is unchanged.
"""

from __future__ import annotations

import numpy as np

_SHIFT = np.int64(1) << np.int64(26)
"""Minutes fit in 26 bits for simulations up to ~120 years; deal index goes above."""


class OwnerLedger:
    """Transfers ``(deal, time, new_owner)``; answers "who owned deal d at time t"."""

    def __init__(self, original_owner: np.ndarray) -> None:
        self.original = original_owner
        self._deal: list[np.ndarray] = []
        self._time: list[np.ndarray] = []
        self._owner: list[np.ndarray] = []
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    def record(self, deal: np.ndarray, time: np.ndarray, owner: np.ndarray) -> None:
        if len(deal):
            self._deal.append(np.asarray(deal, np.int64))
            self._time.append(np.asarray(time, np.int64))
            self._owner.append(np.asarray(owner, np.int64))
            self._sorted = None

    def set_original(self, original_owner: np.ndarray) -> None:
        """Point at the (grown) array of original owners."""
        self.original = original_owner

    @property
    def n_transfers(self) -> int:
        return int(sum(len(d) for d in self._deal))

    def transfers(self) -> dict[str, np.ndarray]:
        """Every transfer as arrays ``deal``, ``time``, ``old`` and ``new`` owner, by (deal, time).

        ``old`` is the owner just before the transfer: the original owner or the previous heir.
        """
        if not self._deal:
            empty = np.zeros(0, np.int64)
            return {"deal": empty, "time": empty, "old": empty, "new": empty}
        deal = np.concatenate(self._deal)
        time = np.concatenate(self._time)
        new = np.concatenate(self._owner)
        order = np.lexsort((time, deal))
        deal, time, new = deal[order], time[order], new[order]
        same_deal = np.r_[False, deal[1:] == deal[:-1]]
        old = np.where(same_deal, np.r_[-1, new[:-1]], self.original[deal])
        return {"deal": deal, "time": time, "old": old, "new": new}

    def transferred_deals(self) -> np.ndarray:
        return np.unique(np.concatenate(self._deal)) if self._deal else np.zeros(0, np.int64)

    def owner_at(self, deal: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Owner of each ``deal`` at ``time`` (transfers at exactly ``time`` apply)."""
        deal = np.asarray(deal, np.int64)
        owner = self.original[deal].copy()
        if not self._deal:
            return owner
        if self._sorted is None:
            d = np.concatenate(self._deal)
            t = np.concatenate(self._time)
            o = np.concatenate(self._owner)
            key = d * _SHIFT + t
            order = np.argsort(key, kind="stable")
            self._sorted = (key[order], np.stack([d[order], o[order]]))
        key, (d_sorted, o_sorted) = self._sorted
        q = deal * _SHIFT + np.asarray(time, np.int64)
        pos = np.searchsorted(key, q, side="right") - 1
        ok = pos >= 0
        ok[ok] = d_sorted[pos[ok]] == deal[ok]
        owner[ok] = o_sorted[pos[ok]]
        return owner
