"""Budget and compute accounting of a run, without torch: shared by the trainer and the planner.

Units
-----
A run consumes *items* (jets) in optimizer steps of ``B`` items. Each item carries a number
of *data units* (real tokens for generation: the jet's tokens, capped at ``S + 1``); D, the
data seen, and U, the size of the fixed training subset, are counted in data units, so that
``epochs = D / U``.

- unique subset: the first items of the training split whose units fit into the U budget
  (:func:`unique_subset`), all items when no U budget is set;
- steps: a budget is exactly one of ``steps``, ``tokens`` (D; steps = ceil(D / (B x mean
  units per item)) so that the schedule knows its end) or ``flops`` (steps = ceil(C / FLOPs
  per step)) (:func:`steps_for_budget`);
- compute: ``C = 6 N B S n_steps`` (:func:`training_flops`) with N including the embeddings by
  default, as the generation study defines it (``flops``; ``budget.flops_params``), and given
  for both N (``flops_total_params``, ``flops_non_embedding``).

Exit codes of a run are those of :mod:`hepscale.errors` (0 finished, 2 bad input, 3 diverged,
85 checkpointed on request).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepscale.errors import (
    EXIT_BAD_INPUT,
    EXIT_CHECKPOINT,
    EXIT_DIVERGED,
    EXIT_OK,
    ConfigError,
)

__all__ = [
    "EXIT_OK",
    "EXIT_BAD_INPUT",
    "EXIT_DIVERGED",
    "EXIT_CHECKPOINT",
    "FLOPS_FORMULA",
    "FLOPS_PARAMS",
    "pick_flops",
    "Accounting",
    "unique_subset",
    "steps_for_budget",
    "training_flops",
]

FLOPS_FORMULA = ("6 * N * batch_size * seq_len * steps (flops: N as flops_n says, total by default; "
                 "flops_total_params: N total; flops_non_embedding: N non-embedding)")

#: values of ``budget.flops_params``: the N of the compute C
FLOPS_PARAMS = ("total", "non_embedding")


def pick_flops(flops_non_embedding: float, flops_total: float, flops_params: str) -> float:
    """The compute C of ``budget.flops_params`` (``total`` or ``non_embedding``)."""
    if flops_params not in FLOPS_PARAMS:
        raise ConfigError(f"budget.flops_params must be one of {list(FLOPS_PARAMS)}, got {flops_params!r}")
    return flops_total if flops_params == "total" else flops_non_embedding


def unique_subset(
    units: Sequence[int] | np.ndarray,
    unique: int | None,
    *,
    where: str = "data.unique_tokens",
    source: str = "the training split",
    unit: str = "units",
) -> int:
    """Number of items in the unique-data subset: the first items whose units fit into ``unique``.

    Parameters
    ----------
    units
        Data units of every item of the training split, in split order.
    unique
        The U budget (None: every item).

    Raises
    ------
    ConfigError
        When ``unique`` exceeds the units of the split.
    """
    units = np.asarray(units)
    if unique is None:
        return len(units)
    total = int(units.sum())
    if unique > total:
        raise ConfigError(f"{where}={unique} exceeds the {total} {unit} of {source}")
    return max(1, int(np.searchsorted(np.cumsum(units), unique, side="right")))


def training_flops(n_params: float, *, batch_size: int, seq_len: int, steps: int) -> float:
    """Training compute ``C = 6 N B S n_steps`` (FLOPs, forward and backward)."""
    return 6.0 * n_params * batch_size * seq_len * steps


def steps_for_budget(budget: Any, *, batch_size: int, mean_units: float, flops_per_step: float) -> int:
    """Optimizer steps of a budget (an object with ``steps``, ``tokens`` and ``flops``, one set).

    Parameters
    ----------
    budget
        ``steps``, ``tokens`` (D, data units) or ``flops`` (C); exactly one set.
    batch_size
        Items per optimizer step.
    mean_units
        Mean data units per item of the unique subset.
    flops_per_step
        Compute of one optimizer step (with the N of ``budget.flops_params``).

    Raises
    ------
    ConfigError
        When no budget is set or the budget allows no step.
    """
    if budget.steps is not None:
        steps = int(budget.steps)
    elif budget.tokens is not None:
        steps = math.ceil(budget.tokens / (batch_size * float(mean_units)))
    elif budget.flops is not None:
        steps = math.ceil(budget.flops / flops_per_step)
    else:
        raise ConfigError("budget: set one of budget.steps, budget.tokens, budget.flops")
    if steps < 1:
        raise ConfigError(f"budget gives {steps} steps; it must allow at least one")
    return steps


@dataclass(frozen=True)
class Accounting:
    """N, D, U, epochs and C of a run (planned or measured).

    ``flops`` uses the N of ``flops_params`` (total by default), ``flops_total`` N total and
    ``flops_non_embedding`` N non-embedding; ``unique`` and ``epochs`` are None when U is not
    known yet (planning before the data exists with no U budget).
    """

    n_params: int
    n_params_total: int
    steps: int
    batch_size: int
    seq_len: int
    tokens: float
    unique: float | None

    @property
    def epochs(self) -> float | None:
        return self.tokens / self.unique if self.unique else None

    flops_params: str = "total"

    @property
    def flops_non_embedding(self) -> float:
        return training_flops(self.n_params, batch_size=self.batch_size, seq_len=self.seq_len, steps=self.steps)

    @property
    def flops(self) -> float:
        return pick_flops(self.flops_non_embedding, self.flops_total, self.flops_params)

    @property
    def flops_total(self) -> float:
        return training_flops(self.n_params_total, batch_size=self.batch_size, seq_len=self.seq_len, steps=self.steps)
