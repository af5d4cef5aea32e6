"""Scaling laws and their robust fits with seeded bootstrap intervals.

Laws
----
Every law gives its prediction and Jacobian in log-space parameters: parameters that multiply or
add are kept in log space and combined with log-sum-exp (the method of the Chinchilla replication
by Epoch AI); every law gives its default grid of starting points and its bounds for L-BFGS-B.
Logarithms are natural. The compute-optimal allocation is in :mod:`hepscale.fit.optimal`.

Laws (``LAWS``):

``power``
    ``y = (x_c / x)^alpha``
``power-offset``
    ``y = y_inf + A x^-alpha``
``log``
    ``y = a - b ln x`` (default ``y_scale="linear"``)
``chinchilla``
    ``L(N, D) = E + A / N^alpha + B / D^beta``
``repetition``
    ``L(D, U) = E + B / D'^beta`` with the effective data of data-constrained scaling
    (Muennighoff et al. 2023) ``D' = U_D + U_D R* (1 - exp(-R_D / R*))``, ``U_D = min(U, D)``,
    ``R_D = D / U_D - 1`` (``D' = D`` up to one epoch)
``repetition-n``
    ``L(N, D, U) = E + A / N^alpha + B / D'^beta``
``data-constrained``
    ``L(N, D, U) = E + A / N'^alpha + B / D'^beta``, the full law of Muennighoff et al. (2023),
    eq. (5)-(7), with effective parameters ``N'`` beyond the compute-optimal size for the unique data

Laws of repeated data and excess parameters
-------------------------------------------
Repeated data. Of ``D`` tokens (or jets) seen, ``U_D = min(U, D)`` are unique: a run that stops
before the end of its ``U`` unique tokens has seen only ``D`` of them. ``R_D = D / U_D - 1 >= 0``
counts the repetitions beyond the first pass, and the effective data is

    D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),

so ``D' = D`` for up to one epoch, the first repetitions are worth almost as much as fresh data,
and ``D'`` tends to ``U_D (1 + R_D*)``: repetition multiplies the data by at most ``1 + R_D*``.

Excess parameters (``data-constrained`` only). ``U_N`` is the compute-optimal parameter count for
``U_D`` tokens under the law's own ``A, B, alpha, beta`` (the ``N_opt`` of the Chinchilla
allocation at the budget where ``D_opt = U_D``), capped at ``N``:

    U_N = min(N_opt(U_D), N),  N_opt(U_D) = G (G U_D)^(beta / alpha),  G = (alpha A / (beta B))^(1 / (alpha + beta)),

equivalently ``ln N_opt(U_D) = (ln(alpha A / (beta B)) + beta ln U_D) / alpha``. With ``R_N = N / U_N - 1``
the parameters beyond ``U_N`` are worth less and less,

    N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),   L = E + A / N'^alpha + B / D'^beta   (paper, eq. 5-7).

Both ``D'`` (as a function of ``U``) and ``N'`` (as a function of ``U_N``) join their one-epoch /
no-excess branch with a continuous first derivative, so the fits see a smooth objective.

Fits
----
Every law is fitted the way the Chinchilla replication did it
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

import itertools
import logging
import math
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hepscale.fit._optimize import Minimum, minimize_multistart, single_threaded_blas
from hepscale.fit.optimal import compute_optimal

__all__ = [
    "DEFAULT_HUBER_DELTA",
    "EPOCH_GRID",
    "LAWS",
    "Bootstrap",
    "DataConstrainedLaw",
    "Law",
    "LawFit",
    "RepetitionLaw",
    "bootstrap_law",
    "effective_data",
    "fit_law",
    "get_law",
    "percentile_ci",
    "prediction_band",
    "validate",
]

logger = logging.getLogger(__name__)

_INF = math.inf


def _lse(*terms: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """log(sum(exp(terms))) and the softmax weights d/dterm_i, computed stably."""
    stack = np.broadcast_arrays(*terms)
    m = np.maximum.reduce(stack)
    weights = [np.exp(t - m) for t in stack]
    total = np.add.reduce(weights)
    return m + np.log(total), [w / total for w in weights]


class Law:
    """A scaling law: prediction and Jacobian in the optimisation variables ``theta``.

    Subclasses define ``log_model`` (prediction of ln y) or ``linear_model`` (prediction of y);
    the other is derived. ``theta`` holds log-space parameters (``e = ln E`` ...);
    :meth:`params` turns it into the reported parameters.
    """

    name: str = ""
    formula: str = ""
    #: variables the law needs, in order (e.g. ``("x",)``, ``("N", "D")``)
    variables: tuple[str, ...] = ()
    theta_names: tuple[str, ...] = ()
    param_names: tuple[str, ...] = ()
    default_y_scale: str = "log"

    # -- model -------------------------------------------------------------------------------
    def log_model(self, theta: np.ndarray, X: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Prediction of ln y, shape (n,), and its Jacobian in ``theta``, shape (n, k)."""
        y, jac = self.linear_model(theta, X)
        return np.log(y), jac / y[:, None]

    def linear_model(self, theta: np.ndarray, X: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Prediction of y, shape (n,), and its Jacobian in ``theta``, shape (n, k)."""
        f, jac = self.log_model(theta, X)
        y = np.exp(f)
        return y, jac * y[:, None]

    def fused_objective(self, y_scale: str) -> Any:
        """A compiled Huber objective with gradient for residuals in ``y_scale``
        (:data:`hepscale.fit._optimize.Fused`), or None (the default: :func:`hepscale.fit._optimize.objective`
        evaluates :meth:`model` with NumPy). Laws fitted in bootstraps of many resamples provide one."""
        return None

    def model(self, y_scale: str) -> Any:
        """The model function for residuals in ``y_scale`` (``"log"`` or ``"linear"``)."""
        if y_scale == "log":
            return self.log_model
        if y_scale == "linear":
            return self.linear_model
        raise ValueError(f"y_scale must be 'log' or 'linear', got {y_scale!r}")

    def predict(self, theta: np.ndarray, X: tuple[np.ndarray, ...]) -> np.ndarray:
        """Prediction of y at ``X`` (tuple of arrays or numbers in the order of :attr:`variables`).

        The result has the broadcast shape of the arrays of ``X`` (0-d for numbers).
        """
        arrays = np.broadcast_arrays(*(np.asarray(x, float) for x in X))
        shape = arrays[0].shape if arrays else ()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            y = self.linear_model(np.asarray(theta, dtype=float), tuple(a.ravel() for a in arrays))[0]
        return y.reshape(shape)

    # -- parameters --------------------------------------------------------------------------
    def params(self, theta: np.ndarray) -> dict[str, float]:
        """Reported parameters from ``theta``."""
        raise NotImplementedError

    def theta(self, params: Mapping[str, float]) -> np.ndarray:
        """``theta`` from reported parameters (inverse of :meth:`params`)."""
        raise NotImplementedError

    def bounds(self) -> list[tuple[float, float]]:
        """``(low, high)`` of each element of ``theta`` for L-BFGS-B."""
        return [(-_INF, _INF)] * len(self.theta_names)

    def starts(self, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        """Default grid of starting points, shape (m, k), adapted to the scale of the data."""
        raise NotImplementedError

    def derived(self, params: Mapping[str, float]) -> dict[str, float]:
        """Quantities derived from the parameters (e.g. compute-optimal exponents)."""
        return {}

    def __repr__(self) -> str:
        return f"<Law {self.name}: {self.formula}>"


def _exp(value: float) -> float:
    """``exp`` that gives inf instead of raising or warning on overflow (parameters at a bound)."""
    return math.exp(value) if value < 709.0 else math.inf


def _grid(*axes: Sequence[float]) -> np.ndarray:
    return np.array(list(itertools.product(*axes)), dtype=float)


class PowerLaw(Law):
    """``y = (x_c / x)^alpha``; ``theta = (ln x_c, alpha)``."""

    name = "power"
    formula = "y = (x_c / x)^alpha"
    variables = ("x",)
    theta_names = ("log_x_c", "alpha")
    param_names = ("x_c", "alpha")

    def log_model(self, theta, X):
        lxc, alpha = theta
        lx = np.log(X[0])
        jac = np.empty((len(lx), 2))
        jac[:, 0] = alpha
        jac[:, 1] = lxc - lx
        return alpha * (lxc - lx), jac

    def params(self, theta):
        return {"x_c": _exp(float(theta[0])), "alpha": float(theta[1])}

    def theta(self, params):
        return np.array([math.log(params["x_c"]), params["alpha"]])

    def bounds(self):
        return [(-_INF, _INF), (0.0, 10.0)]

    def starts(self, X, y):
        lx, ly = np.log(X[0]), np.log(y)
        rows = []
        for alpha in (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6):
            for shift in (-1.0, 0.0, 1.0):
                rows.append((np.mean(ly + shift) / alpha + np.mean(lx), alpha))
        return np.array(rows)


class PowerOffsetLaw(Law):
    """``y = y_inf + A x^-alpha``; ``theta = (ln y_inf, ln A, alpha)``."""

    name = "power-offset"
    formula = "y = y_inf + A x^-alpha"
    variables = ("x",)
    theta_names = ("log_y_inf", "log_A", "alpha")
    param_names = ("y_inf", "A", "alpha")

    def log_model(self, theta, X):
        e, a, alpha = theta
        lx = np.log(X[0])
        f, (w_e, w_a) = _lse(np.full_like(lx, e), a - alpha * lx)
        jac = np.column_stack([w_e, w_a, -w_a * lx])
        return f, jac

    def params(self, theta):
        return {"y_inf": _exp(float(theta[0])), "A": _exp(float(theta[1])), "alpha": float(theta[2])}

    def theta(self, params):
        return np.array([math.log(params["y_inf"]), math.log(params["A"]), params["alpha"]])

    def bounds(self):
        return [(-30.0, 30.0), (-_INF, _INF), (0.0, 10.0)]

    def starts(self, X, y):
        lx_med = float(np.median(np.log(X[0])))
        y_min, y_med = float(np.min(y)), float(np.median(y))
        return np.array([
            (math.log(fe * y_min), math.log(s * y_med) + alpha * lx_med, alpha)
            for fe in (0.05, 0.3, 0.6, 0.9)
            for s in (0.05, 0.2, 0.5, 1.0)
            for alpha in (0.05, 0.15, 0.3, 0.6, 1.0)
        ])


class LogLaw(Law):
    """``y = a - b ln x``; ``theta = (a, b)``."""

    name = "log"
    formula = "y = a - b ln(x)"
    variables = ("x",)
    theta_names = ("a", "b")
    param_names = ("a", "b")
    default_y_scale = "linear"

    def linear_model(self, theta, X):
        a, b = theta
        lx = np.log(X[0])
        return a - b * lx, np.column_stack([np.ones_like(lx), -lx])

    def params(self, theta):
        return {"a": float(theta[0]), "b": float(theta[1])}

    def theta(self, params):
        return np.array([params["a"], params["b"]])

    def starts(self, X, y):
        lx = np.log(X[0])
        slope, intercept = np.polyfit(lx, y, 1)
        rows = []
        for factor in (0.0, 0.5, 1.0, 2.0):
            b = -slope * factor
            rows.append((float(np.mean(y) + b * np.mean(lx)), b))
        return np.array(rows)

    def derived(self, params):
        return {"b_per_decade": params["b"] * math.log(10.0)}


class ChinchillaLaw(Law):
    """``L(N, D) = E + A / N^alpha + B / D^beta``; ``theta = (ln E, ln A, ln B, alpha, beta)``."""

    name = "chinchilla"
    formula = "L(N, D) = E + A / N^alpha + B / D^beta"
    variables = ("N", "D")
    theta_names = ("e", "a", "b", "alpha", "beta")
    param_names = ("E", "A", "B", "alpha", "beta")

    def log_model(self, theta, X):
        e, a, b, alpha, beta = theta
        lN, lD = np.log(X[0]), np.log(X[1])
        f, (w_e, w_a, w_b) = _lse(np.full_like(lN, e), a - alpha * lN, b - beta * lD)
        jac = np.column_stack([w_e, w_a, w_b, -w_a * lN, -w_b * lD])
        return f, jac

    def fused_objective(self, y_scale):
        if y_scale != "log":
            return None
        from hepscale.fit._kernels import chinchilla_log_huber

        def fused(theta, X, target, delta):
            return chinchilla_log_huber(np.asarray(theta, dtype=np.float64), X[0], X[1], target, float(delta))

        return fused

    def params(self, theta):
        e, a, b, alpha, beta = (float(t) for t in theta)
        return {"E": _exp(e), "A": _exp(a), "B": _exp(b), "alpha": alpha, "beta": beta}

    def theta(self, params):
        return np.array([math.log(params["E"]), math.log(params["A"]), math.log(params["B"]),
                         params["alpha"], params["beta"]])

    def bounds(self):
        return [(-30.0, 30.0), (-100.0, 200.0), (-100.0, 200.0), (0.0, 10.0), (0.0, 10.0)]

    def starts(self, X, y):
        lN_med, lD_med = float(np.median(np.log(X[0]))), float(np.median(np.log(X[1])))
        y_min, y_med = float(np.min(y)), float(np.median(y))
        exps = (0.1, 0.3, 0.6, 1.0)
        return np.array([
            (math.log(fe * y_min), math.log(sa * y_med) + alpha * lN_med, math.log(sb * y_med) + beta * lD_med,
             alpha, beta)
            for fe in (0.1, 0.4, 0.7, 0.9)
            for sa, alpha in itertools.product((0.05, 0.3), exps)
            for sb, beta in itertools.product((0.05, 0.3), exps)
        ])

    def derived(self, params):
        opt = compute_optimal(params, 6.0)  # C / 6 = 1 gives G directly
        alpha, beta = params["alpha"], params["beta"]
        total = alpha + beta
        return {
            "G": float(opt["N_opt"]),
            "a_N_opt": beta / total if total > 0 else math.nan,
            "b_D_opt": alpha / total if total > 0 else math.nan,
        }



# -- laws of repeated data ----------------------------------------------------------------------

#: lower bound of the exponents of the data-constrained law: U_N divides by alpha and takes ln(beta)
_MIN_EXPONENT = 1e-3


def effective_data(D: np.ndarray, U: np.ndarray, R_star: float) -> np.ndarray:
    """Effective data ``D' = U_D + U_D R* (1 - exp(-R_D / R*))``, ``U_D = min(U, D)``, ``R_D = D / U_D - 1``.

    Parameters
    ----------
    D
        Tokens (or jets) seen, any shape.
    U
        Unique tokens (or jets) available, broadcastable with ``D``.
    R_star
        Repetition constant ``R*`` (> 0).

    Returns
    -------
    numpy.ndarray
        ``D'`` in the units of ``D``: ``D`` itself up to one epoch, at most ``U (1 + R*)``.
    """
    D, U = np.asarray(D, float), np.asarray(U, float)
    U_D = np.minimum(U, D)
    R = D / U_D - 1.0
    return U_D * (1.0 + R_star * -np.expm1(-R / R_star))


def _log_saturating(r: float, R: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``ln(1 + s q)`` with ``s = exp(r)``, ``q = 1 - exp(-R / s)``; its derivatives in ``r`` and in ``R``."""
    s = math.exp(r)
    q = -np.expm1(-R / s)
    inner = 1.0 + s * q
    d_r = s * (q - (1.0 - q) * R / s) / inner  # d(s q)/ds * ds/dr
    d_R = (1.0 - q) / inner
    return np.log(inner), d_r, d_R


class RepetitionLaw(Law):
    """Data-constrained scaling with effective data ``D' = U_D + U_D R* (1 - exp(-R_D / R*))``.

    ``U_D = min(U, D)`` and ``R_D = D / U_D - 1`` (the number of repetitions beyond the first pass,
    0 below one epoch); see the module docstring. Repeated data is worth less and less: ``D'`` tends
    to ``U_D (1 + R*)``, so repetition can multiply the effective data by at most ``1 + R*`` (the
    bounded gain factor). ``theta = (ln E, ln B, beta, ln R*)`` (+ ``ln A, alpha`` with ``with_n``).
    """

    variables = ("D", "U")

    def __init__(self, *, with_n: bool = False) -> None:
        self.with_n = with_n
        eff = "D' = U_D + U_D R* (1 - exp(-R_D / R*)),  U_D = min(U, D),  R_D = D/U_D - 1"
        if with_n:
            self.name = "repetition-n"
            self.formula = f"L(N, D, U) = E + A / N^alpha + B / D'^beta,  {eff}"
            self.variables = ("D", "U", "N")
            self.theta_names = ("e", "b", "beta", "log_R_star", "a", "alpha")
            self.param_names = ("E", "B", "beta", "R_star", "A", "alpha")
        else:
            self.name = "repetition"
            self.formula = f"L(D, U) = E + B / D'^beta,  {eff}"
            self.theta_names = ("e", "b", "beta", "log_R_star")
            self.param_names = ("E", "B", "beta", "R_star")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_repetition, (self.with_n,))

    #: ``D'`` of :func:`effective_data`, kept as a method of the law
    effective_data = staticmethod(effective_data)

    def log_model(self, theta, X):
        D, U = X[0], X[1]
        e, b, beta, r = theta[:4]
        U_D = np.minimum(U, D)
        log_gain, dlog_dr, _ = _log_saturating(r, D / U_D - 1.0)
        lDeff = np.log(U_D) + log_gain
        terms = [np.full_like(D, e), b - beta * lDeff]
        if self.with_n:
            a, alpha = theta[4], theta[5]
            lN = np.log(X[2])
            terms.append(a - alpha * lN)
        f, w = _lse(*terms)
        cols = [w[0], w[1], -w[1] * lDeff, -w[1] * beta * dlog_dr]
        if self.with_n:
            cols += [w[2], -w[2] * lN]
        return f, np.column_stack(cols)

    def params(self, theta):
        out = {"E": _exp(theta[0]), "B": _exp(theta[1]), "beta": float(theta[2]), "R_star": _exp(theta[3])}
        if self.with_n:
            out.update({"A": _exp(theta[4]), "alpha": float(theta[5])})
        return out

    def theta(self, params):
        values = [math.log(params["E"]), math.log(params["B"]), params["beta"], math.log(params["R_star"])]
        if self.with_n:
            values += [math.log(params["A"]), params["alpha"]]
        return np.array(values)

    def bounds(self):
        bounds = [(-30.0, 30.0), (-100.0, 200.0), (0.0, 10.0), (math.log(1e-2), math.log(1e6))]
        if self.with_n:
            bounds += [(-100.0, 200.0), (0.0, 10.0)]
        return bounds

    def starts(self, X, y):
        lU_med = float(np.median(np.log(X[1])))
        y_min, y_med = float(np.min(y)), float(np.median(y))
        rows = []
        n_axes: list[tuple[float, float]] = [(0.0, 0.0)]
        if self.with_n:
            lN_med = float(np.median(np.log(X[2])))
            n_axes = [(math.log(sa * y_med) + alpha * lN_med, alpha)
                      for sa, alpha in itertools.product((0.05, 0.3), (0.1, 0.3, 0.6))]
        for fe, sb, beta, rs, (a, alpha) in itertools.product(
            (0.2, 0.5, 0.8), (0.1, 0.5), (0.1, 0.3, 0.6, 1.0), (1.0, 5.0, 20.0, 100.0), n_axes
        ):
            row = [math.log(fe * y_min), math.log(sb * y_med) + beta * lU_med, beta, math.log(rs)]
            if self.with_n:
                row += [a, alpha]
            rows.append(row)
        return np.array(rows)

    def derived(self, params):
        return {"max_gain": 1.0 + params["R_star"]}


