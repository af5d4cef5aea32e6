"""Scaling laws: their formula, prediction and Jacobian in log-space parameters.

Parameters that multiply or add are kept in log space and combined with log-sum-exp (the method
of the Chinchilla replication by Epoch AI); every law gives its default grid of starting points
and its bounds for L-BFGS-B. Logarithms are natural. The fits and their bootstrap intervals are
in :mod:`hepscale.fit.fitting`, the compute-optimal allocation in :mod:`hepscale.fit.optimal`;
this module re-exports both, so that every name of ``__all__`` is importable from here.

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

The laws of repeated data are defined in :mod:`hepscale.fit.laws_data` and registered here.
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hepscale.fit.optimal import ChinchillaParams, compute_optimal

if TYPE_CHECKING:
    from hepscale.fit.fitting import (
        DEFAULT_HUBER_DELTA,
        Bootstrap,
        LawFit,
        bootstrap_law,
        fit_law,
        prediction_band,
    )

__all__ = [
    "DEFAULT_HUBER_DELTA",
    "EPOCH_GRID",
    "LAWS",
    "Bootstrap",
    "ChinchillaParams",
    "Law",
    "LawFit",
    "bootstrap_law",
    "compute_optimal",
    "fit_law",
    "get_law",
    "prediction_band",
]

#: names defined in :mod:`hepscale.fit.fitting`, re-exported when first used (that module imports
#: this one, so importing it here at import time would be circular)
_FITTING = ("DEFAULT_HUBER_DELTA", "Bootstrap", "LawFit", "bootstrap_law", "fit_law", "prediction_band", "validate")


def __getattr__(name: str) -> Any:
    if name in _FITTING:
        return getattr(importlib.import_module("hepscale.fit.fitting"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


# the laws of repeated data live in their own module, which builds on the definitions above
from hepscale.fit.laws_data import DataConstrainedLaw, RepetitionLaw  # noqa: E402

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
