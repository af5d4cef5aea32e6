"""The learnable window of next-token jet models, measured from per-position validation loss.

Definition (operational). A generative jet model predicts the constituent tokens of a jet one
position at a time (position 0 = the first constituent token after the start token, positions
ordered by descending pT). Runs that log ``val_loss_per_position`` give, for every position k, the
validation loss ``l_k`` of each run. Over a set of runs that differ in scale ``x`` (tokens seen D,
compute C or parameters N), the **scaling slope** of position k is

    s_k = -d l_k / d ln x,

the least-squares slope of ``l_k`` against ``ln x`` (nats per e-fold of scale), with its standard
error ``se_k``. Position k is *learnable* when scale measurably improves it:

    s_k >= frac * max_j s_j   and   s_k >= z * se_k   (defaults frac = 0.1, z = 2).

The **learnable window** is the longest contiguous range of learnable positions
``[start, end]`` (inclusive). Positions before it are learnt already at the smallest scale
(saturated), positions after it do not improve with more scale within the measured range
(unlearnable noise at these scales). Reported with it: its width, the fraction of the total
loss improvement ``sum_k max(s_k, 0)`` that falls inside it, and seeded bootstrap intervals
(over runs) of its edges.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["WindowResult", "learnable_window", "position_matrix", "position_slopes"]

logger = logging.getLogger(__name__)


def position_matrix(values: Sequence[Any], *, column: str = "val_loss_per_position") -> np.ndarray:
    """Stack per-run lists of per-position losses into an array of shape (n_runs, n_positions).

    Cells may be lists, arrays or JSON strings (as a CSV stores them). Lists of unequal length are
    cut to the shortest (logged).
    """
    rows = []
    for i, cell in enumerate(values):
        if isinstance(cell, str):
            try:
                cell = json.loads(cell)
            except json.JSONDecodeError as err:
                raise ValueError(f"column {column!r}, row {i}: not a list of numbers ({err})") from err
        if cell is None or (isinstance(cell, float) and math.isnan(cell)):
            raise ValueError(f"column {column!r}, row {i}: missing (the run did not log per-position loss)")
        row = np.asarray(cell, dtype=float).ravel()
        if not len(row):
            raise ValueError(f"column {column!r}, row {i}: empty list")
        rows.append(row)
    if not rows:
        raise ValueError(f"column {column!r}: no runs")
    length = min(len(r) for r in rows)
    if any(len(r) != length for r in rows):
        logger.warning("per-position losses of unequal length; using the first %d positions", length)
    matrix = np.array([r[:length] for r in rows])
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"column {column!r} has non-finite per-position losses")
    return matrix


def position_slopes(x: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scaling slope ``s_k = -d l_k / d ln x`` of every position and its standard error.

    Parameters
    ----------
    x
        Scale of each run (D, C or N), shape (n_runs,).
    losses
        Per-position loss, shape (n_runs, n_positions).
    """
    u = np.log(np.asarray(x, float))
    uc = u - u.mean()
    sxx = float(np.sum(uc * uc))
    lc = losses - losses.mean(axis=0)
    slope = (uc @ lc) / sxx
    resid = lc - np.outer(uc, slope)
    dof = max(len(u) - 2, 1)
    se = np.sqrt(np.sum(resid * resid, axis=0) / dof / sxx)
    return -slope, se


def _window(s: np.ndarray, se: np.ndarray, frac: float, z: float) -> tuple[int, int] | None:
    top = float(np.max(s))
    if top <= 0:
        return None
    learnable = (s >= frac * top) & (s >= z * se)
    best: tuple[int, int] | None = None
    start = None
    for k, flag in enumerate(np.append(learnable, False)):
        if flag and start is None:
            start = k
        elif not flag and start is not None:
            if best is None or (k - 1 - start) > (best[1] - best[0]):
                best = (start, k - 1)
            start = None
    return best


@dataclass
class WindowResult:
    """Learnable window and the per-position slopes behind it."""

    start: int | None
    end: int | None
    slopes: np.ndarray
    slope_se: np.ndarray
    gain_fraction: float
    frac: float
    z: float
    ci: dict[str, list[float]]
    level: float
    n_runs: int
    n_resamples: int
    seed: int

    @property
    def width(self) -> int:
        return 0 if self.start is None or self.end is None else self.end - self.start + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": {"start": self.start, "end": self.end, "width": self.width,
                       "gain_fraction": self.gain_fraction},
            "ci": self.ci, "confidence_level": self.level,
            "definition": {"slope": "s_k = -d l_k / d ln x (least squares over runs)",
                           "learnable": f"s_k >= {self.frac} * max(s) and s_k >= {self.z} * se_k",
                           "window": "longest contiguous range of learnable positions (0-based, inclusive)"},
            "slopes": self.slopes.tolist(), "slope_se": self.slope_se.tolist(),
            "n_positions": len(self.slopes), "n_runs": self.n_runs,
            "bootstrap": {"method": "percentile", "n_resamples": self.n_resamples, "seed": self.seed,
                          "confidence_level": self.level},
        }


def learnable_window(x: np.ndarray, losses: np.ndarray, *, frac: float = 0.1, z: float = 2.0,
                     n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
                     x_name: str = "x") -> WindowResult:
    """Measure the learnable window (see the module docstring for the definition).

    Parameters
    ----------
    x
        Scale of each run (tokens seen, FLOPs or parameters), shape (n_runs,).
    losses
        Per-position validation loss in nats, shape (n_runs, n_positions).
    frac, z
        Thresholds of the definition.
    n_resamples, seed, level
        Seeded percentile bootstrap over runs for the edges of the window.
    x_name
        Column name of ``x`` for error messages.
    """
    x = np.asarray(x, float)
    losses = np.asarray(losses, float)
    if losses.ndim != 2 or losses.shape[0] != len(x):
        raise ValueError(f"per-position losses of shape {losses.shape} do not match {len(x)} runs of {x_name!r}")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"column {x_name!r} must be finite and positive")
    if len(x) < 3:
        raise ValueError(f"{len(x)} run(s): the learnable window needs at least 3 runs")
    if len(np.unique(x)) < 2:
        raise ValueError(f"column {x_name!r} has a single distinct value ({x[0]:g}): no scaling to measure")
    s, se = position_slopes(x, losses)
    window = _window(s, se, frac, z)
    positive = np.clip(s, 0.0, None)
    total = float(positive.sum())
    gain = float(positive[window[0]:window[1] + 1].sum() / total) if window and total > 0 else 0.0
    rng = np.random.default_rng(seed)
    starts, ends = [], []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(x), len(x))
        if len(np.unique(x[idx])) < 2:
            continue
        wb = _window(*position_slopes(x[idx], losses[idx]), frac, z)
        if wb is not None:
            starts.append(wb[0])
            ends.append(wb[1])
    tail = 50.0 * (1.0 - level)

    def interval(values: list[int]) -> list[float]:
        if not values:
            return [math.nan, math.nan]
        return [float(v) for v in np.percentile(values, [tail, 100.0 - tail])]

    ci = {"start": interval(starts), "end": interval(ends),
          "width": interval([e - s0 + 1 for s0, e in zip(starts, ends)])}
    return WindowResult(start=window[0] if window else None, end=window[1] if window else None, slopes=s,
                        slope_se=se, gain_fraction=gain, frac=frac, z=z, ci=ci, level=level, n_runs=len(x),
                        n_resamples=n_resamples, seed=seed)
