"""Robust fits of scaling laws and their seeded bootstrap intervals.

Every law (:mod:`hepscale.fit.laws`) is fitted the way the Chinchilla replication did it
(Besiroglu et al. 2024, Epoch AI, github.com/kyo-takano/chinchilla): parameters that multiply or
add are kept in log space and combined with log-sum-exp, the loss is a Huber loss
(``delta = 1e-3``) of the residuals summed over points, L-BFGS-B runs from every point of a grid
of starting values, and the best end point is kept. Residuals are taken in log y by default
(``y_scale="log"``: ``log prediction - log y``) or in y (``y_scale="linear"``). Logarithms are
natural.

Uncertainties come from a seeded bootstrap over runs (rows): every resample is refitted
(warm-started from the distinct optima of the full-data fit), and percentile intervals are
taken over the resampled parameters.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hepscale.fit._optimize import Minimum, minimize_multistart, single_threaded_blas
from hepscale.fit.laws import Law, get_law

__all__ = [
    "DEFAULT_HUBER_DELTA",
    "Bootstrap",
    "LawFit",
    "bootstrap_law",
    "fit_law",
    "prediction_band",
    "validate",
]

logger = logging.getLogger(__name__)

#: Huber threshold of the Chinchilla replication (on log residuals)
DEFAULT_HUBER_DELTA = 1e-3


# -- fitting --------------------------------------------------------------------------------------


@dataclass
class LawFit:
    """Result of :func:`fit_law`."""

    law: Law
    theta: np.ndarray
    params: dict[str, float]
    derived: dict[str, float]
    #: summed Huber loss at the optimum
    loss: float
    converged: bool
    message: str
    #: names of the parameters (``theta_names``) that ended on a bound
    at_bound: list[str]
    n_points: int
    y_scale: str
    delta: float
    n_starts: int
    #: root mean square of the residuals (in ``y_scale``) and R^2 of the fit in that scale
    rmse: float
    r2: float
    #: distinct optima of the multi-start fit, best first (theta rows), and their objective
    optima: np.ndarray = field(repr=False, default_factory=lambda: np.empty((0, 0)))
    optima_values: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    def warm_starts(self, n_starts: int, *, tolerance: float = 0.1) -> np.ndarray:
        """The best optimum and up to ``n_starts - 1`` other distinct optima whose objective is
        within ``tolerance`` (relative) of the best: starting points for refits of resamples."""
        if not self.optima.size:
            return self.theta[None, :]
        keep = self.optima_values <= self.optima_values[0] * (1.0 + tolerance)
        keep[0] = True
        return self.optima[keep][: max(1, n_starts)]

    def predict(self, *X: np.ndarray) -> np.ndarray:
        """Prediction of y at ``X`` (arrays in the order of ``law.variables``)."""
        return self.law.predict(self.theta, X)

    def quality(self) -> dict[str, Any]:
        """Fit quality and status as a JSON-ready dict."""
        return {
            "huber_loss": self.loss, "huber_delta": self.delta, "residual_scale": self.y_scale,
            "rmse": self.rmse, "r2": self.r2, "n_points": self.n_points, "n_params": len(self.params),
            "n_starts": self.n_starts, "converged": self.converged, "message": self.message,
            "at_bound": list(self.at_bound),
        }


def _as_arrays(X: Sequence[np.ndarray] | np.ndarray, y: np.ndarray, law: Law) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    if isinstance(X, np.ndarray) and X.ndim == 1:
        X = (X,)
    arrays = tuple(np.asarray(x, dtype=float).ravel() for x in X)
    y = np.asarray(y, dtype=float).ravel()
    if len(arrays) != len(law.variables):
        raise ValueError(f"law {law.name!r} needs {len(law.variables)} variable(s) {law.variables}, got {len(arrays)}")
    for name, x in zip(law.variables, arrays):
        if len(x) != len(y):
            raise ValueError(f"variable {name!r} has {len(x)} values but y has {len(y)}")
    return arrays, y


def validate(law: Law, X: tuple[np.ndarray, ...], y: np.ndarray, *, y_scale: str,
             names: Mapping[str, str] | None = None) -> None:
    """Check the data of a fit; raise ``ValueError`` naming the variable (column) that is wrong.

    ``names`` maps law variables (``"N"``, ``"y"`` ...) to the column names shown in messages.
    """
    names = dict(names or {})

    def label(var: str) -> str:
        return f"{var} (column {names[var]!r})" if var in names else var

    n_params = len(law.theta_names)
    for var, values in (*zip(law.variables, X), ("y", y)):
        bad = ~np.isfinite(values)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise ValueError(f"{label(var)} has {int(bad.sum())} non-finite value(s) (NaN or inf), e.g. at row(s) {rows}")
    for var, values in zip(law.variables, X):
        if np.any(values <= 0):
            raise ValueError(f"{label(var)} must be positive (it enters as a logarithm); "
                             f"found {int(np.sum(values <= 0))} value(s) <= 0")
    if np.any(y < 0):
        raise ValueError(f"{label('y')} has {int(np.sum(y < 0))} negative value(s); losses and metrics must be >= 0")
    if y_scale == "log" and np.any(y == 0):
        raise ValueError(f"{label('y')} has zeros, which have no logarithm; use y_scale='linear'")
    if len(y) < n_params:
        raise ValueError(f"{len(y)} point(s) for law {law.name!r} with {n_params} parameters: need at least {n_params}")
    for var, values in zip(law.variables, X):
        if var == "U":
            continue
        distinct = np.unique(values)
        if len(distinct) < 2:
            raise ValueError(f"{label(var)} has a single distinct value ({distinct[0]:g}): "
                             f"law {law.name!r} cannot be fitted along it")
    n_distinct = len(np.unique(np.column_stack(X), axis=0))
    if n_distinct < n_params:
        raise ValueError(f"only {n_distinct} distinct value(s) of {', '.join(label(v) for v in law.variables)} "
                         f"for law {law.name!r} with {n_params} parameters")


def fit_law(
    law: str | Law,
    X: Sequence[np.ndarray] | np.ndarray,
    y: np.ndarray,
    *,
    y_scale: str | None = None,
    delta: float = DEFAULT_HUBER_DELTA,
    starts: np.ndarray | None = None,
    names: Mapping[str, str] | None = None,
) -> LawFit:
    """Fit ``law`` to points ``(X, y)`` by Huber loss from a grid of starts with L-BFGS-B.

    Parameters
    ----------
    law
        A law or its name (see :data:`LAWS`).
    X
        One array per variable of the law (``law.variables``), each of shape (n,); for
        single-variable laws a 1-d array is accepted.
    y
        Observed values (e.g. validation loss in nats), shape (n,).
    y_scale
        ``"log"``: residuals ``ln(prediction) - ln(y)``; ``"linear"``: ``prediction - y``.
        Default: the law's (log for all but ``log``).
    delta
        Huber threshold, in units of the residuals.
    starts
        Starting points in ``theta`` (shape (m, k)); default ``law.starts(X, y)``.
    names
        Column name of each variable, for error messages.

    Returns
    -------
    LawFit
    """
    law = get_law(law)
    X, y = _as_arrays(X, y, law)
    y_scale = y_scale or law.default_y_scale
    validate(law, X, y, y_scale=y_scale, names=names)
    if starts is None:
        starts = law.starts(X, y)
    target = np.log(y) if y_scale == "log" else y
    result = minimize_multistart(law.model(y_scale), X, target, starts, bounds=law.bounds(), delta=delta,
                                 fused=law.fused_objective(y_scale))
    return _make_fit(law, X, y, target, result, y_scale=y_scale, delta=delta)


def _make_fit(law: Law, X, y, target, result: Minimum, *, y_scale: str, delta: float) -> LawFit:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pred = law.model(y_scale)(result.theta, X)[0]
    resid = pred - target
    ss_tot = float(np.sum((target - target.mean()) ** 2))
    params = law.params(result.theta)
    at_bound = [law.theta_names[i] for i in result.at_bound]
    if not result.converged:
        logger.warning("fit of %s did not converge: %s", law.name, result.message)
    if at_bound:
        logger.warning("fit of %s ended on a bound of %s", law.name, ", ".join(at_bound))
    return LawFit(
        law=law, theta=result.theta, params=params, derived=law.derived(params), loss=result.value,
        converged=result.converged, message=result.message, at_bound=at_bound, n_points=len(y),
        y_scale=y_scale, delta=delta, n_starts=result.n_starts,
        rmse=float(np.sqrt(np.mean(resid**2))),
        r2=float(1.0 - np.sum(resid**2) / ss_tot) if ss_tot > 0 else math.nan,
        optima=result.optima, optima_values=result.optima_values,
    )


# -- bootstrap ------------------------------------------------------------------------------------


@dataclass
class Bootstrap:
    """Seeded bootstrap of a fit over its points (runs)."""

    #: theta of every successful resample, shape (n_ok, k)
    thetas: np.ndarray = field(repr=False)
    #: reported parameters of every successful resample, name -> (n_ok,)
    samples: dict[str, np.ndarray] = field(repr=False)
    #: derived quantities of every successful resample, name -> (n_ok,)
    derived_samples: dict[str, np.ndarray] = field(repr=False)
    n_resamples: int
    n_failed: int
    seed: int
    level: float

    def ci(self, values: np.ndarray) -> list[float]:
        """Percentile interval at :attr:`level` of ``values`` (NaN ignored)."""
        values = np.asarray(values, float)
        values = values[np.isfinite(values)]
        if not len(values):
            return [math.nan, math.nan]
        tail = 50.0 * (1.0 - self.level)
        low, high = np.percentile(values, [tail, 100.0 - tail])
        return [float(low), float(high)]

    def intervals(self) -> dict[str, list[float]]:
        """Percentile interval of every parameter."""
        return {name: self.ci(values) for name, values in self.samples.items()}

    def derived_intervals(self) -> dict[str, list[float]]:
        """Percentile interval of every derived quantity."""
        return {name: self.ci(values) for name, values in self.derived_samples.items()}

    def std(self) -> dict[str, float]:
        """Standard deviation of every parameter over the resamples."""
        out = {}
        for name, values in self.samples.items():
            finite = values[np.isfinite(values)]
            with np.errstate(over="ignore", invalid="ignore"):  # parameters near 1e300 (at a bound): inf
                out[name] = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no samples)."""
        return {"method": "percentile", "confidence_level": self.level, "n_resamples": self.n_resamples,
                "n_failed": self.n_failed, "seed": self.seed, "std": self.std()}


