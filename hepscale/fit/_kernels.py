"""Compiled objectives of the laws fitted most often (numba): the joint law's bootstrap refits
spend most of their time evaluating the Huber objective on a few hundred points, where NumPy's
per-call overhead dominates. Each kernel returns exactly what :func:`hepscale.fit._optimize.objective`
returns for the law's NumPy model (tested against it)."""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["chinchilla_log_huber"]


@numba.njit(cache=True, nogil=True)
def chinchilla_log_huber(theta: np.ndarray, N: np.ndarray, D: np.ndarray, target: np.ndarray,
                         delta: float) -> tuple[float, np.ndarray]:
    """Sum over points of Huber_delta(ln L(N, D) - target) and its gradient in
    ``theta = (ln E, ln A, ln B, alpha, beta)``, ``L = E + A / N^alpha + B / D^beta``
    (``ln L`` as a log-sum-exp of ``ln E``, ``ln A - alpha ln N``, ``ln B - beta ln D``)."""
    e, a, b, alpha, beta = theta[0], theta[1], theta[2], theta[3], theta[4]
    value = 0.0
    grad = np.zeros(5)
    for i in range(N.shape[0]):
        ln_n, ln_d = math.log(N[i]), math.log(D[i])
        t1, t2 = a - alpha * ln_n, b - beta * ln_d
        m = max(e, t1, t2)
        w0, w1, w2 = math.exp(e - m), math.exp(t1 - m), math.exp(t2 - m)
        s = w0 + w1 + w2
        r = m + math.log(s) - target[i]
        dr = min(max(r, -delta), delta)
        value += dr * (r - 0.5 * dr)
        g = dr / s
        grad[0] += g * w0
        grad[1] += g * w1
        grad[2] += g * w2
        grad[3] -= g * w1 * ln_n
        grad[4] -= g * w2 * ln_d
    return value, grad
