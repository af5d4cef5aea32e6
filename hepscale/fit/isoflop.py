"""IsoFLOP and frontier (lower-envelope) analyses of compute scaling.

IsoFLOP (Hoffmann et al. 2022, approach 2): runs are grouped by compute budget C; in each
budget a parabola in ``ln N`` is fitted to the loss, and its minimum gives the compute-optimal
``N_opt``, ``D_opt`` and ``L_opt`` at that budget, kept only when the parabola opens upwards and
the minimum lies inside the measured range of N. Power laws ``N_opt = k_N C^a``,
``D_opt = k_D C^b``, ``L_opt = k_L C^-gamma`` are then fitted by least squares in log-log.

Frontier: the lower envelope of loss against compute over all runs (a run is on the frontier
when no run with less or equal compute reaches a lower loss), fitted with a single-variable law.

Uncertainties: seeded bootstrap over runs (resampled within each budget for isoFLOP).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "IsoFlopResult",
    "Parabola",
    "bootstrap_isoflop",
    "isoflop_analysis",
    "frontier_mask",
    "group_budgets",
    "isoflop_minima",
    "loglog_fit",
]

logger = logging.getLogger(__name__)


def group_budgets(C: np.ndarray, *, rtol: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Group compute values that agree within a relative tolerance.

    Values are sorted in ``ln C``; a new group starts where the gap to the previous value
    exceeds ``ln(1 + rtol)``.

    Parameters
    ----------
    C
        Compute per run in FLOPs, shape (n,).
    rtol
        Relative tolerance that still counts as the same budget.

    Returns
    -------
    labels, budgets
        Group index of every run, shape (n,), and the budget of every group (geometric mean of
        its runs), shape (n_groups,), increasing.
    """
    C = np.asarray(C, dtype=float)
    order = np.argsort(C, kind="stable")
    lc = np.log(C[order])
    new = np.concatenate([[True], np.diff(lc) > math.log1p(rtol)])
    sorted_labels = np.cumsum(new) - 1
    labels = np.empty(len(C), dtype=int)
    labels[order] = sorted_labels
    budgets = np.array([math.exp(lc[sorted_labels == g].mean()) for g in range(sorted_labels[-1] + 1)])
    return labels, budgets


@dataclass
class Parabola:
    """Parabola ``y = c2 u^2 + c1 u + c0`` in ``u = ln N`` through the runs of one budget."""

    budget: float
    coeffs: tuple[float, float, float]
    u_range: tuple[float, float]
    n_runs: int
    n_distinct: int
    #: ``ln N`` at the minimum, or NaN when there is no valid minimum
    u_min: float = math.nan
    y_min: float = math.nan
    d_opt: float = math.nan
    reason: str = ""

    @property
    def valid(self) -> bool:
        return math.isfinite(self.u_min)

    def to_dict(self) -> dict[str, Any]:
        return {
            "C": self.budget, "n_runs": self.n_runs, "n_distinct_N": self.n_distinct,
            "N_range": [math.exp(self.u_range[0]), math.exp(self.u_range[1])],
            "parabola_ln_N": list(self.coeffs), "valid": self.valid,
            "N_opt": math.exp(self.u_min) if self.valid else None,
            "D_opt": self.d_opt if self.valid else None,
            "L_opt": self.y_min if self.valid else None,
            "reason": self.reason or None,
        }


def isoflop_minima(
    N: np.ndarray, D: np.ndarray, y: np.ndarray, labels: np.ndarray, budgets: np.ndarray
) -> list[Parabola]:
    """Fit one parabola in ``ln N`` per budget and find its minimum.

    ``D_opt`` at the minimum is interpolated from a straight line of ``ln D`` against ``ln N``
    through the runs of the budget (so it follows whatever definition of C produced the budget).
    """
    out = []
    for g, budget in enumerate(budgets):
        sel = labels == g
        u, ly, ld = np.log(N[sel]), y[sel], np.log(D[sel])
        n_distinct = len(np.unique(u))
        u_range = (float(u.min()), float(u.max()))
        if n_distinct < 3:
            out.append(Parabola(float(budget), (math.nan,) * 3, u_range, int(sel.sum()), n_distinct,
                                reason=f"{n_distinct} distinct N (need 3 for a parabola)"))
            continue
        c2, c1, c0 = np.polyfit(u, ly, 2)
        par = Parabola(float(budget), (float(c2), float(c1), float(c0)), u_range, int(sel.sum()), n_distinct)
        if c2 <= 0:
            par.reason = "parabola opens downwards (no minimum)"
        else:
            u_star = -c1 / (2.0 * c2)
            if not (u_range[0] <= u_star <= u_range[1]):
                par.reason = f"minimum at N = {math.exp(u_star):.3g} outside the measured range"
            else:
                par.u_min = float(u_star)
                par.y_min = float(c0 - c1 * c1 / (4.0 * c2))
                slope, intercept = np.polyfit(u, ld, 1)
                par.d_opt = float(math.exp(intercept + slope * u_star))
        out.append(par)
    return out


