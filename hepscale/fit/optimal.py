"""Compute-optimal allocation of the Chinchilla law ``L(N, D) = E + A / N^alpha + B / D^beta``.

Under a compute budget ``C = 6 N D`` (FLOPs, N parameters, D tokens) the loss is smallest at
``N_opt = G (C/6)^(beta/(alpha+beta))`` and ``D_opt = G^-1 (C/6)^(alpha/(alpha+beta))`` with
``G = (alpha A / (beta B))^(1/(alpha+beta))`` (Hoffmann et al. 2022, approach 3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["ChinchillaParams", "compute_optimal"]


@dataclass(frozen=True)
class ChinchillaParams:
    """Parameters of ``L(N, D) = E + A / N^alpha + B / D^beta`` (N parameters, D tokens)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    @classmethod
    def from_mapping(cls, params: Mapping[str, float]) -> ChinchillaParams:
        """From a mapping with keys ``E, A, B, alpha, beta`` (e.g. ``LawFit.params``)."""
        return cls(**{name: float(params[name]) for name in ("E", "A", "B", "alpha", "beta")})

    def loss(self, N: np.ndarray | float, D: np.ndarray | float) -> np.ndarray:
        """Predicted loss at ``N`` parameters and ``D`` tokens (broadcast)."""
        N, D = np.asarray(N, float), np.asarray(D, float)
        return self.E + self.A / N**self.alpha + self.B / D**self.beta

    def compute_optimal(self, C: np.ndarray | float) -> dict[str, np.ndarray]:
        """Compute-optimal ``N_opt``, ``D_opt`` and ``L_opt`` at budget ``C = 6 N D`` (FLOPs)."""
        return compute_optimal(self.__dict__, C)


def compute_optimal(params: Mapping[str, float], C: np.ndarray | float) -> dict[str, np.ndarray]:
    """Compute-optimal allocation of ``L(N, D) = E + A/N^alpha + B/D^beta`` under ``C = 6 N D``.

    ``N_opt = G (C/6)^(beta/(alpha+beta))``, ``D_opt = G^-1 (C/6)^(alpha/(alpha+beta))``,
    ``G = (alpha A / (beta B))^(1/(alpha+beta))``.

    Parameters
    ----------
    params
        Mapping with ``E, A, B, alpha, beta``.
    C
        Compute budget(s) in FLOPs, any shape.

    Returns
    -------
    dict
        ``N_opt``, ``D_opt``, ``L_opt`` of the shape of ``C``.
    """
    E, A, B, alpha, beta = (float(params[k]) for k in ("E", "A", "B", "alpha", "beta"))
    C = np.asarray(C, dtype=float)
    total = alpha + beta
    if alpha <= 0 or beta <= 0:
        nan = np.full_like(C, np.nan)
        return {"N_opt": nan, "D_opt": nan.copy(), "L_opt": nan.copy()}
    log_G = (math.log(alpha * A) - math.log(beta * B)) / total
    N_opt = np.exp(log_G + beta / total * np.log(C / 6.0))
    D_opt = np.exp(-log_G + alpha / total * np.log(C / 6.0))
    return {"N_opt": N_opt, "D_opt": D_opt, "L_opt": E + A / N_opt**alpha + B / D_opt**beta}
