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

The histogram estimator of W1 (:func:`hist_w1_batch`, used by the SWD's ``method="histogram"``)
needs no sort: per direction the pooled projections of all samples compared are binned on
adaptive edges (:func:`_bin_grid`: quantile bins, equal-width bins and a refinement of both
tails, all on a fine grid of equal cells, so that finding a value's bin is one multiplication
and one table look-up), each sample's weighted histogram is accumulated (a bootstrap resample
is a column of integer multiplicities: re-weighting, not re-sorting), and W1 is the exact
distance between the histograms with each bin's weight at the mean of the pooled values in
the bin (:func:`_hist_pairs`). Its deviation from the exact W1 is measured in
``benchmarks/bench_swd.py`` (see :mod:`hepscale.metrics.swd`).

The numba kernels are compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_P",
    "HIST_CELLS_PER_BIN",
    "HIST_UNIFORM_SHARE",
    "check_p",
    "check_sample",
    "check_weights",
    "hist_layout",
    "hist_pools",
    "hist_w1",
    "hist_w1_batch",
    "project32",
    "radix_sort_rows",
    "resample_wpp",
    "sorted_projections",
    "w1_counts_batch",
    "w1_histogram",
    "walk",
    "walk_batch",
    "wasserstein_1d",
    "wpp_equal",
    "wpp_general",
]

#: order of the Wasserstein distance by default (the earth mover's distance)
DEFAULT_P = 1.0
#: bins per direction of the histogram estimator by default (chosen in benchmarks/bench_swd.py)
DEFAULT_BINS = 1000
#: one histogram bin in this many is equal-width (the others are quantile bins)
HIST_UNIFORM_SHARE = 5
#: cells of the grid the histogram's bin edges lie on, per bin
HIST_CELLS_PER_BIN = 8


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
# histogram estimator of W1 (compiled)
# ----------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _project_row(xt, theta, k, v):  # pragma: no cover - compiled
    """v = theta[:, k] . x for every column x of xt (d, n) float32; returns (min, max) of v."""
    d, n = xt.shape
    t0 = np.float32(theta[0, k])
    for j in range(n):
        v[j] = t0 * xt[0, j]
    for f in range(1, d):
        t = np.float32(theta[f, k])
        for j in range(n):
            v[j] += t * xt[f, j]
    vmin = v[0]
    vmax = v[0]
    for j in range(n):
        vmin = min(vmin, v[j])
        vmax = max(vmax, v[j])
    return vmin, vmax


@numba.njit(cache=True, nogil=True)
def _cell_pass(v, lo, hi, cells, cnt, total):  # pragma: no cover - compiled
    """Cut ``[lo, hi]`` into ``len(cnt)`` equal cells: ``cells[j]`` the cell of ``v[j]`` (values
    outside go to the first or last cell), ``cnt`` the values per cell, ``total`` their sum."""
    n_cells = cnt.shape[0]
    span = hi - lo
    inv_h = n_cells / span if span > 1e-30 else 0.0  # all values (nearly) equal: one cell
    lo32 = np.float32(lo)
    scale32 = np.float32(inv_h)
    zero = np.float32(0.0)
    top = np.float32(n_cells - 1)
    for j in range(v.shape[0]):
        cells[j] = np.int32(min(max((v[j] - lo32) * scale32, zero), top))
    cnt[:] = 0
    total[:] = 0.0
    for j in range(v.shape[0]):
        c = cells[j]
        cnt[c] += 1
        total[c] += v[j]


