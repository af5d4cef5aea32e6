"""The learnable window of next-token jet models, measured from per-position validation loss.

A generative jet model predicts the constituent tokens of a jet one position at a time
(position 0 = the first constituent token after the start token, positions ordered by descending
pT). Runs that log ``val_loss_per_position`` give, for every position p, the validation loss
``L_p`` (nats) of each run. Over runs that differ in scale ``x`` (tokens seen D, compute C or
parameters N) the learnable window is defined as follows.

1. **Asymptote per position.** Every position is fitted, by least squares in the loss (nats),
   with the power-offset law

       L_p(x) = E_p + r_p (x / x_max)^(-alpha_p),   r_p >= 0,  alpha_min <= alpha_p <= alpha_max,

   where ``x_max`` is the largest scale measured. ``E_p`` is the loss at infinite scale and
   ``r_p = L_p(x_max) - E_p`` the **reducible loss** that more scale could still remove at the
   largest scale measured (``A_p = r_p x_max^alpha_p`` in ``E_p + A_p x^-alpha_p``). For fixed
   ``alpha_p`` the law is linear in ``E_p, r_p``: the fit profiles ``alpha_p`` on a log grid of
   ``[alpha_min, alpha_max]`` (default ``[0.05, 5]``), refines it by golden section, and takes
   ``r_p = 0`` (a flat line) where the data do not decrease. Where ``alpha_p`` ends on the lower
   edge the loss falls as a straight line in ``ln x`` without a visible asymptote: ``r_p`` is then a
   lower bound (smaller exponents give larger ``r_p``). Where it ends on the upper edge the loss
   only dropped between the smallest scales: ``r_p`` is an upper bound and the position is saturated.
2. **Resolution.** ``se_p`` is the standard error of ``r_p`` at the fitted exponent,
   ``s_p / sqrt(sum_i (b_i - mean b)^2)`` with ``b_i = (x_i / x_max)^-alpha_p`` and
   ``s_p^2 = RSS_p / (n_runs - 3)`` (``n_runs - 2`` where ``alpha_p`` is on an edge), the
   least-squares covariance of ``(E_p, r_p)``. ``r_p / se_p`` is the signed root of the
   likelihood-ratio statistic of a decrease against a flat line. (The standard error that also
   carries the exponent's uncertainty, ``reducible_se_full``, is reported too; it is unbounded
   when the curvature is weak, even for a loss that clearly falls, so it does not decide.)
3. **Learnable.** Position p is learnable when its reducible loss exceeds the statistical
   resolution,

       r_p > c(z) se_p   and   r_p > z s_p / sqrt(n_runs)   (default z = 2, ``--window-z``),

   and ``alpha_p`` is not on the upper edge; optionally also ``r_p >= frac * max r`` over the
   positions that pass (``--window-frac``, default 0: off). The first condition says that the
   decrease is significant, the second that the loss still to be gained is larger than a loss
   difference the runs can measure at all (``s_p`` is the noise of one run's loss): a position
   whose loss dropped between the smallest scales and stayed flat has a significant but
   negligible ``r_p``. ``z`` is a one-sided significance in standard-normal units: ``c(z)`` is
   the critical value that a flat position (``r_p = 0``, Gaussian noise) passes, with both
   conditions, with probability ``P(N(0, 1) > z)`` (2.3% for z = 2), from a seeded simulation
   of flat positions at the measured scales (about 2.0 for z = 2 with 10-12 runs over three
   decades, 2.6 with 6 runs: the search over ``alpha_p`` and the few degrees of freedom raise it,
   the floor lowers it).
4. **Window.** The learnable window is the set of learnable positions: its list, its first and
   last position and its size (the number of learnable positions; ``contiguous`` says whether
   they form one range). Positions before it are saturated (learnt already at the smallest
   scale), positions after it do not improve measurably within the measured range. About 2% of
   flat positions (at z = 2) pass by chance: read ``learnable_fraction`` beside the window.

Uncertainties. A seeded residual bootstrap over runs keeps the measured scales: each resample
adds to every run's fitted curves (the power law of the learnable positions, the mean loss of the
others) the residual vector (all positions at once, rescaled by ``sqrt(n / (n - 3))``) of a run
drawn with replacement, refits every position and redraws the window. It gives the interval and standard deviation of the window size and edges, a percentile
interval of every ``r_p`` and the fraction of resamples in which each position is learnable.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepscale.errors import DataError
from hepscale.fit.laws import percentile_ci

__all__ = ["PositionFits", "WindowResult", "fit_positions", "learnable_window", "null_threshold", "position_matrix"]

logger = logging.getLogger(__name__)

#: search range of the per-position exponents alpha_p and its grid; golden-section steps that refine it
ALPHA_RANGE: tuple[float, float] = (0.05, 5.0)
N_ALPHA, _N_GOLDEN, _GOLDEN = 120, 30, (math.sqrt(5.0) - 1.0) / 2.0
#: condition number of the column-scaled J^T J beyond which the full standard error of r_p is infinite
_MAX_COND = 1e12


def position_matrix(values: Sequence[Any], *, column: str = "val_loss_per_position") -> np.ndarray:
    """Stack per-run lists of per-position losses into an array of shape (n_runs, n_positions).

    Parameters
    ----------
    values
        One cell per run: a list, an array or a JSON string (as a CSV stores them).
    column
        Column name, for error messages.

    Returns
    -------
    numpy.ndarray
        Losses, shape (n_runs, n_positions). Lists of unequal length are cut to the shortest (logged).

    Raises
    ------
    DataError
        A cell is missing, empty, not a list of numbers, or holds non-finite losses.
    """
    rows = []
    for i, cell in enumerate(values):
        if isinstance(cell, str):
            try:
                cell = json.loads(cell)
            except json.JSONDecodeError as err:
                raise DataError(f"column {column!r}, row {i}: not a list of numbers ({err})") from err
        if cell is None or (isinstance(cell, float) and math.isnan(cell)):
            raise DataError(f"column {column!r}, row {i}: missing (the run did not log per-position loss)")
        row = np.asarray(cell, dtype=float).ravel()
        if not len(row):
            raise DataError(f"column {column!r}, row {i}: empty list")
        rows.append(row)
    if not rows:
        raise DataError(f"column {column!r}: no runs")
    length = min(len(r) for r in rows)
    if any(len(r) != length for r in rows):
        logger.warning("per-position losses of unequal length; using the first %d positions", length)
    matrix = np.array([r[:length] for r in rows])
    if not np.all(np.isfinite(matrix)):
        raise DataError(f"column {column!r} has non-finite per-position losses")
    return matrix


@dataclass
class PositionFits:
    """Fits ``L_p(x) = E_p + r_p (x / x_max)^-alpha_p`` of every position (arrays of shape (n_positions,))."""

    E: np.ndarray
    #: reducible loss at the largest scale, ``L_p(x_max) - E_p`` (nats)
    reducible: np.ndarray
    alpha: np.ndarray
    #: standard error of ``reducible`` at the fitted exponent (the resolution of the test; NaN where ``reducible`` is 0)
    reducible_se: np.ndarray
    #: standard error of ``reducible`` with the exponent's uncertainty (full covariance; inf where singular)
    reducible_se_full: np.ndarray
    #: -1: alpha_p at the lower edge of its search range (``reducible`` is then a lower bound),
    #: +1: at the upper edge (an upper bound; never learnable), 0: inside
    alpha_bound: np.ndarray
    rss: np.ndarray
    #: residual standard deviation ``s_p`` of one run's loss (nats)
    noise: np.ndarray
    #: fitted losses, shape (n_runs, n_positions)
    fitted: np.ndarray
    x_max: float

    @property
    def z_score(self) -> np.ndarray:
        """``r_p / se_p`` (0 where ``r_p = 0`` or its standard error is not finite)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            zs = self.reducible / self.reducible_se
        return np.where((self.reducible > 0) & np.isfinite(zs), zs, 0.0)

    def statistic(self, z: float) -> np.ndarray:
        """``r_p / se_p`` where ``r_p`` exceeds ``z s_p / sqrt(n_runs)`` and ``alpha_p`` is not on the upper
        edge, 0 elsewhere: the quantity compared with ``c(z)``."""
        floor = z * self.noise / math.sqrt(self.fitted.shape[0])
        return np.where((self.alpha_bound <= 0) & (self.reducible > floor), self.z_score, 0.0)

    def learnable(self, threshold: float, z: float, frac: float = 0.0) -> np.ndarray:
        """Boolean mask of the learnable positions (see the module docstring).

        Parameters
        ----------
        threshold
            Critical value ``c(z)`` of ``r_p / se_p`` (see :func:`null_threshold`).
        z
            Significance in standard-normal units (sets the floor ``z s_p / sqrt(n_runs)`` on ``r_p``).
        frac
            Also require ``r_p >= frac * max r`` over the positions that pass (0: off).
        """
        resolved = self.statistic(z) > threshold
        if frac > 0 and resolved.any():
            resolved &= self.reducible >= frac * float(self.reducible[resolved].max())
        return resolved


