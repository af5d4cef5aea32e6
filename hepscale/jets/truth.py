"""Truth labels of jets from the hard-process partons (GenPart) of generated events.

A jet is labelled (codes of :data:`hepscale.jets.dataset.LABELS`):

- ``Tbqq`` when a top quark's b (or the s, d quark of a CKM-suppressed decay) and both quarks
  of its W lie within dR < R of the jet axis;
- else ``Wqq``, ``Zqq``, ``Hbb``/``Hcc`` when both decay quarks of a W, Z or H do;
- else ``QCD``.

GenPart follows the NanoAOD convention: ``genPartIdxMother`` indexes the same event's GenPart
list (-1 for none). Events with no GenPart collection get the label -1 (unknown, e.g. data).
"""

from __future__ import annotations

import math

import awkward as ak
import numba
import numpy as np

from hepscale.jets.dataset import LABELS

__all__ = ["truth_labels", "UNKNOWN_LABEL"]

UNKNOWN_LABEL = -1


@numba.njit(cache=True, inline="always")
def _dr2(eta1, phi1, eta2, phi2):
    dphi = abs(phi1 - phi2)
    if dphi > math.pi:
        dphi = 2 * math.pi - dphi
    return (eta1 - eta2) ** 2 + dphi * dphi


@numba.njit(cache=True)
def _labels(jet_event, jet_eta, jet_phi, gen_offsets, pdg, mother, geta, gphi, r2, codes):
    # codes: [QCD, Tbqq, Wqq, Zqq, Hbb, Hcc]
    out = np.empty(jet_event.shape[0], dtype=np.int64)
    for j in range(jet_event.shape[0]):
        e = jet_event[j]
        lo = gen_offsets[e]
        hi = gen_offsets[e + 1]
        label = codes[0]
        rank = 0  # 2: top, 1: boson
        for r in range(lo, hi):
            a = abs(pdg[r])
            if a != 6 and a != 23 and a != 24 and a != 25:
                continue
            local = r - lo
            if a == 6:
                has_b = False
                w_ok = False
                for d in range(lo, hi):
                    if mother[d] != local:
                        continue
                    ad = abs(pdg[d])
                    if ad <= 5 and _dr2(jet_eta[j], jet_phi[j], geta[d], gphi[d]) < r2:
                        has_b = True
                    elif ad == 24:
                        nq = 0
                        nin = 0
                        for q in range(lo, hi):
                            if mother[q] == d - lo and abs(pdg[q]) <= 5:
                                nq += 1
                                if _dr2(jet_eta[j], jet_phi[j], geta[q], gphi[q]) < r2:
                                    nin += 1
                        w_ok = nq >= 2 and nin == nq
                if has_b and w_ok:
                    label = codes[1]
                    rank = 2
            elif rank < 1:
                nq = 0
                nin = 0
                flavour = 0
                for q in range(lo, hi):
                    if mother[q] == local and abs(pdg[q]) <= 5:
                        nq += 1
                        flavour = max(flavour, abs(pdg[q]))
                        if _dr2(jet_eta[j], jet_phi[j], geta[q], gphi[q]) < r2:
                            nin += 1
                if nq >= 2 and nin == nq:
                    if a == 24:
                        label = codes[2]
                        rank = 1
                    elif a == 23:
                        label = codes[3]
                        rank = 1
                    elif flavour == 5:
                        label = codes[4]
                        rank = 1
                    elif flavour == 4:
                        label = codes[5]
                        rank = 1
        out[j] = label
    return out


def truth_labels(jet_eta: ak.Array, jet_phi: ak.Array, genpart: ak.Array | None, *, radius: float = 0.8) -> ak.Array:
    """Truth label of each jet.

    Parameters
    ----------
    jet_eta, jet_phi
        Jagged (n_events, n_jets) jet axes.
    genpart
        Jagged (n_events, var) records with ``pdgId, genPartIdxMother, eta, phi``; None when
        the input has no generator record (all labels :data:`UNKNOWN_LABEL`).

    Returns
    -------
    ak.Array
        int64 labels of shape (n_events, n_jets).
    """
    counts = ak.num(jet_eta, axis=1)
    if genpart is None:
        return ak.unflatten(np.full(int(ak.sum(counts)), UNKNOWN_LABEL, dtype=np.int64), counts)
    jet_event = np.repeat(np.arange(len(counts)), ak.to_numpy(counts))
    gcounts = ak.to_numpy(ak.num(genpart, axis=1))
    goff = np.zeros(len(gcounts) + 1, dtype=np.int64)
    np.cumsum(gcounts, out=goff[1:])

    def flat(x: ak.Array, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(ak.to_numpy(ak.flatten(x, axis=None)), dtype=dtype)

    codes = np.array([LABELS[k] for k in ("QCD", "Tbqq", "Wqq", "Zqq", "Hbb", "Hcc")], dtype=np.int64)
    labels = _labels(
        jet_event, flat(jet_eta, np.float64), flat(jet_phi, np.float64), goff,
        flat(genpart.pdgId, np.int64), flat(genpart.genPartIdxMother, np.int64),
        flat(genpart.eta, np.float64), flat(genpart.phi, np.float64), radius * radius, codes,
    )
    return ak.unflatten(labels, counts)