def _make_repetition(with_n: bool) -> RepetitionLaw:
    return RepetitionLaw(with_n=with_n)


class DataConstrainedLaw(Law):
    """``L(N, D, U) = E + A / N'^alpha + B / D'^beta`` of Muennighoff et al. (2023), eq. (5)-(7).

    ``D'`` is the effective data of repeated tokens and ``N'`` the effective parameter count of a
    model larger than compute-optimal for its unique data (see the module docstring).
    ``theta = (ln E, ln A, ln B, alpha, beta, ln R_D*, ln R_N*)``.
    """

    name = "data-constrained"
    formula = ("L(N, D, U) = E + A / N'^alpha + B / D'^beta,  D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),  "
               "N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),  U_D = min(U, D),  R_D = D/U_D - 1,  "
               "U_N = min(G (G U_D)^(beta/alpha), N),  R_N = N/U_N - 1,  G = (alpha A / (beta B))^(1/(alpha+beta))")
    variables = ("N", "D", "U")
    theta_names = ("e", "a", "b", "alpha", "beta", "log_R_D_star", "log_R_N_star")
    param_names = ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star")

    @staticmethod
    def log_unique_params(A: float, B: float, alpha: float, beta: float, U_D: np.ndarray) -> np.ndarray:
        """``ln N_opt(U_D) = (ln(alpha A / (beta B)) + beta ln U_D) / alpha`` (before the cap at ``N``)."""
        return (math.log(alpha * A / (beta * B)) + beta * np.log(np.asarray(U_D, float))) / alpha

    @classmethod
    def effective(cls, params: dict[str, float], N: np.ndarray, D: np.ndarray,
                  U: np.ndarray) -> dict[str, np.ndarray]:
        """Per run: ``U_D, R_D, D'`` and ``U_N, R_N, N'`` of the law with ``params`` (reported names).

        Parameters
        ----------
        params
            ``E, A, B, alpha, beta, R_D_star, R_N_star``.
        N, D, U
            Parameters, tokens seen and unique tokens, broadcastable arrays.

        Returns
        -------
        dict
            Arrays ``U_D, R_D, D_eff, U_N, R_N, N_eff``.
        """
        N, D, U = np.broadcast_arrays(*(np.asarray(v, float) for v in (N, D, U)))
        U_D = np.minimum(U, D)
        U_N = np.minimum(np.exp(cls.log_unique_params(params["A"], params["B"], params["alpha"], params["beta"],
                                                      U_D)), N)
        R_D, R_N = D / U_D - 1.0, N / U_N - 1.0
        N_eff = U_N * (1.0 + params["R_N_star"] * -np.expm1(-R_N / params["R_N_star"]))
        return {"U_D": U_D, "R_D": R_D, "D_eff": effective_data(D, U, params["R_D_star"]),
                "U_N": U_N, "R_N": R_N, "N_eff": N_eff}

    def log_model(self, theta, X):
        N, D, U = X
        e, a, b, alpha, beta, rd, rn = theta
        lN = np.log(N)
        U_D = np.minimum(U, D)
        lUD = np.log(U_D)
        log_gain_d, dgd_drd, _ = _log_saturating(rd, D / U_D - 1.0)
        lDeff = lUD + log_gain_d
        # U_N: the compute-optimal parameters for U_D tokens, capped at N
        p = math.log(alpha) - math.log(beta) + a - b + beta * lUD
        lUN_opt = p / alpha
        capped = lUN_opt >= lN
        lUN = np.where(capped, lN, lUN_opt)
        ratio = np.exp(np.minimum(lN - lUN, 700.0))  # N / U_N >= 1
        log_gain_n, dgn_drn, dgn_dR = _log_saturating(rn, ratio - 1.0)
        lNeff = lUN + log_gain_n
        # d ln N' / d ln U_N at fixed N (dR_N / d ln U_N = -N/U_N); 0 where U_N = N
        dlNeff_dlUN = np.where(capped, 0.0, 1.0 - ratio * dgn_dR)
        dlUN = {"a": 1.0 / alpha, "b": -1.0 / alpha, "alpha": (1.0 - p) / alpha**2,
                "beta": (lUD - 1.0 / beta) / alpha}
        f, (w_e, w_a, w_b) = _lse(np.full_like(lN, e), a - alpha * lNeff, b - beta * lDeff)
        g = -w_a * alpha * dlNeff_dlUN  # df / d ln U_N
        jac = np.column_stack([
            w_e,
            w_a + g * dlUN["a"],
            w_b + g * dlUN["b"],
            -w_a * lNeff + g * dlUN["alpha"],
            -w_b * lDeff + g * dlUN["beta"],
            -w_b * beta * dgd_drd,
            -w_a * alpha * dgn_drn,
        ])
        return f, jac

    def params(self, theta):
        e, a, b, alpha, beta, rd, rn = (float(t) for t in theta)
        return {"E": _exp(e), "A": _exp(a), "B": _exp(b), "alpha": alpha, "beta": beta,
                "R_D_star": _exp(rd), "R_N_star": _exp(rn)}

    def theta(self, params):
        return np.array([math.log(params["E"]), math.log(params["A"]), math.log(params["B"]), params["alpha"],
                         params["beta"], math.log(params["R_D_star"]), math.log(params["R_N_star"])])

    def bounds(self):
        r_star = (math.log(1e-2), math.log(1e6))
        return [(-30.0, 30.0), (-100.0, 200.0), (-100.0, 200.0), (_MIN_EXPONENT, 10.0), (_MIN_EXPONENT, 10.0),
                r_star, r_star]

    def starts(self, X, y):
        lN_med, lD_med = float(np.median(np.log(X[0]))), float(np.median(np.log(X[1])))
        y_min, y_med = float(np.min(y)), float(np.median(y))
        return np.array([
            (math.log(fe * y_min), math.log(sa * y_med) + alpha * lN_med, math.log(sb * y_med) + beta * lD_med,
             alpha, beta, math.log(rd), math.log(rn))
            for fe in (0.3, 0.8)
            for sa, alpha in itertools.product((0.05, 0.3), (0.15, 0.4))
            for sb, beta in itertools.product((0.05, 0.3), (0.15, 0.4))
            for rd, rn in ((3.0, 3.0), (15.0, 5.0), (60.0, 20.0))
        ])

    def derived(self, params):
        alpha, beta = params["alpha"], params["beta"]
        total = alpha + beta
        log_g = (math.log(alpha * params["A"] / (beta * params["B"])) / total
                 if alpha > 0 and beta > 0 and params["A"] > 0 and params["B"] > 0 else math.nan)
        return {
            "G": _exp(log_g) if math.isfinite(log_g) else math.nan,
            "a_N_opt": beta / total if total > 0 else math.nan,
            "b_D_opt": alpha / total if total > 0 else math.nan,
            "max_gain_D": 1.0 + params["R_D_star"],
            "max_gain_N": 1.0 + params["R_N_star"],
        }


