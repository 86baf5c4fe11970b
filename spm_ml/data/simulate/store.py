"""Growable column arrays: per-deal state that the monthly loop appends to and adjusts."""

from __future__ import annotations

import numpy as np


class ColumnStore:
    """Named numpy columns of equal length, appended in batches with amortised doubling.

    Reading ``store["close"]`` returns a view of the filled part, so in-place updates
    (a pulled-in close date, a reassigned owner) go straight into the store.
    """

    def __init__(self, spec: dict[str, type | np.dtype]) -> None:
        self.n = 0
        self._cols = {name: np.zeros(1024, dtype=dtype) for name, dtype in spec.items()}

    def __len__(self) -> int:
        return self.n

    @property
    def columns(self) -> list[str]:
        return list(self._cols)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._cols[name][: self.n]

    def append(self, **columns: np.ndarray) -> np.ndarray:
        """Append one batch (every column must be given); returns the new row indices."""
        k = len(next(iter(columns.values())))
        need = self.n + k
        cap = len(next(iter(self._cols.values())))
        if need > cap:
            new_cap = max(need, 2 * cap)
            for name, arr in self._cols.items():
                grown = np.zeros(new_cap, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self._cols[name] = grown
        for name in self._cols:
            self._cols[name][self.n : need] = columns[name]
        idx = np.arange(self.n, need)
        self.n = need
        return idx