def loglog_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``y = k x^p`` in log-log; returns ``(k, p)`` (NaN with fewer than 2 distinct x)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(np.unique(x)) < 2:
        return math.nan, math.nan
    p, lk = np.polyfit(np.log(x), np.log(y), 1)
    return float(math.exp(lk)), float(p)


def frontier_mask(C: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Runs on the lower envelope of ``y`` against ``C``.

    A run is on the frontier when its ``y`` is lower than that of every run with smaller ``C``;
    among runs of equal ``C`` only the lowest can be. Returns a boolean mask of shape (n,).
    """
    C, y = np.asarray(C, float), np.asarray(y, float)
    order = np.lexsort((y, C))
    mask = np.zeros(len(C), dtype=bool)
    best = math.inf
    for i in order:
        if y[i] < best:
            mask[i] = True
            best = y[i]
    return mask


@dataclass
class IsoFlopResult:
    """Outcome of :func:`isoflop_analysis` on one data set."""

    parabolas: list[Parabola]
    fits: dict[str, float] = field(default_factory=dict)


def isoflop_analysis(N: np.ndarray, D: np.ndarray, C: np.ndarray, y: np.ndarray, *,
                     rtol: float = 0.05) -> IsoFlopResult:
    """Parabolas per budget and power laws of their minima against C.

    Returns the parabolas and ``fits`` with ``k_N, a_N`` (``N_opt = k_N C^a_N``), ``k_D, b_D``,
    ``k_L, gamma_L`` (``L_opt = k_L C^-gamma_L``) and ``n_budgets_used``.
    """
    labels, budgets = group_budgets(C, rtol=rtol)
    return _isoflop_from_groups(N, D, y, labels, budgets)


def _isoflop_from_groups(N, D, y, labels, budgets) -> IsoFlopResult:
    parabolas = isoflop_minima(N, D, y, labels, budgets)
    valid = [p for p in parabolas if p.valid]
    fits: dict[str, float] = {"n_budgets_used": float(len(valid))}
    if len(valid) >= 2:
        Cv = np.array([p.budget for p in valid])
        k_N, a_N = loglog_fit(Cv, np.exp([p.u_min for p in valid]))
        k_D, b_D = loglog_fit(Cv, np.array([p.d_opt for p in valid]))
        k_L, p_L = loglog_fit(Cv, np.array([p.y_min for p in valid]))
        fits.update({"k_N": k_N, "a_N": a_N, "k_D": k_D, "b_D": b_D, "k_L": k_L, "gamma_L": -p_L})
    return IsoFlopResult(parabolas, fits)


def bootstrap_isoflop(N, D, C, y, *, rtol: float = 0.05, n_resamples: int = 1000, seed: int = 0,
                      progress: bool = False) -> dict[str, np.ndarray]:
    """Resample runs within each budget (seeded) and redo :func:`isoflop_analysis`.

    Returns every quantity of ``IsoFlopResult.fits`` over the resamples (NaN where a resample
    has fewer than two valid budgets), plus ``N_opt@<g>`` etc. per budget index g.
    """
    from tqdm.auto import tqdm

    labels, budgets = group_budgets(C, rtol=rtol)
    groups = [np.flatnonzero(labels == g) for g in range(len(budgets))]
    rng = np.random.default_rng(seed)
    keys = ("a_N", "k_N", "b_D", "k_D", "gamma_L", "k_L")
    out: dict[str, list[float]] = {k: [] for k in keys}
    for g in range(len(budgets)):
        for name in ("N_opt", "D_opt", "L_opt"):
            out[f"{name}@{g}"] = []
    for _ in tqdm(range(n_resamples), desc="bootstrap isoflop", disable=not progress, leave=False):
        idx = np.concatenate([rng.choice(members, size=len(members), replace=True) for members in groups])
        res = _isoflop_from_groups(N[idx], D[idx], y[idx], labels[idx], budgets)
        for k in keys:
            out[k].append(res.fits.get(k, math.nan))
        for g, par in enumerate(res.parabolas):
            out[f"N_opt@{g}"].append(math.exp(par.u_min) if par.valid else math.nan)
            out[f"D_opt@{g}"].append(par.d_opt if par.valid else math.nan)
            out[f"L_opt@{g}"].append(par.y_min if par.valid else math.nan)
    return {k: np.array(v) for k, v in out.items()}
