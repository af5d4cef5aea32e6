"""Robust multi-start minimisation: Huber loss, grid of starting points, L-BFGS-B.

This is the method of the Chinchilla replication (Besiroglu et al. 2024, Epoch AI): minimise
the sum over points of ``Huber_delta(prediction - target)`` from every point of a grid of
starting values with L-BFGS-B and keep the best end point. The objective and its gradient are
computed with vectorised NumPy from a model that returns its prediction and Jacobian.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

logger = logging.getLogger(__name__)

#: model(theta, X) -> (prediction (n,), Jacobian (n, k)); X is a tuple of arrays (n,)
Model = Callable[[np.ndarray, tuple[np.ndarray, ...]], tuple[np.ndarray, np.ndarray]]
#: fused(theta, X, target, delta) -> (Huber objective, gradient): the same numbers as
#: :func:`objective` with the law's model, computed in one compiled pass (a law may provide one)
Fused = Callable[[np.ndarray, tuple[np.ndarray, ...], np.ndarray, float], tuple[float, np.ndarray]]

#: L-BFGS-B settings: the Huber objective with delta = 1e-3 is small in absolute terms, so the
#: default stopping tolerances (ftol 2.2e-9 relative, gtol 1e-5 absolute) stop too early (a
#: bootstrap refit warm-started at the full-data optimum would barely move). With these, end
#: points agree with those of far tighter settings (ftol 1e-14, gtol 1e-12) to ~1e-5 relative.
LBFGSB_OPTIONS: dict[str, float | int] = {"maxiter": 2000, "ftol": 1e-11, "gtol": 1e-9, "maxls": 50}


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread for the duration of the block (when ``threadpoolctl`` is installed).

    L-BFGS-B calls BLAS on vectors of a handful of elements; with a multithreaded OpenBLAS the
    threads' spinning costs several times the useful CPU time (measured: 22 s instead of 2.4 s of
    CPU for a 256-start joint fit on 2 cores). Without ``threadpoolctl`` the fit is correct, only
    slower; set ``OPENBLAS_NUM_THREADS=1`` in the environment instead.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:
        logger.debug("threadpoolctl not installed: BLAS threads not limited during fits")
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of residuals ``r`` and its derivative.

    ``0.5 r^2`` for ``|r| <= delta``, ``delta (|r| - delta / 2)`` beyond (as ``scipy.special.huber``).
    Returns ``(loss, dloss/dr)``, both of the shape of ``r``.
    """
    dr = np.clip(r, -delta, delta)
    # dr (r - dr / 2) is r^2 / 2 inside the threshold and delta (|r| - delta / 2) outside
    return dr * (r - 0.5 * dr), dr


def objective(
    theta: np.ndarray, model: Model, X: tuple[np.ndarray, ...], target: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """Sum of Huber losses of ``model(theta, X) - target`` and its gradient in ``theta``."""
    with np.errstate(over="ignore", invalid="ignore"):
        pred, jac = model(theta, X)
        r = pred - target
        dr = np.clip(r, -delta, delta)
        # no BLAS (matmul) here: for arrays this small, multithreaded OpenBLAS calls cost more
        # CPU time than they save and compete with bootstrap worker processes
        value = float(np.sum(dr * (r - 0.5 * dr)))
        grad = np.einsum("ij,i->j", jac, dr)
    if not np.isfinite(value) or not np.all(np.isfinite(grad)):
        # outside the domain of the model (e.g. a log of a negative prediction): a large finite
        # value sends the line search back without poisoning L-BFGS-B's history with NaN
        return 1e300, np.zeros_like(theta)
    return value, grad


def _guarded(fused: Fused) -> Callable[..., tuple[float, np.ndarray]]:
    """``fused`` with :func:`objective`'s treatment of values outside the model's domain."""

    def fun(theta: np.ndarray, X: tuple[np.ndarray, ...], target: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
        value, grad = fused(theta, X, target, delta)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(theta)
        return float(value), grad

    return fun


@dataclass
class Minimum:
    """Result of a multi-start minimisation."""

    theta: np.ndarray
    value: float
    converged: bool
    message: str
    n_starts: int
    n_converged: int
    at_bound: list[int] = field(default_factory=list)
    #: distinct end points, best first, shape (k, n_theta); used to warm-start bootstrap fits
    optima: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    #: objective at each of :attr:`optima`
    optima_values: np.ndarray = field(default_factory=lambda: np.empty(0))


def minimize_multistart(
    model: Model,
    X: tuple[np.ndarray, ...],
    target: np.ndarray,
    starts: np.ndarray,
    *,
    bounds: list[tuple[float, float]],
    delta: float,
    n_optima: int = 8,
    limit_threads: bool = True,
    fused: Fused | None = None,
) -> Minimum:
    """Run L-BFGS-B from every row of ``starts`` and keep the lowest objective.

    Parameters
    ----------
    model
        ``model(theta, X) -> (prediction, jacobian)``.
    X, target
        Inputs (tuple of arrays of shape (n,)) and targets (n,).
    starts
        Starting points, shape (m, k). Starts outside ``bounds`` are clipped into them.
    bounds
        ``(low, high)`` per parameter.
    delta
        Huber threshold.
    n_optima
        How many distinct end points to keep in :attr:`Minimum.optima`.
    limit_threads
        Run under :func:`single_threaded_blas` (callers that loop over many fits set it once
        around the loop and pass False).
    fused
        The law's compiled objective (:meth:`hepscale.fit.laws.Law.fused_objective`), used
        instead of :func:`objective` with ``model`` when given; same value and gradient.
    """
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    low = np.array([b[0] for b in bounds])
    high = np.array([b[1] for b in bounds])
    starts = np.clip(starts, low, high)
    context = single_threaded_blas() if limit_threads else contextlib.nullcontext()
    results = []
    fun, args = (_guarded(fused), (X, target, delta)) if fused is not None else (objective, (model, X, target, delta))
    with context, warnings.catch_warnings():
        # L-BFGS-B may warn when the line search hits the 1e300 wall; the outcome is checked below
        warnings.simplefilter("ignore", RuntimeWarning)
        for theta0 in starts:
            res = minimize(
                fun, theta0, args=args, jac=True, method="L-BFGS-B",
                bounds=bounds, options=LBFGSB_OPTIONS,
            )
            if np.isfinite(res.fun) and res.fun < 1e299:
                results.append(res)
    if not results:
        raise RuntimeError("the fit failed from every starting point (objective not finite)")
    results.sort(key=lambda res: res.fun)
    best = results[0]
    n_converged = sum(bool(res.success) for res in results)
    # distinct optima, best first (end points of the same basin agree to ~1e-3)
    optima: list[np.ndarray] = []
    optima_values: list[float] = []
    for res in results:
        if len(optima) >= n_optima:
            break
        if not any(np.allclose(res.x, other, rtol=1e-3, atol=1e-3) for other in optima):
            optima.append(res.x)
            optima_values.append(float(res.fun))
    span = np.where(np.isfinite(high - low), high - low, 1.0)
    tol = 1e-6 * np.maximum(span, 1.0)
    at_bound = [i for i, x in enumerate(best.x) if (x - low[i] <= tol[i]) or (high[i] - x <= tol[i])]
    return Minimum(
        theta=np.asarray(best.x, dtype=float),
        value=float(best.fun),
        converged=bool(best.success),
        message=str(best.message),
        n_starts=len(starts),
        n_converged=n_converged,
        at_bound=at_bound,
        optima=np.array(optima),
        optima_values=np.array(optima_values),
    )
