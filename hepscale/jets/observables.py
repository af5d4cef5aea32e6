"""Jet observables from constituents: one implementation for every source of jets.

The same function computes the observables of reclustered CMS jets, of JetClass and
Aspen Open Jets records and of jets sampled from a generative model, so that distances
between their distributions compare like with like.

Definitions (all angles in the rapidity-azimuth plane, ``dR^2 = dy^2 + dphi^2``, as in
FastJet's ``PseudoJet::squared_distance``; momenta in GeV):

- ``pt, eta, phi, mass``: the E-scheme sum of the constituents.
- ``msoftdrop``: soft-drop mass. Constituents are reclustered with Cambridge/Aachen into
  one jet and declustered, keeping the harder (larger pT) branch, until
  ``min(pt1, pt2) / (pt1 + pt2) > z_cut (dR12 / R0)^beta``; defaults ``beta = 0``,
  ``z_cut = 0.1``, ``R0 = 0.8`` (CMS).
- ``tau1, tau2, tau3``: N-subjettiness with the normalized measure,
  ``tau_N = sum_k pt_k min_a dR_ka^beta / sum_k pt_k R0^beta`` with ``beta = 1``,
  ``R0 = 0.8``, and exclusive-kT axes (FastJet contrib's ``KT_Axes``: the N exclusive
  jets of a kT reclustering with E-scheme recombination). ``tau_N = 0`` for jets with at
  most N constituents. ``tau21 = tau2 / tau1`` and ``tau32 = tau3 / tau2`` (0 where the
  denominator is 0).
- ``d2``: energy-correlation ratio ``D2 = e3 / e2^3`` with ``beta = 1``,
  ``e2 = sum_{i<j} z_i z_j dR_ij``, ``e3 = sum_{i<j<k} z_i z_j z_k dR_ij dR_ik dR_jk`` and
  ``z_i = pt_i / sum_k pt_k`` (scalar sum over the constituents), as FastJet contrib's
  ``EnergyCorrelator`` with the ``pt_R`` measure.
- ``n_constituents``: the number of constituents.

The kernels are compiled with numba and run on flat arrays with per-jet offsets.
"""

from __future__ import annotations

import math
from typing import Any

import awkward as ak
import numba
import numpy as np

__all__ = ["OBSERVABLES", "jet_observables", "observables_from_arrays", "constituent_p4"]

#: names of the observables computed by :func:`jet_observables`, in output order
OBSERVABLES = (
    "pt", "eta", "phi", "mass", "msoftdrop", "tau1", "tau2", "tau3", "tau21", "tau32", "d2", "n_constituents",
)

_RAP_MAX = 1e5


@numba.njit(cache=True, inline="always")
def _rap_phi(px: float, py: float, pz: float, e: float) -> tuple[float, float]:
    phi = math.atan2(py, px)
    if px == 0.0 and py == 0.0:
        phi = 0.0
    pt2 = px * px + py * py
    m2 = e * e - pt2 - pz * pz
    if m2 < 0.0:
        m2 = 0.0
    mt2 = pt2 + m2
    # rapidity as FastJet computes it: log((E + |pz|)^2 / mt^2) / 2 with the sign of pz
    if mt2 <= 0.0:
        rap = _RAP_MAX if pz >= 0 else -_RAP_MAX
    else:
        rap = 0.5 * math.log((e + abs(pz)) * (e + abs(pz)) / mt2)
        if pz < 0:
            rap = -rap
    return rap, phi


@numba.njit(cache=True, inline="always")
def _dr2(y1: float, f1: float, y2: float, f2: float) -> float:
    dphi = abs(f1 - f2)
    if dphi > math.pi:
        dphi = 2.0 * math.pi - dphi
    dy = y1 - y2
    return dy * dy + dphi * dphi


