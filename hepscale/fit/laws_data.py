"""Laws of repeated data and excess parameters (data-constrained scaling, Muennighoff et al. 2023).

Registered in :data:`hepscale.fit.laws.LAWS` as ``repetition``, ``repetition-n`` and
``data-constrained``. Logarithms are natural; parameters that multiply or add are kept in log
space, as in every law of :mod:`hepscale.fit.laws`.

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
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from hepscale.fit.laws import Law, _exp, _lse

__all__ = ["DataConstrainedLaw", "RepetitionLaw", "effective_data"]

_INF = math.inf
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