#: the laws by name
LAWS: dict[str, Law] = {
    law.name: law
    for law in (PowerLaw(), PowerOffsetLaw(), LogLaw(), ChinchillaLaw(), RepetitionLaw(), RepetitionLaw(with_n=True),
                DataConstrainedLaw())
}

#: the fixed starting grid of the Chinchilla replication (Besiroglu et al. 2024) in
#: ``theta = (e, a, b, alpha, beta)`` order: 5 x 6 x 6 x 5 x 5 = 4500 points; suited to language
#: model scales (N ~ 1e8-1e10). The default grid of :class:`ChinchillaLaw` adapts to the data.
EPOCH_GRID: np.ndarray = _grid(
    np.arange(-1.0, 1.01, 0.5), np.arange(0.0, 25.1, 5.0), np.arange(0.0, 25.1, 5.0),
    np.arange(0.0, 2.01, 0.5), np.arange(0.0, 2.01, 0.5),
)


def get_law(name: str | Law) -> Law:
    """The law called ``name`` (one of :data:`LAWS`)."""
    if isinstance(name, Law):
        return name
    try:
        return LAWS[name]
    except KeyError:
        raise ValueError(f"unknown law {name!r}; expected one of {', '.join(LAWS)}") from None


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


def percentile_ci(values: np.ndarray, level: float) -> list[float]:
    """Percentile interval at ``level`` of the finite ``values`` (``[nan, nan]`` when none)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return [math.nan, math.nan]
    tail = 50.0 * (1.0 - level)
    return [float(v) for v in np.percentile(values, [tail, 100.0 - tail])]


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
        return percentile_ci(values, self.level)

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