@numba.njit(cache=True)
def _cluster(px, py, pz, e, p_exp, keep_tree, snap_n):
    """Pairwise sequential recombination with ``d_ij = min(pt_i^2p, pt_j^2p) dR_ij^2``.

    No beam distance: everything is merged into one jet (R -> infinity), which is what
    exclusive-kT axes and soft-drop's C/A reclustering use. Returns the merge tree
    (children and four-momenta of every node; leaves are 0..n-1) and, for each N in
    ``snap_n``, the four-momenta of the N exclusive jets.
    """
    n = px.shape[0]
    nnodes = 2 * n - 1 if n > 0 else 0
    node_p = np.zeros((max(nnodes, 1), 4))
    child = -np.ones((max(nnodes, 1), 2), dtype=np.int64)
    # per active slot: node id, kinematics
    slot_node = np.arange(n)
    spx = px.copy()
    spy = py.copy()
    spz = pz.copy()
    se = e.copy()
    sy = np.empty(n)
    sf = np.empty(n)
    sw = np.empty(n)  # pt^(2p)
    for i in range(n):
        node_p[i, 0] = px[i]
        node_p[i, 1] = py[i]
        node_p[i, 2] = pz[i]
        node_p[i, 3] = e[i]
        sy[i], sf[i] = _rap_phi(px[i], py[i], pz[i], e[i])
        pt2 = px[i] * px[i] + py[i] * py[i]
        sw[i] = pt2 ** p_exp if p_exp != 0 else 1.0
    active = np.ones(n, dtype=np.bool_)
    nn = -np.ones(n, dtype=np.int64)
    nnd = np.full(n, np.inf)
    for i in range(n):
        for j in range(i + 1, n):
            d = min(sw[i], sw[j]) * _dr2(sy[i], sf[i], sy[j], sf[j])
            if d < nnd[i]:
                nnd[i] = d
                nn[i] = j
            if d < nnd[j]:
                nnd[j] = d
                nn[j] = i
    nsnap = snap_n.shape[0]
    snaps = np.zeros((nsnap, 3, 4))  # up to 3 axes each
    for s in range(nsnap):
        if n <= snap_n[s]:
            for i in range(n):
                snaps[s, i, 0] = px[i]
                snaps[s, i, 1] = py[i]
                snaps[s, i, 2] = pz[i]
                snaps[s, i, 3] = e[i]
    count = n
    next_node = n
    while count > 1:
        best = np.inf
        bi = -1
        for i in range(n):
            if active[i] and nnd[i] < best:
                best = nnd[i]
                bi = i
        bj = nn[bi]
        if bj < bi:
            bi, bj = bj, bi
        # merge bj into bi (E-scheme)
        spx[bi] += spx[bj]
        spy[bi] += spy[bj]
        spz[bi] += spz[bj]
        se[bi] += se[bj]
        active[bj] = False
        sy[bi], sf[bi] = _rap_phi(spx[bi], spy[bi], spz[bi], se[bi])
        pt2 = spx[bi] * spx[bi] + spy[bi] * spy[bi]
        sw[bi] = pt2 ** p_exp if p_exp != 0 else 1.0
        if keep_tree:
            child[next_node, 0] = slot_node[bi]
            child[next_node, 1] = slot_node[bj]
            node_p[next_node, 0] = spx[bi]
            node_p[next_node, 1] = spy[bi]
            node_p[next_node, 2] = spz[bi]
            node_p[next_node, 3] = se[bi]
        slot_node[bi] = next_node
        next_node += 1
        count -= 1
        for s in range(nsnap):
            if count == snap_n[s]:
                k = 0
                for i in range(n):
                    if active[i]:
                        snaps[s, k, 0] = spx[i]
                        snaps[s, k, 1] = spy[i]
                        snaps[s, k, 2] = spz[i]
                        snaps[s, k, 3] = se[i]
                        k += 1
        # update nearest neighbours
        nnd[bi] = np.inf
        nn[bi] = -1
        for k in range(n):
            if not active[k] or k == bi:
                continue
            d = min(sw[bi], sw[k]) * _dr2(sy[bi], sf[bi], sy[k], sf[k])
            if d < nnd[bi]:
                nnd[bi] = d
                nn[bi] = k
            if nn[k] == bi or nn[k] == bj:
                # recompute from scratch
                nnd[k] = np.inf
                nn[k] = -1
                for m in range(n):
                    if active[m] and m != k:
                        dm = min(sw[k], sw[m]) * _dr2(sy[k], sf[k], sy[m], sf[m])
                        if dm < nnd[k]:
                            nnd[k] = dm
                            nn[k] = m
            elif d < nnd[k]:
                nnd[k] = d
                nn[k] = bi
    return child, node_p, snaps


@numba.njit(cache=True, inline="always")
def _mass(p) -> float:
    m2 = p[3] * p[3] - p[0] * p[0] - p[1] * p[1] - p[2] * p[2]
    return math.sqrt(m2) if m2 > 0 else 0.0