@numba.njit(cache=True, nogil=True)
def _bin_grid(
    v, vmin, vmax, ref_from, n_quantile, n_uniform, cells, cnt, total, mark, lut, mean
):  # pragma: no cover - compiled
    """Adaptive bins of the pooled values ``v``; on return ``cells[j]`` is the bin of ``v[j]``.

    ``[vmin, vmax]`` is cut into ``n_cells = len(cnt)`` equal cells and every value is counted
    in its cell (:func:`_cell_pass`). When far values squeeze the central 90% of the reference
    values ``v[ref_from:]`` (estimated from every 16th of them) into fewer than 1/64 of the
    cells, the cells are cut again over that central range widened by 8 times its width on
    both sides, and the values beyond fall into the first or last cell: outliers of the
    generated sample cannot coarsen the bins of the reference.

    Bins are runs of cells whose boundaries are the union of: the cells holding the pooled
    quantiles ``i / n_quantile``; every ``n_cells / n_uniform``-th cell boundary (equal-width
    bins, which bound the bin width where the density is low); and, at both ends, the cells
    where the number of values beyond reaches 1, 2, 4, ... up to one quantile bin (finer bins
    in the tails; the first and last cells are bins of their own). ``mean[b]`` is set to the
    mean of the pooled values in bin ``b`` (that of the bin before when ``b`` is empty).
    Returns ``(n_bins, largest pooled count in one bin)``.
    """
    n = v.shape[0]
    n_cells = cnt.shape[0]
    lo = float(vmin)
    hi = float(vmax)
    _cell_pass(v, lo, hi, cells, cnt, total)
    # the cells of the 5% and 95% quantiles of the reference values (lut as scratch counts)
    lut[:] = 0
    n_sub = 0
    for j in range(ref_from, n, 16):
        lut[cells[j]] += 1
        n_sub += 1
    c5 = 0
    c95 = n_cells - 1
    before = 0
    for c in range(n_cells):
        before += lut[c]
        if 20 * before < n_sub:
            c5 = c + 1
        if 20 * before >= 19 * n_sub:
            c95 = c
            break
    if n_sub > 0 and (c95 - c5 + 1) * 64 < n_cells:
        h = (hi - lo) / n_cells
        width = (c95 - c5 + 1) * h
        new_lo = max(lo, lo + c5 * h - 8 * width)
        hi = min(hi, lo + (c95 + 1) * h + 8 * width)
        lo = new_lo
        _cell_pass(v, lo, hi, cells, cnt, total)
    mark[:] = False
    for i in range(1, n_uniform):
        mark[(i * n_cells) // n_uniform] = True
    n_tail = max(n // n_quantile, 1)
    before = 0
    qi = 1
    ti = 1
    for c in range(n_cells):
        after = before + cnt[c]
        while qi < n_quantile and qi * n <= after * n_quantile:
            if qi * n > before * n_quantile:
                mark[c] = True  # the quantile falls in cell c: a bin starts there
            qi += 1
        while ti <= n_tail and ti <= after:
            if before < ti:
                mark[c + 1] = True  # the lowest ti values end a bin
            ti *= 2
        before = after
    above = 0
    ti = 1
    for c in range(n_cells - 1, -1, -1):
        above_new = above + cnt[c]
        while ti <= n_tail and ti <= above_new:
            if above < ti:
                mark[c] = True  # the highest ti values start a bin
            ti *= 2
        above = above_new
    b = 0
    run = 0
    largest = 0
    run_sum = 0.0
    last = lo
    for c in range(n_cells):
        if mark[c] and c > 0:
            if run > 0:
                last = run_sum / run
            mean[b] = last  # an empty bin takes the mean of the bin before: no distance
            largest = max(largest, run)
            run = 0
            run_sum = 0.0
            b += 1
        lut[c] = b
        run += cnt[c]
        run_sum += total[c]
    mean[b] = run_sum / run if run > 0 else last
    largest = max(largest, run)
    for j in range(n):
        cells[j] = lut[cells[j]]
    return b + 1, largest


@numba.njit(cache=True, nogil=True)
def _accumulate(h, bins, counts):  # pragma: no cover - compiled
    """h[bins[j], :] += counts[j, :] for every row j (a weighted histogram per column)."""
    n_res = counts.shape[1]
    if n_res == 1:
        for j in range(bins.shape[0]):
            h[bins[j], 0] += counts[j, 0]
        return
    for j in range(bins.shape[0]):
        b = bins[j]
        for r in range(n_res):
            h[b, r] += counts[j, r]


@numba.njit(cache=True, nogil=True)
def _hist_pairs(h, bins, counts, offsets, pairs, mean, n_bins, out, k, scale, dl, acc, blk):  # pragma: no cover
    """Histograms of every pool (rows of ``counts`` weigh each jet) and W1 of every pair.

    ``h`` (pools, >= n_bins, R) accumulator; ``out[q, r, k]`` = ``scale * sum_b |D_b|
    (mean[b + 1] - mean[b])`` for pair ``q`` and weight column ``r``, with ``D_b`` the
    difference of the two pools' cumulative weights up to bin ``b``: the exact W1 between
    the two histograms with each bin's weight at the bin's pooled mean position.
    """
    n_res = counts.shape[1]
    h[:, :n_bins, :] = 0
    for p in range(offsets.shape[0] - 1):
        _accumulate(h[p], bins[offsets[p] : offsets[p + 1]], counts[offsets[p] : offsets[p + 1]])
    for q in range(pairs.shape[0]):
        ha = h[pairs[q, 0]]
        hb = h[pairs[q, 1]]
        dl[:] = 0.0
        acc[:] = 0.0
        blk[:] = 0.0
        for b in range(n_bins - 1):
            gap = np.float32(mean[b + 1] - mean[b])
            for r in range(n_res):
                c = dl[r] + (np.float32(ha[b, r]) - np.float32(hb[b, r]))
                dl[r] = c
                blk[r] += abs(c) * gap
            if (b & 63) == 63:  # float32 partial sums over blocks of 64 bins, added in float64
                for r in range(n_res):
                    acc[r] += blk[r]
                    blk[r] = 0.0
        for r in range(n_res):
            out[q, r, k] = (acc[r] + blk[r]) * scale


@numba.njit(cache=True, parallel=True)
def hist_w1_batch(
    xt, theta, offsets, counts, max_count, pairs, n_quantile, n_uniform, n_cells, scale, small, wide, small_limit,
    n_workers,
):  # pragma: no cover - compiled
    """Histogram W1 for every (pair, weight column, direction): returns (Q, R, P) and bins (P,).

    ``xt`` (d, N) float32: the pools' jets side by side, pool ``p`` in columns
    ``offsets[p]:offsets[p + 1]``; ``theta`` (d, P) directions; ``counts`` (N, R) non-negative
    weights of every jet in each of R columns (bootstrap multiplicities, or normalized float
    weights); ``pairs`` (Q, 2) the pools compared. Per direction the pooled projections of all
    pools are binned (:func:`_bin_grid`; the pools after the first are the reference, whose
    central values keep a fine grid), each pool's weighted histogram is accumulated per
    column, and W1 between the two pools of a pair is computed with each bin's weight at the
    bin's pooled mean (:func:`_hist_pairs`), times ``scale``.

    Histograms accumulate in the dtype of ``small`` (a one-element array) when the largest
    pooled bin count times ``max_count`` (the largest weight) is at most ``small_limit``, else
    in the dtype of ``wide``: int16 where no bin can overflow, int32 otherwise. The
    directions are shared out among ``n_workers`` threads, each with its own buffers.
    """
    d, n_tot = xt.shape
    n_proj = theta.shape[1]
    n_res = counts.shape[1]
    n_pools = offsets.shape[0] - 1
    max_bins = n_quantile + n_uniform + 128
    out = np.empty((pairs.shape[0], n_res, n_proj))
    n_bins_out = np.empty(n_proj, dtype=np.int32)
    n_workers = max(min(n_workers, n_proj), 1)
    ref_from = offsets[1] if n_pools > 1 else 0  # every pool after the first: the reference
    for w in numba.prange(n_workers):
        v = np.empty(n_tot, dtype=np.float32)
        bins = np.empty(n_tot, dtype=np.int32)
        cnt = np.empty(n_cells, dtype=np.int32)
        total = np.empty(n_cells)
        mark = np.empty(n_cells + 1, dtype=np.bool_)
        lut = np.empty(n_cells, dtype=np.int32)
        mean = np.empty(max_bins)
        h_small = np.empty((n_pools, max_bins, n_res), dtype=small.dtype)
        h_wide = np.empty((n_pools, max_bins, n_res), dtype=wide.dtype)
        dl = np.empty(n_res, dtype=np.float32)
        acc = np.empty(n_res)
        blk = np.empty(n_res, dtype=np.float32)
        for k in range(w, n_proj, n_workers):
            vmin, vmax = _project_row(xt, theta, k, v)
            n_bins, largest = _bin_grid(
                v, vmin, vmax, ref_from, n_quantile, n_uniform, bins, cnt, total, mark, lut, mean
            )
            n_bins_out[k] = n_bins
            if largest * max_count <= small_limit:
                _hist_pairs(h_small, bins, counts, offsets, pairs, mean, n_bins, out, k, scale, dl, acc, blk)
            else:
                _hist_pairs(h_wide, bins, counts, offsets, pairs, mean, n_bins, out, k, scale, dl, acc, blk)
    return out, n_bins_out


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
# histogram W1 per direction
# ----------------------------------------------------------------------------------------


def hist_layout(bins: int) -> tuple[int, int, int]:
    """(quantile bins, equal-width bins, cells) of a histogram of about ``bins`` bins per direction.

    One bin in :data:`HIST_UNIFORM_SHARE` is equal-width, the others hold equal shares of the
    pooled values; bin edges lie on a grid of :data:`HIST_CELLS_PER_BIN` ``* bins`` cells.
    The refinement of the tails adds at most ``2 log2(n / bins)`` bins.
    """
    bins = int(bins)
    if bins < 10:
        raise ValueError(f"bins must be at least 10, got {bins}")
    n_uniform = max(bins // HIST_UNIFORM_SHARE, 1)
    return bins - n_uniform, n_uniform, HIST_CELLS_PER_BIN * bins


def hist_pools(pools: Sequence[np.ndarray], counts: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Inputs of :func:`hist_w1_batch`: pools (n_i, d) side by side as (d, N) float32, their
    offsets, the weight columns (N, R) stacked, and the largest weight."""
    xt = np.ascontiguousarray(np.concatenate(pools).T, dtype=np.float32)
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in pools])]).astype(np.int64)
    weights = np.ascontiguousarray(np.concatenate(counts))
    return xt, offsets, weights, weights.max()


def hist_w1(
    xt: np.ndarray,
    offsets: np.ndarray,
    weights: np.ndarray,
    max_weight: Any,
    pairs: np.ndarray,
    theta: np.ndarray,
    scale: float,
    bins: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram W1 (Q, R, P) of the pairs of pools on directions ``theta`` (d, P), and the
    number of bins of every direction (P,); inputs from :func:`hist_pools`."""
    n_quantile, n_uniform, n_cells = hist_layout(bins)
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    pairs = np.ascontiguousarray(pairs, dtype=np.int64)
    if weights.dtype.kind in "iu":
        small, wide, limit = np.zeros(1, np.int16), np.zeros(1, np.int32), 32767.0
    else:
        small = wide = np.zeros(1, np.float64)
        limit = np.inf
    return hist_w1_batch(
        xt, theta, offsets, weights, float(max_weight), pairs, n_quantile, n_uniform, n_cells, float(scale),
        small, wide, limit, numba.get_num_threads(),
    )


def w1_histogram(
    x: np.ndarray, y: np.ndarray, theta: np.ndarray, wx: np.ndarray, wy: np.ndarray, bins: int
) -> np.ndarray:
    """Histogram W1 per direction (P,) of (n, d) and (m, d) samples with normalized weights."""
    xt, offsets, weights, top = hist_pools([x, y], [wx[:, None], wy[:, None]])
    return hist_w1(xt, offsets, weights, top, np.array([[0, 1]]), theta, 1.0, bins)[0][0, 0]


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