def _distinct_enough(law: Law, X: tuple[np.ndarray, ...]) -> bool:
    for var, values in zip(law.variables, X):
        if var != "U" and np.ptp(values) == 0:
            return False
    return len(np.unique(np.column_stack(X), axis=0)) >= len(law.theta_names)


def _bootstrap_chunk(law: Law, X, target, starts, bounds, delta, y_scale, indices) -> np.ndarray:
    out = np.full((len(indices), len(law.theta_names)), np.nan)
    model, fused = law.model(y_scale), law.fused_objective(y_scale)
    with single_threaded_blas():
        for row, idx in enumerate(indices):
            Xb = tuple(x[idx] for x in X)
            if not _distinct_enough(law, Xb):
                continue
            try:
                out[row] = minimize_multistart(model, Xb, target[idx], starts, bounds=bounds, delta=delta,
                                               limit_threads=False, fused=fused).theta
            except RuntimeError:
                continue
    return out


def bootstrap_law(
    fit: LawFit,
    X: Sequence[np.ndarray] | np.ndarray,
    y: np.ndarray,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    n_starts: int = 3,
    starts: np.ndarray | None = None,
    n_jobs: int = 1,
    progress: bool = False,
) -> Bootstrap:
    """Refit ``fit`` on ``n_resamples`` resamples (with replacement) of the points.

    The resample indices are drawn up front from ``numpy.random.default_rng(seed)``, so the
    result depends on ``seed`` only, not on ``n_jobs``.

    Parameters
    ----------
    fit
        The full-data fit (gives the law, residual scale, Huber delta and warm starts).
    X, y
        The data of ``fit``.
    n_resamples
        Number of bootstrap resamples.
    seed
        Seed of the resampling.
    level
        Confidence level of the percentile intervals (0.95: 2.5th to 97.5th percentile).
    n_starts
        Each resample starts from the best optimum of the full-data fit and up to
        ``n_starts - 1`` other distinct optima within 10% of its objective
        (:meth:`LawFit.warm_starts`). Ignored when ``starts`` is given.
    starts
        Explicit starting points for every resample (e.g. the full grid).
    n_jobs
        Worker processes (1: in this process).
    progress
        Show a tqdm progress bar.
    """
    law = fit.law
    X, y = _as_arrays(X, y, law)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if starts is None:
        starts = fit.warm_starts(n_starts)
    target = np.log(y) if fit.y_scale == "log" else y
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(y), size=(n_resamples, len(y)))
    bounds = law.bounds()
    args = (law, X, target, starts, bounds, fit.delta, fit.y_scale)
    from tqdm.auto import tqdm

    chunk = max(1, min(25, n_resamples // max(1, 4 * n_jobs)))
    pieces = [indices[i:i + chunk] for i in range(0, n_resamples, chunk)]
    results: list[np.ndarray | None] = [None] * len(pieces)
    with tqdm(total=n_resamples, desc=f"bootstrap {law.name}", unit="fit", disable=not progress, leave=False) as bar:
        if n_jobs <= 1:
            for i, piece in enumerate(pieces):
                results[i] = _bootstrap_chunk(*args, piece)
                bar.update(len(piece))
        else:
            # spawn: forking a process whose BLAS threads are running can deadlock (and warns on 3.12+)
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
                futures = {pool.submit(_bootstrap_chunk, *args, piece): i for i, piece in enumerate(pieces)}
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    bar.update(len(pieces[i]))
    thetas_all = np.concatenate([r for r in results if r is not None])
    ok = np.all(np.isfinite(thetas_all), axis=1)
    thetas = thetas_all[ok]
    n_failed = int((~ok).sum())
    if n_failed:
        logger.warning("%d of %d bootstrap resamples could not be fitted", n_failed, n_resamples)
    params = [law.params(theta) for theta in thetas]
    derived = [law.derived(p) for p in params]
    samples = {name: np.array([p[name] for p in params]) for name in law.param_names}
    derived_samples = {name: np.array([d[name] for d in derived]) for name in (derived[0] if derived else {})}
    return Bootstrap(thetas=thetas, samples=samples, derived_samples=derived_samples, n_resamples=n_resamples,
                     n_failed=n_failed, seed=seed, level=level)


def prediction_band(law: Law, thetas: np.ndarray, X: Sequence[np.ndarray], *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile band of the law's prediction over bootstrap ``thetas``.

    Returns ``(low, high)``, each of the shape of the arrays in ``X``.
    """
    X = tuple(np.asarray(x, float) for x in X)
    preds = np.array([law.predict(theta, X) for theta in thetas])
    tail = 50.0 * (1.0 - level)
    with np.errstate(invalid="ignore"):
        low, high = np.nanpercentile(preds, [tail, 100.0 - tail], axis=0)
    return low, high