@numba.njit(cache=True)
def _softdrop_mass(child, node_p, root, zcut, beta, r0):
    node = root
    while child[node, 0] >= 0:
        a = child[node, 0]
        b = child[node, 1]
        pa = node_p[a]
        pb = node_p[b]
        pta = math.sqrt(pa[0] * pa[0] + pa[1] * pa[1])
        ptb = math.sqrt(pb[0] * pb[0] + pb[1] * pb[1])
        ya, fa = _rap_phi(pa[0], pa[1], pa[2], pa[3])
        yb, fb = _rap_phi(pb[0], pb[1], pb[2], pb[3])
        dr = math.sqrt(_dr2(ya, fa, yb, fb))
        z = min(pta, ptb) / (pta + ptb) if pta + ptb > 0 else 0.0
        threshold = zcut * (dr / r0) ** beta if beta != 0 else zcut
        if z > threshold:
            break
        node = a if pta >= ptb else b
    return _mass(node_p[node])


@numba.njit(cache=True)
def _kernel(offsets, px, py, pz, e, zcut, sd_beta, sd_r0, tau_beta, tau_r0, out):
    njets = offsets.shape[0] - 1
    snap_n = np.array([3, 2, 1], dtype=np.int64)
    for j in range(njets):
        lo = offsets[j]
        hi = offsets[j + 1]
        n = hi - lo
        jx = px[lo:hi]
        jy = py[lo:hi]
        jz = pz[lo:hi]
        je = e[lo:hi]
        sx = jx.sum()
        sy_ = jy.sum()
        sz = jz.sum()
        se = je.sum()
        jpt = math.sqrt(sx * sx + sy_ * sy_)
        pabs = math.sqrt(sx * sx + sy_ * sy_ + sz * sz)
        if jpt > 0:
            out[j, 1] = math.asinh(sz / jpt)
        else:
            out[j, 1] = 0.0
        out[j, 0] = jpt
        out[j, 2] = math.atan2(sy_, sx) if jpt > 0 else 0.0
        m2 = se * se - pabs * pabs
        out[j, 3] = math.sqrt(m2) if m2 > 0 else 0.0
        out[j, 11] = n
        if n == 0:
            for k in range(4, 11):
                out[j, k] = 0.0
            continue
        # soft drop: C/A tree
        child, node_p, _ = _cluster(jx, jy, jz, je, 0.0, True, np.zeros(0, dtype=np.int64))
        out[j, 4] = _softdrop_mass(child, node_p, 2 * n - 2, zcut, sd_beta, sd_r0)
        # N-subjettiness: exclusive kT axes for N = 3, 2, 1
        _, _, snaps = _cluster(jx, jy, jz, je, 1.0, False, snap_n)
        ys = np.empty(n)
        fs = np.empty(n)
        pts = np.empty(n)
        d0 = 0.0
        for i in range(n):
            ys[i], fs[i] = _rap_phi(jx[i], jy[i], jz[i], je[i])
            pts[i] = math.sqrt(jx[i] * jx[i] + jy[i] * jy[i])
            d0 += pts[i] * tau_r0 ** tau_beta
        for s in range(3):
            nax = snap_n[s]
            if n <= nax or d0 <= 0:
                out[j, 7 - s] = 0.0  # tau3 -> col 7, tau2 -> 6, tau1 -> 5
                continue
            ay = np.empty(nax)
            af = np.empty(nax)
            for a in range(nax):
                ay[a], af[a] = _rap_phi(snaps[s, a, 0], snaps[s, a, 1], snaps[s, a, 2], snaps[s, a, 3])
            num = 0.0
            for i in range(n):
                best = np.inf
                for a in range(nax):
                    d = _dr2(ys[i], fs[i], ay[a], af[a])
                    if d < best:
                        best = d
                num += pts[i] * math.sqrt(best) ** tau_beta
            out[j, 7 - s] = num / d0
        t1 = out[j, 5]
        t2 = out[j, 6]
        t3 = out[j, 7]
        out[j, 8] = t2 / t1 if t1 > 0 else 0.0
        out[j, 9] = t3 / t2 if t2 > 0 else 0.0
        # D2 with beta = 1
        ptsum = pts.sum()
        if n < 3 or ptsum <= 0:
            out[j, 10] = 0.0
            continue
        dr = np.empty((n, n))
        for i in range(n):
            dr[i, i] = 0.0
            for k in range(i + 1, n):
                v = math.sqrt(_dr2(ys[i], fs[i], ys[k], fs[k]))
                dr[i, k] = v
                dr[k, i] = v
        z = pts / ptsum
        e2 = 0.0
        e3 = 0.0
        for i in range(n):
            for k in range(i + 1, n):
                zik = z[i] * z[k]
                e2 += zik * dr[i, k]
                dik = dr[i, k]
                acc = 0.0
                for m in range(k + 1, n):
                    acc += z[m] * dr[i, m] * dr[k, m]
                e3 += zik * dik * acc
        out[j, 10] = e3 / (e2 * e2 * e2) if e2 > 0 else 0.0


