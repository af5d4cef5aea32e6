"""Drawing training items: a fixed subset visited in one seeded permutation per epoch.

:class:`EpochSampler` is the :class:`~hepscale.train.task.TrainData` of every task: the items
(jets) of the unique subset are drawn in a new permutation each epoch, seeded by
``(seed, epoch)``; the position in the data is ``(epoch, cursor)``, so that the items drawn
depend only on it and the seed and a resumed run draws exactly the items an uninterrupted run
would.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["EpochSampler"]


class EpochSampler:
    """Item indices of a fixed subset, one seeded permutation per epoch.

    Parameters
    ----------
    units
        Data units of each item of the subset (shape (n_items,)): what D and U count.
    seed
        Seed of the epoch permutations.
    """

    def __init__(self, units: np.ndarray, *, seed: int) -> None:
        self.item_units = units
        self.n_items = len(units)
        self.seed = seed
        self.epoch = 0
        self.cursor = 0
        self._perm_epoch = -1
        self._perm = np.zeros(0, dtype=np.int64)

    @property
    def unique_units(self) -> int:
        """U: data units of the subset."""
        return int(self.item_units.sum())

    @property
    def mean_units(self) -> float:
        """Mean data units per item."""
        return float(self.item_units.mean())

    def units(self, ids: np.ndarray) -> int:
        """Data units of the items ``ids``."""
        return int(self.item_units[ids].sum())

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._perm_epoch != epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_items)
            self._perm_epoch = epoch
        return self._perm

    def next_ids(self, n: int) -> np.ndarray:
        """The next ``n`` item indices (advancing the position, across epochs)."""
        out = []
        while n > 0:
            perm = self._permutation(self.epoch)
            take = perm[self.cursor : self.cursor + n]
            out.append(take)
            n -= len(take)
            self.cursor += len(take)
            if self.cursor >= self.n_items:
                self.epoch += 1
                self.cursor = 0
        return np.concatenate(out)

    def state(self) -> dict[str, int]:
        """The position ``{"epoch", "cursor"}``."""
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state(self, state: Mapping[str, int]) -> None:
        """Go back to a position returned by :meth:`state`."""
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
