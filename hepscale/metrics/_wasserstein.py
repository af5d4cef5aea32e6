"""One-dimensional Wasserstein distances and the compiled kernels of the SWD.

Private module of :mod:`hepscale.metrics.swd` (which re-exports :func:`wasserstein_1d` and
:func:`check_sample`). The exact distances:

- equal sizes, no weights: ``W_p^p = mean |sort(u) - sort(v)|^p`` (sorting);
- unequal sizes or weights: the quantile functions of both weighted empirical distributions
  are step functions, and ``W_p^p = int_0^1 |Q_u(t) - Q_v(t)|^p dt`` is integrated exactly by
  walking the merged cumulative weights (:func:`walk`);
- ``p = 1`` bootstrap resamples given as integer multiplicities of presorted pools:
  ``W1 = int |F_a - F_b| dt`` for all resamples at once (:func:`w1_counts_batch`).

Projections are computed and sorted in float32 with a parallel LSD radix sort
(:func:`radix_sort_rows`).

The histogram estimator of W1 is in :mod:`hepscale.metrics._histogram`.

The numba kernels are compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

__all__ = [
    "DEFAULT_P",
    "check_p",
    "check_sample",
    "check_weights",
    "project32",
    "radix_sort_rows",
    "resample_wpp",
    "sorted_projections",
    "w1_counts_batch",
    "walk",
    "walk_batch",
    "wasserstein_1d",
    "wpp_equal",
    "wpp_general",
]

#: order of the Wasserstein distance by default (the earth mover's distance)
DEFAULT_P = 1.0


# ----------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------


def check_sample(
    x: Any, *, name: str = "sample", names: Sequence[str] | None = None, n_features: int | None = None
) -> np.ndarray:
    """Return ``x`` as a float64 array of shape (n_jets, n_features), or raise ``ValueError``.

    Rejects non-2D input, empty samples, a wrong number of features and any NaN or inf,
    naming ``name`` and the offending feature (from ``names`` when given).
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected an array of shape (n_jets, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: the sample is empty (0 jets)")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name}: has {arr.shape[1]} features, expected {n_features}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=0))
        labels = [names[i] if names is not None and i < len(names) else f"feature {i}" for i in bad]
        n_bad = int((~finite.all(axis=1)).sum())
        raise ValueError(f"{name}: {n_bad} jet(s) have NaN or inf values in {labels}")
    return arr


def check_weights(w: Any, n: int, name: str) -> np.ndarray:
    """Per-jet weights ``w`` of shape (n,) normalized to sum 1, or ``ValueError`` naming ``name``."""
    arr = np.asarray(w, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name}: weights must be finite and non-negative")
    total = arr.sum()
    if total <= 0:
        raise ValueError(f"{name}: weights sum to zero")
    return arr / total


def check_p(p: float) -> float:
    """The order ``p`` as a float, or ``ValueError`` unless it is finite and ``>= 1``."""
    p = float(p)
    if not p >= 1.0 or not math.isfinite(p):
        raise ValueError(f"p must be a finite number >= 1, got {p}")
    return p


# ----------------------------------------------------------------------------------------
# compiled kernels
# ----------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def walk(xv, xi, wx, yv, yi, wy, p):  # pragma: no cover - compiled
    """Exact W_p^p between two weighted 1D samples given sorted values and their orders.

    ``xv`` sorted values, ``xi`` the original index of each sorted value, ``wx`` weights by
    original index (summing to 1); same for y. The quantile functions are step functions;
    the integral of |Q_x - Q_y|^p runs over the merged cumulative weights.
    """
    nx = xv.shape[0]
    ny = yv.shape[0]
    i = 0
    j = 0
    cx = wx[xi[0]]
    cy = wy[yi[0]]
    prev = 0.0
    total = 0.0
    while True:
        d = abs(float(xv[i]) - float(yv[j]))
        if p != 1.0:
            d = d**p
        if cx <= cy:
            total += (cx - prev) * d
            prev = cx
            i += 1
            if i == nx:
                break
            cx += wx[xi[i]]
        else:
            total += (cy - prev) * d
            prev = cy
            j += 1
            if j == ny:
                break
            cy += wy[yi[j]]
    return total


@numba.njit(cache=True, parallel=True)
def walk_batch(xs, xo, wx, ys, yo, wy, p):  # pragma: no cover - compiled
    """W_p^p for every (weight row, projection): xs/xo (P, Nx), wx (R, Nx) -> (R, P)."""
    n_proj = xs.shape[0]
    n_rows = wx.shape[0]
    out = np.empty((n_rows, n_proj))
    for t in numba.prange(n_rows * n_proj):
        r = t // n_proj
        k = t % n_proj
        out[r, k] = walk(xs[k], xo[k], wx[r], ys[k], yo[k], wy[r], p)
    return out


@numba.njit(cache=True, parallel=True)
def w1_counts_batch(av, ao, bv, bo, counts):  # pragma: no cover - compiled
    """Exact W1 * n for every (resample, projection) from integer multiplicities.

    ``av``/``ao`` (P, Na): sorted projected values of pool a and their original indices;
    same for b. ``counts`` (Na + Nb, R): the multiplicity of each pool-a jet in each of the
    R resamples, followed by minus the multiplicities of the pool-b jets. Walks the merged
    sorted pools once per projection and integrates ``|F_a(t) - F_b(t)|`` for all
    resamples at once (vectorized over R): ``W1 = int |F_a - F_b| dt`` when both resamples
    hold the same number n of jets. Partial sums run in float32 over blocks of 64 steps and
    are added in float64. Returns (R, P) of ``n * W1``.
    """
    n_proj, na = av.shape
    nb = bv.shape[1]
    n_res = counts.shape[1]
    out = np.empty((n_res, n_proj))
    for k in numba.prange(n_proj):
        xa = np.empty(na + 1, dtype=np.float32)
        xa[:na] = av[k]
        xa[na] = np.inf  # sentinels: no bounds checks in the merge
        xb = np.empty(nb + 1, dtype=np.float32)
        xb[:nb] = bv[k]
        xb[nb] = np.inf
        diff = np.zeros(n_res, dtype=np.int32)
        acc = np.zeros(n_res)
        blk = np.zeros(n_res, dtype=np.float32)
        i = 0
        j = 0
        t = min(xa[0], xb[0])
        for step in range(na + nb):
            va = xa[i]
            vb = xb[j]
            take_a = va <= vb
            if take_a:
                v = va
                row = ao[k, i]
            else:
                v = vb
                row = na + bo[k, j]
            i += take_a
            j += 1 - take_a
            gap = np.float32(v - t)
            t = v
            for r in range(n_res):
                blk[r] += np.float32(abs(diff[r])) * gap
            for r in range(n_res):
                diff[r] += counts[row, r]
            if (step & 63) == 63:
                for r in range(n_res):
                    acc[r] += blk[r]
                    blk[r] = 0.0
        for r in range(n_res):
            out[r, k] = acc[r] + blk[r]
    return out


@numba.njit(cache=True, parallel=True)
def radix_sort_rows(proj, with_index):  # pragma: no cover - compiled
    """Sort every row of a float32 (P, n) array; optionally also return the sorting order.

    LSD radix sort (3 passes of 11 bits) on the float bits mapped to order-preserving
    unsigned keys; rows in parallel. Several times faster than ``np.sort``/``np.argsort``
    for rows of 10^4 - 10^5 values. Returns (values (P, n) float32, order (P, n) int32, or
    (P, 0) when ``with_index`` is False). NaN must not occur (inputs are checked before).
    """
    n_rows, n = proj.shape
    out_v = np.empty((n_rows, n), dtype=np.float32)
    out_i = np.empty((n_rows, n if with_index else 0), dtype=np.int32)
    sign = np.uint32(0x80000000)
    for r in numba.prange(n_rows):
        keys = proj[r].copy().view(np.uint32)
        for t in range(n):
            u = keys[t]
            keys[t] = ~u if u & sign else u | sign
        kb = np.empty(n, dtype=np.uint32)
        idx = np.arange(n).astype(np.int32) if with_index else np.empty(0, dtype=np.int32)
        ib = np.empty(n if with_index else 0, dtype=np.int32)
        for shift in (0, 11, 22):
            cnt = np.zeros(2048, dtype=np.int64)
            for t in range(n):
                cnt[(keys[t] >> shift) & 2047] += 1
            if cnt[(keys[0] >> shift) & 2047] == n:
                continue  # every key has the same digit: nothing to do in this pass
            s = 0
            for b in range(2048):
                c = cnt[b]
                cnt[b] = s
                s += c
            for t in range(n):
                d = (keys[t] >> shift) & 2047
                pos = cnt[d]
                kb[pos] = keys[t]
                if with_index:
                    ib[pos] = idx[t]
                cnt[d] = pos + 1
            keys, kb = kb, keys
            if with_index:
                idx, ib = ib, idx
        for t in range(n):
            u = keys[t]
            kb[t] = u & np.uint32(0x7FFFFFFF) if u & sign else ~u
        out_v[r] = kb.view(np.float32)
        if with_index:
            out_i[r] = idx
    return out_v, out_i


# ----------------------------------------------------------------------------------------
# W_p^p per direction
# ----------------------------------------------------------------------------------------


def project32(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Projections (P, n) float32, C-contiguous, of (n, d) data on (d, P) directions."""
    return np.ascontiguousarray(theta.T.astype(np.float32) @ np.ascontiguousarray(x.T, dtype=np.float32))


def sorted_projections(x: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (n, d) on (d, P) and sort per projection: values (P, n) float32, order (P, n) int32."""
    return radix_sort_rows(project32(x, theta), True)


def wpp_equal(xp: np.ndarray, yp: np.ndarray, p: float) -> np.ndarray:
    """W_p^p per row of two (P, n) float32 projection arrays of equal, unweighted samples (sorting)."""
    xs = radix_sort_rows(np.ascontiguousarray(xp, dtype=np.float32), False)[0]
    ys = radix_sort_rows(np.ascontiguousarray(yp, dtype=np.float32), False)[0]
    diff = np.abs(xs - ys)
    if p != 1.0:
        diff = diff**p
    return diff.mean(axis=1, dtype=np.float64)


def wpp_general(
    x: np.ndarray, y: np.ndarray, theta: np.ndarray, wx: np.ndarray, wy: np.ndarray, p: float
) -> np.ndarray:
    """W_p^p per direction (P,) of weighted (n, d) and (m, d) samples on (d, P) directions (exact walk)."""
    xs, xo = sorted_projections(x, theta)
    ys, yo = sorted_projections(y, theta)
    return walk_batch(xs, xo, wx[None, :], ys, yo, wy[None, :], float(p))[0]


def resample_wpp(
    av: np.ndarray, ao: np.ndarray, ca: np.ndarray, bv: np.ndarray, bo: np.ndarray, cb: np.ndarray, n_jets: int, p: float
) -> np.ndarray:
    """W_p^p (R, P) between resamples given as multiplicities of presorted pools."""
    if p == 1.0:
        both = np.concatenate([ca, -cb])  # int8 when every multiplicity is <= 127
        return w1_counts_batch(av, ao, bv, bo, both) / n_jets
    wa = np.ascontiguousarray(ca.T, dtype=np.float64) / n_jets
    wb = np.ascontiguousarray(cb.T, dtype=np.float64) / n_jets
    return walk_batch(av, ao, wa, bv, bo, wb, p)


# ----------------------------------------------------------------------------------------
# exact 1D distance
# ----------------------------------------------------------------------------------------


def wasserstein_1d(
    u: Any, v: Any, *, p: float = DEFAULT_P, weights_u: Any = None, weights_v: Any = None
) -> float:
    """Exact p-Wasserstein distance between two 1D empirical distributions.

    Parameters
    ----------
    u, v
        Samples, shapes (n,) and (m,), any units; the result has the same units.
    p
        Order, ``p >= 1`` (default 1: the earth mover's distance).
    weights_u, weights_v
        Optional non-negative weights, shapes (n,) and (m,); normalized internally.

    Returns
    -------
    float
        ``W_p = (int_0^1 |Q_u(t) - Q_v(t)|^p dt)^(1/p)``, computed exactly.
    """
    p = check_p(p)
    a = check_sample(u, name="u")
    b = check_sample(v, name="v")
    if a.shape[1] != 1 or b.shape[1] != 1:
        raise ValueError("wasserstein_1d: u and v must be one-dimensional")
    if weights_u is None and weights_v is None and len(a) == len(b):
        diff = np.abs(np.sort(a[:, 0]) - np.sort(b[:, 0]))
        return float(np.mean(diff**p) ** (1.0 / p))
    wa = check_weights(np.ones(len(a)) if weights_u is None else weights_u, len(a), "weights_u")
    wb = check_weights(np.ones(len(b)) if weights_v is None else weights_v, len(b), "weights_v")
    order_a = np.argsort(a[:, 0]).astype(np.int32)
    order_b = np.argsort(b[:, 0]).astype(np.int32)
    out = walk_batch(
        a[order_a, 0][None, :], order_a[None, :], wa[None, :], b[order_b, 0][None, :], order_b[None, :], wb[None, :], p
    )
    return float(out[0, 0] ** (1.0 / p))