def observables_from_arrays(
    offsets: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    energy: np.ndarray,
    *,
    zcut: float = 0.1,
    sd_beta: float = 0.0,
    sd_r0: float = 0.8,
    tau_beta: float = 1.0,
    tau_r0: float = 0.8,
) -> dict[str, np.ndarray]:
    """Observables of jets given as flat constituent four-momenta with offsets.

    Parameters
    ----------
    offsets
        int array of shape (n_jets + 1,): constituents of jet ``j`` are ``[offsets[j], offsets[j+1])``.
    px, py, pz, energy
        float arrays (GeV) of shape (n_constituents_total,).

    Returns
    -------
    dict
        ``name -> array of shape (n_jets,)`` for every name in :data:`OBSERVABLES`.
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (px, py, pz, energy)]
    total = int(offsets[-1]) if len(offsets) else 0
    for name, arr in zip(("px", "py", "pz", "energy"), arrays):
        if arr.shape[0] != total:
            raise ValueError(f"constituent array {name} has {arr.shape[0]} entries, offsets say {total}")
        if not np.all(np.isfinite(arr)):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise ValueError(f"constituent {name} has {bad} non-finite value(s) (NaN or inf)")
    njets = max(len(offsets) - 1, 0)
    out = np.zeros((njets, len(OBSERVABLES)))
    if njets:
        _kernel(offsets, *arrays, float(zcut), float(sd_beta), float(sd_r0), float(tau_beta), float(tau_r0), out)
    result = {name: out[:, i].copy() for i, name in enumerate(OBSERVABLES)}
    result["n_constituents"] = result["n_constituents"].astype(np.int64)
    return result


def constituent_p4(constituents: ak.Array) -> tuple[ak.Array, ak.Array, ak.Array, ak.Array]:
    """Cartesian four-momenta (px, py, pz, E) of constituents given with pt, eta, phi and mass or energy.

    Records with ``px, py, pz`` and ``energy`` (or ``E``) are passed through. With ``pt, eta,
    phi``, the energy is taken from an ``energy`` field when present, else from ``mass``
    (0 when absent, i.e. massless constituents).
    """
    fields = set(constituents.fields)
    efield = "energy" if "energy" in fields else ("E" if "E" in fields else None)
    if {"px", "py", "pz"} <= fields and efield is not None:
        return constituents.px, constituents.py, constituents.pz, constituents[efield]
    missing = {"pt", "eta", "phi"} - fields
    if missing:
        raise KeyError(
            f"constituents need (pt, eta, phi) or (px, py, pz, energy); missing {sorted(missing)} "
            f"in fields {sorted(fields)}"
        )
    pt, eta, phi = constituents.pt, constituents.eta, constituents.phi
    px = pt * np.cos(phi)
    py = pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    if efield is not None:
        energy = constituents[efield]
    else:
        mass = constituents.mass if "mass" in fields else 0.0 * pt
        energy = np.sqrt(px * px + py * py + pz * pz + mass * mass)
    return px, py, pz, energy


def jet_observables(constituents: ak.Array, **kwargs: Any) -> dict[str, np.ndarray]:
    """Observables of jets given as a jagged array of constituents (one list per jet).

    Parameters
    ----------
    constituents
        Awkward array of shape (n_jets, var) of records with (pt, eta, phi[, mass | energy])
        or (px, py, pz, energy). Units GeV.
    **kwargs
        Passed to :func:`observables_from_arrays` (``zcut``, ``sd_beta``, ``sd_r0``,
        ``tau_beta``, ``tau_r0``).
    """
    px, py, pz, energy = constituent_p4(constituents)
    counts = ak.to_numpy(ak.num(px, axis=1))
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = [ak.to_numpy(ak.flatten(a, axis=1)).astype(np.float64) for a in (px, py, pz, energy)]
    return observables_from_arrays(offsets, *flat, **kwargs)
