"""Is validation loss a good proxy for a physics metric?

Over a set of runs, the Spearman rank correlation between validation loss and a physics
metric (SWD, background rejection, ...) with its p-value and a bootstrap interval, and a
monotone (isotonic) fit of the metric against the loss with the fraction of variance it explains.
A metric that is a monotone function of the loss has ``|rho| = 1`` and isotonic ``R^2 = 1``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ProxyResult", "proxy_relation"]

logger = logging.getLogger(__name__)


@dataclass
class ProxyResult:
    """Rank correlation and monotone fit of ``metric`` against ``loss``."""

    rho: float
    p_value: float
    rho_ci: list[float]
    level: float
    direction: str
    isotonic_r2: float
    #: isotonic fit evaluated at the sorted losses, shape (n,)
    loss_sorted: np.ndarray
    metric_fit: np.ndarray
    n_runs: int
    n_resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "spearman_rho": self.rho, "p_value": self.p_value, "ci": {"spearman_rho": self.rho_ci},
            "confidence_level": self.level, "monotone_fit": {"method": "isotonic", "direction": self.direction,
                                                             "r2": self.isotonic_r2},
            "n_runs": self.n_runs,
            "bootstrap": {"method": "percentile", "n_resamples": self.n_resamples, "seed": self.seed,
                          "confidence_level": self.level},
        }


def _isotonic(x: np.ndarray, y: np.ndarray, increasing: bool) -> np.ndarray:
    from scipy.optimize import isotonic_regression

    order = np.argsort(x, kind="stable")
    return isotonic_regression(y[order], increasing=increasing).x


def proxy_relation(loss: np.ndarray, metric: np.ndarray, *, n_resamples: int = 1000, seed: int = 0,
                   level: float = 0.95, names: tuple[str, str] = ("loss", "metric")) -> ProxyResult:
    """Spearman correlation (with p-value and bootstrap interval) and isotonic fit.

    Parameters
    ----------
    loss, metric
        Per-run validation loss and physics metric, shape (n,).
    n_resamples, seed, level
        Seeded percentile bootstrap over runs for the interval of ``rho``.
    names
        Column names of the two inputs, for error messages.
    """
    from scipy.stats import spearmanr

    loss, metric = np.asarray(loss, float), np.asarray(metric, float)
    for name, values in zip(names, (loss, metric)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"column {name!r} has {int((~np.isfinite(values)).sum())} non-finite value(s)")
    if len(loss) < 3:
        raise ValueError(f"{len(loss)} run(s): the rank correlation needs at least 3")
    for name, values in zip(names, (loss, metric)):
        if np.ptp(values) == 0:
            raise ValueError(f"column {name!r} has a single distinct value: no rank correlation")
    res = spearmanr(loss, metric)
    rho, p_value = float(res.statistic), float(res.pvalue)
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(loss), len(loss))
        if np.ptp(loss[idx]) == 0 or np.ptp(metric[idx]) == 0:
            continue
        rhos.append(spearmanr(loss[idx], metric[idx]).statistic)
    tail = 50.0 * (1.0 - level)
    rho_ci = [float(v) for v in np.percentile(rhos, [tail, 100.0 - tail])] if rhos else [math.nan, math.nan]
    increasing = rho >= 0
    fit = _isotonic(loss, metric, increasing)
    order = np.argsort(loss, kind="stable")
    ss_tot = float(np.sum((metric - metric.mean()) ** 2))
    r2 = 1.0 - float(np.sum((metric[order] - fit) ** 2)) / ss_tot
    return ProxyResult(rho=rho, p_value=p_value, rho_ci=rho_ci, level=level,
                       direction="increasing" if increasing else "decreasing", isotonic_r2=r2,
                       loss_sorted=loss[order], metric_fit=fit, n_runs=len(loss),
                       n_resamples=n_resamples, seed=seed)