def _linear_fit(b: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares of ``Y = E + r b`` with ``r >= 0``, per column: (E, r, rss); ``b``, ``Y`` of shape (n, P)."""
    bc = b - b.mean(axis=0)
    yc = Y - Y.mean(axis=0)
    sbb = np.einsum("ip,ip->p", bc, bc)
    sby = np.einsum("ip,ip->p", bc, yc)
    syy = np.einsum("ip,ip->p", yc, yc)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(sbb > 0, sby / sbb, 0.0)
    r = np.clip(r, 0.0, None)
    rss = np.where(r > 0, syy - r * sby, syy)
    return Y.mean(axis=0) - r * b.mean(axis=0), r, np.maximum(rss, 0.0)


def _profile(t: np.ndarray, Y: np.ndarray, log_alpha: np.ndarray) -> np.ndarray:
    """RSS of every column of ``Y`` (n, P) at its own ``alpha = exp(log_alpha)`` (P,)."""
    return _linear_fit(np.exp(-np.outer(t, np.exp(log_alpha))), Y)[2]


def fit_positions(x: np.ndarray, losses: np.ndarray, *, alpha_range: tuple[float, float] = ALPHA_RANGE,
                  n_alpha: int = N_ALPHA) -> PositionFits:
    """Fit ``L_p(x) = E_p + r_p (x / x_max)^-alpha_p`` to every position by least squares.

    Parameters
    ----------
    x
        Scale of each run (D, C or N), shape (n_runs,), positive.
    losses
        Per-position loss in nats, shape (n_runs, n_positions).
    alpha_range, n_alpha
        Search range of the exponents and the size of its log grid.

    Returns
    -------
    PositionFits
        The parameters, the standard error of the reducible loss and the fitted curves.
    """
    x = np.asarray(x, float)
    Y = np.asarray(losses, float)
    n, n_pos = Y.shape
    x_max = float(x.max())
    t = np.log(x / x_max)  # <= 0: the basis (x / x_max)^-alpha is >= 1 and 1 at x_max
    grid = np.linspace(math.log(alpha_range[0]), math.log(alpha_range[1]), n_alpha)
    basis = np.exp(-np.outer(np.exp(grid), t))  # (K, n)
    bc = basis - basis.mean(axis=1, keepdims=True)
    yc = Y - Y.mean(axis=0)
    sbb = np.einsum("ki,ki->k", bc, bc)
    sby = bc @ yc  # (K, P)
    syy = np.einsum("ip,ip->p", yc, yc)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = sby / sbb[:, None]
    rss_grid = np.where(slope > 0, syy[None, :] - slope * sby, syy[None, :])
    k = np.argmin(rss_grid, axis=0)
    decreasing = np.take_along_axis(slope, k[None, :], axis=0)[0] > 0
    # -1: alpha_p at the lower edge (a straight decline in ln x), +1: at the upper edge (saturated
    # after the smallest scales); the constrained optimum sits on the edge, where alpha_p is fixed
    bound = np.where(decreasing & (k == 0), -1, np.where(decreasing & (k == n_alpha - 1), 1, 0)).astype(np.int8)
    # golden section on ln alpha between the neighbours of the best grid point
    lo = grid[np.clip(k - 1, 0, n_alpha - 1)]
    hi = grid[np.clip(k + 1, 0, n_alpha - 1)]
    for _ in range(_N_GOLDEN):
        c, d = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
        left = _profile(t, Y, c) < _profile(t, Y, d)
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
    log_alpha = 0.5 * (lo + hi)
    worse = _profile(t, Y, log_alpha) > rss_grid[k, np.arange(n_pos)]
    log_alpha = np.where(worse | (bound != 0), grid[k], log_alpha)
    alpha = np.exp(log_alpha)
    b = np.exp(-np.outer(t, alpha))  # (n, P)
    E, r, rss = _linear_fit(b, Y)
    r = np.where(decreasing, r, 0.0)
    E = np.where(r > 0, E, Y.mean(axis=0))
    rss = np.where(r > 0, rss, syy)
    fitted = E[None, :] + r[None, :] * b
    free = bound == 0
    s2 = np.maximum(rss, 0.0) / np.where(free, n - 3, n - 2)
    # resolution of r_p: its standard error at the fitted exponent, s^2 / sum (b - mean b)^2
    bc = b - b.mean(axis=0)
    sbb = np.einsum("ip,ip->p", bc, bc)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where((r > 0) & (sbb > 0), np.sqrt(s2 / sbb), math.nan)
    # full covariance s^2 (J^T J)^-1 of (E, r, alpha) where alpha_p is free (columns scaled to unit norm)
    J = np.stack([np.ones_like(b), b, -r[None, :] * t[:, None] * b], axis=-1).transpose(1, 0, 2)  # (P, n, 3)
    norms = np.linalg.norm(J, axis=1)  # (P, 3)
    norms = np.where((norms > 0) & np.isfinite(norms), norms, 1.0)
    Js = J / norms[:, None, :]
    jtj = np.einsum("pik,pil->pkl", Js, Js)
    ok = np.all(np.isfinite(jtj), axis=(1, 2))
    jtj[~ok] = np.eye(3)
    sv = np.linalg.svd(jtj, compute_uv=False)
    ok &= sv[:, -1] * _MAX_COND >= sv[:, 0]
    jtj[~ok] = np.eye(3)
    cov_rr = np.linalg.inv(jtj)[:, 1, 1] / norms[:, 1] ** 2
    se_full = np.where(ok, np.sqrt(s2 * cov_rr), math.inf)
    se_full = np.where(r > 0, np.where(free, se_full, se), math.nan)
    return PositionFits(E=E, reducible=r, alpha=alpha, reducible_se=se, reducible_se_full=se_full,
                        alpha_bound=bound, rss=rss, noise=np.sqrt(s2), fitted=fitted, x_max=x_max)


def null_threshold(x: np.ndarray, z: float, *, seed: int = 0, n_sim: int | None = None,
                   alpha_range: tuple[float, float] = ALPHA_RANGE) -> float:
    """Critical value ``c(z)`` of ``r_p / se_p`` for positions that do not change with scale.

    Flat positions with Gaussian noise at the scales ``x`` are simulated (the statistic does not
    depend on the noise level) and fitted as in :func:`fit_positions`; ``c(z)`` is the quantile
    they exceed with probability ``P(N(0, 1) > z)``; positions that fail the other conditions of
    :meth:`PositionFits.learnable` count as 0.

    Parameters
    ----------
    x
        Scale of each run, shape (n_runs,).
    z
        Nominal one-sided significance in standard-normal units.
    seed
        Seed of the simulation.
    n_sim
        Simulated positions (default: enough for about 100 beyond the quantile, 4000 to 100000).
    alpha_range
        Search range of the exponents, as in the fits.

    Returns
    -------
    float
        The critical value.
    """
    p = 0.5 * math.erfc(z / math.sqrt(2.0))
    if n_sim is None:
        n_sim = int(min(max(math.ceil(100.0 / max(p, 1e-12)), 4000), 100_000))
    rng = np.random.default_rng([abs(int(seed)), 0x5EED])
    stats = []
    for start in range(0, n_sim, 20_000):
        fits = fit_positions(x, rng.standard_normal((len(x), min(20_000, n_sim - start))), alpha_range=alpha_range)
        stats.append(fits.statistic(z))
    return float(np.quantile(np.concatenate(stats), 1.0 - p))


def _edges(mask: np.ndarray) -> tuple[int | None, int | None]:
    idx = np.flatnonzero(mask)
    return (int(idx[0]), int(idx[-1])) if len(idx) else (None, None)


@dataclass
class WindowResult:
    """The learnable window, the per-position fits behind it and their bootstrap uncertainties."""

    #: learnable positions (0-based)
    positions: list[int]
    fits: PositionFits
    learnable: np.ndarray
    z: float
    #: critical value of ``r_p / se_p`` for ``z`` (:func:`null_threshold`)
    threshold: float
    frac: float
    #: percentile intervals of the window's start, end, size and summed reducible loss over the resamples
    ci: dict[str, list[float]]
    size_std: float
    #: per position: percentile interval (n_positions, 2) and standard deviation of ``r_p`` over the resamples
    reducible_ci: np.ndarray
    reducible_std: np.ndarray
    #: per position: fraction of the resamples in which it is learnable
    learnable_fraction: np.ndarray
    #: fraction of the resamples with at least one learnable position
    nonempty_fraction: float
    level: float
    n_runs: int
    n_resamples: int
    seed: int
    alpha_range: tuple[float, float] = ALPHA_RANGE

    @property
    def start(self) -> int | None:
        """First learnable position (None: no window)."""
        return self.positions[0] if self.positions else None

    @property
    def end(self) -> int | None:
        """Last learnable position (None: no window)."""
        return self.positions[-1] if self.positions else None

    @property
    def size(self) -> int:
        """Number of learnable positions."""
        return len(self.positions)

    @property
    def contiguous(self) -> bool:
        """Whether the learnable positions form one range."""
        return bool(self.positions) and self.positions[-1] - self.positions[0] + 1 == len(self.positions)

    @property
    def reducible_total(self) -> float:
        """Summed reducible loss of the window's positions at the largest scale (nats)."""
        return float(self.fits.reducible[self.learnable].sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (NaN and inf are left to the caller's serialiser)."""
        f = self.fits
        low, high = self.alpha_range
        return {
            "params": {"start": self.start, "end": self.end, "size": self.size,
                       "reducible_total": self.reducible_total},
            "ci": self.ci, "confidence_level": self.level,
            "window": {"positions": list(self.positions), "start": self.start, "end": self.end, "size": self.size,
                       "size_std": self.size_std, "contiguous": self.contiguous,
                       "nonempty_fraction": self.nonempty_fraction},
            "definition": {
                "fit": f"L_p(x) = E_p + r_p (x / x_max)^-alpha_p per position, least squares in nats, r_p >= 0, "
                       f"alpha_p in [{low:g}, {high:g}]",
                "reducible": "r_p = L_p(x_max) - E_p at the largest scale measured x_max (a lower bound where "
                             "alpha_p is on the lower edge)",
                "se": "standard error of r_p at the fitted alpha_p, s_p / sqrt(sum (b_i - mean b)^2), "
                      "b_i = (x_i / x_max)^-alpha_p, s_p^2 = RSS_p / (n_runs - 3)",
                "learnable": (f"r_p / se_p > c(z) = {self.threshold:.4g} (z = {self.z:g}: a flat position passes "
                              f"with probability P(N(0,1) > z)) and alpha_p not on the upper edge"
                              + (f" and r_p >= {self.frac:g} max r" if self.frac > 0 else "")),
                "window": "the set of learnable positions (0-based); start/end: first/last; size: how many",
            },
            "z": self.z, "threshold": self.threshold, "frac": self.frac,
            "per_position": {
                "reducible": f.reducible.tolist(), "reducible_se": f.reducible_se.tolist(),
                "reducible_se_full": f.reducible_se_full.tolist(),
                "reducible_std": self.reducible_std.tolist(), "reducible_ci": self.reducible_ci.tolist(),
                "z_score": f.z_score.tolist(), "E": f.E.tolist(), "alpha": f.alpha.tolist(),
                "alpha_bound": [{-1: "lower", 1: "upper"}.get(int(v)) for v in f.alpha_bound],
                "learnable": self.learnable.tolist(), "learnable_fraction": self.learnable_fraction.tolist(),
            },
            "x_max": f.x_max, "n_positions": len(f.reducible), "n_runs": self.n_runs,
            "bootstrap": {"method": "residual bootstrap over runs (percentile)", "n_resamples": self.n_resamples,
                          "seed": self.seed, "confidence_level": self.level},
        }


def learnable_window(x: np.ndarray, losses: np.ndarray, *, z: float = 2.0, frac: float = 0.0,
                     n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
                     x_name: str = "x", alpha_range: tuple[float, float] = ALPHA_RANGE) -> WindowResult:
    """Measure the learnable window (see the module docstring for the definition).

    Parameters
    ----------
    x
        Scale of each run (tokens seen, FLOPs or parameters), shape (n_runs,).
    losses
        Per-position validation loss in nats, shape (n_runs, n_positions).
    z
        One-sided significance (standard-normal units) that a position's reducible loss must reach.
    frac
        Optional relative threshold: also require ``r_p >= frac * max r`` over the positions that pass (0: off).
    n_resamples, seed, level
        Seeded residual bootstrap over runs for the uncertainties (0: none); ``seed`` also seeds
        the simulation of :func:`null_threshold`.
    x_name
        Column name of ``x`` for error messages.
    alpha_range
        Search range of the per-position exponents.

    Returns
    -------
    WindowResult

    Raises
    ------
    DataError
        Shapes that do not match, non-finite values, non-positive scales, fewer than 4 distinct scales.
    """
    x = np.asarray(x, float)
    losses = np.asarray(losses, float)
    if losses.ndim != 2 or losses.shape[0] != len(x):
        raise DataError(f"per-position losses of shape {losses.shape} do not match {len(x)} runs of {x_name!r}")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise DataError(f"column {x_name!r} must be finite and positive")
    if not np.all(np.isfinite(losses)):
        raise DataError("per-position losses must be finite")
    n_distinct = len(np.unique(x))
    if n_distinct < 4:
        raise DataError(f"column {x_name!r} has {n_distinct} distinct value(s): the learnable window fits "
                        f"E_p + r_p (x/x_max)^-alpha_p per position and needs at least 4 distinct scales")
    if not (0.0 < alpha_range[0] < alpha_range[1] < math.inf):
        raise DataError(f"alpha_range must be 0 < low < high, got {alpha_range}")
    if not math.isfinite(z):
        raise DataError(f"window z must be finite, got {z}")
    if not 0.0 < level < 1.0:
        raise DataError(f"confidence level must be in (0, 1), got {level}")
    fits = fit_positions(x, losses, alpha_range=alpha_range)
    threshold = null_threshold(x, z, seed=seed, alpha_range=alpha_range)
    learnable = fits.learnable(threshold, z, frac)
    positions = np.flatnonzero(learnable).tolist()
    n, n_pos = losses.shape
    resid = (losses - fits.fitted) * math.sqrt(n / (n - 3))
    centre = np.where(learnable[None, :], fits.fitted, losses.mean(axis=0))
    rng = np.random.default_rng(seed)
    sizes, starts, ends, totals = [], [], [], []
    boot_r = np.empty((n_resamples, n_pos))
    counts = np.zeros(n_pos)
    for i in range(n_resamples):
        fb = fit_positions(x, centre + resid[rng.integers(0, n, n)], alpha_range=alpha_range)
        mask = fb.learnable(threshold, z, frac)
        boot_r[i] = fb.reducible
        counts += mask
        sizes.append(int(mask.sum()))
        s0, e0 = _edges(mask)
        starts.append(math.nan if s0 is None else s0)
        ends.append(math.nan if e0 is None else e0)
        totals.append(float(fb.reducible[learnable].sum()))
    tail = 50.0 * (1.0 - level)
    nan = np.full(n_pos, math.nan)
    return WindowResult(
        positions=positions, fits=fits, learnable=learnable, z=z, threshold=threshold, frac=frac,
        ci={key: percentile_ci(np.asarray(values, float), level)
            for key, values in (("start", starts), ("end", ends), ("size", sizes), ("reducible_total", totals))},
        size_std=float(np.std(sizes, ddof=1)) if n_resamples > 1 else math.nan,
        reducible_ci=np.percentile(boot_r, [tail, 100.0 - tail], axis=0).T if n_resamples else np.c_[nan, nan],
        reducible_std=boot_r.std(axis=0, ddof=1) if n_resamples > 1 else nan,
        learnable_fraction=counts / n_resamples if n_resamples else nan,
        nonempty_fraction=float(np.mean(np.asarray(sizes) > 0)) if n_resamples else math.nan,
        level=level, n_runs=n, n_resamples=n_resamples, seed=seed, alpha_range=alpha_range,
    )
