"""Coffea processor: PF candidates -> AK8 jets -> observables, truth labels, histograms, cutflow.

Works on CMS (PF)NanoAOD files and on the NanoAOD-like files of ``hepscale generate``. The
constituents keep ``pdgId``, ``charge`` and, where the file has them, the track impact
parameters ``d0, dz`` and their uncertainties ``d0Err, dzErr`` (cm; constituent fields
``d0, dz, d0err, dzerr``).
``process(events)`` is stateless; it returns ``{dataset: {"jets": ak.Array, "hists": {...},
"cutflow": {...}}}``, and everything but ``jets`` accumulates with ``coffea.processor.accumulate``.
A NaN or infinite PF candidate kinematic value, PUPPI weight or ``genWeight`` raises
:class:`InputError` naming the file and the branch.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import hist
import numpy as np
from coffea import processor

from hepscale.errors import DataError
from hepscale.jets.clustering import cluster_jets
from hepscale.jets.config import JetProcessorConfig
from hepscale.jets.dataset import build_jets
from hepscale.jets.inputs import CANDIDATES, PFCANDS_OPTIONAL_FIELDS, event_weights
from hepscale.jets.selection import load_lumi_mask, trigger_mask
from hepscale.jets.truth import truth_labels
from hepscale.plotting.labels import OBSERVABLE_LABELS

__all__ = ["JetProcessor", "JetProcessorConfig", "InputError", "make_histograms", "CUTFLOW_STEPS"]


class InputError(DataError):
    """An input file lacks a branch or holds values the processor cannot use."""


#: cutflow entries; every event read ends in exactly one of events_selected / events_rejected
CUTFLOW_STEPS = (
    "events_read",
    "events_lumi_mask",
    "events_trigger",
    "events_no_candidates",
    "events_selected",
    "events_rejected",
    "jets_clustered",
    "jets_pt",
    "jets_eta",
    "jets_constituents",
    "jets_selected",
)

_PF_BRANCHES = ("pt", "eta", "phi", "mass")


def make_histograms() -> dict[str, hist.Hist]:
    """Histograms of every observable, by truth label, declared in one place (weighted by genWeight)."""
    label = hist.axis.IntCategory([], growth=True, name="label", label="Truth label")
    axes = {
        "pt": hist.axis.Regular(70, 300, 3800, name="pt", label=OBSERVABLE_LABELS["pt"]),
        "eta": hist.axis.Regular(50, -2.5, 2.5, name="eta", label=OBSERVABLE_LABELS["eta"]),
        "mass": hist.axis.Regular(60, 0, 300, name="mass", label=OBSERVABLE_LABELS["mass"]),
        "msoftdrop": hist.axis.Regular(60, 0, 300, name="msoftdrop", label=OBSERVABLE_LABELS["msoftdrop"]),
        "tau21": hist.axis.Regular(50, 0, 1, name="tau21", label=OBSERVABLE_LABELS["tau21"]),
        "tau32": hist.axis.Regular(50, 0, 1, name="tau32", label=OBSERVABLE_LABELS["tau32"]),
        "d2": hist.axis.Regular(50, 0, 5, name="d2", label=OBSERVABLE_LABELS["d2"]),
        "n_constituents": hist.axis.Regular(100, 0, 200, name="n_constituents", label=OBSERVABLE_LABELS["n_constituents"]),
    }
    return {name: hist.Hist(axis, label, storage=hist.storage.Weight()) for name, axis in axes.items()}


def _field(collection: ak.Array, name: str, branch: str, filename: str) -> ak.Array:
    if name not in collection.fields:
        raise InputError(f"{filename}: branch {branch} is missing")
    values = collection[name]
    flat = ak.to_numpy(ak.flatten(values, axis=None))
    if flat.dtype.kind == "f" and not np.all(np.isfinite(flat)):
        n_bad = int(np.count_nonzero(~np.isfinite(flat)))
        raise InputError(f"{filename}: branch {branch} has {n_bad} non-finite value(s) (NaN or inf)")
    return values


class JetProcessor(processor.ProcessorABC):
    """AK8 jets from PF candidates with observables, truth labels, histograms and a cutflow."""

    def __init__(self, config: JetProcessorConfig | None = None) -> None:
        self.config = config or JetProcessorConfig()
        self.lumi_mask = load_lumi_mask(self.config.lumi_mask)

    def settings_extra(self) -> dict[str, Any]:
        """What decides the output beyond the settings: the content of the lumi-mask JSON."""
        return {"lumi_mask_sha1": self.lumi_mask.sha1} if self.lumi_mask is not None else {}

    def particles(self, events: Any, collection: str = "PFCands") -> ak.Array:
        """PF candidates of ``collection`` as records with px, py, pz, E (PUPPI-weighted if configured) and ids.

        ``collection``: ``PFCands``, or ``FatJetPFCands`` in the older PFNano layout where the
        stored AK8 constituents carry their own kinematics (and ``jetIdx``).
        """
        filename = events.metadata.get("filename", "<input>")
        if collection not in events.fields:
            raise InputError(f"{filename}: no {collection} collection (branches {collection}_pt, {collection}_eta, ...)")
        pf = events[collection]
        pt, eta, phi, mass = (_field(pf, n, f"{collection}_{n}", filename) for n in _PF_BRANCHES)
        weight = None
        if self.config.puppi == "on" or (self.config.puppi == "auto" and "puppiWeight" in pf.fields):
            weight = _field(pf, "puppiWeight", f"{collection}_puppiWeight", filename)
        fields = {"pt": pt, "eta": eta, "phi": phi, "mass": mass}
        extra = (("pid", "pdgId"), ("charge", "charge"), *PFCANDS_OPTIONAL_FIELDS.items(),
                 *((("jet", "jetIdx"),) if collection == "FatJetPFCands" else ()))
        for name, key in extra:
            if key in pf.fields:
                fields[name] = _field(pf, key, f"{collection}_{key}", filename)
        cands = ak.zip({k: ak.without_parameters(v) for k, v in fields.items()})
        cands = ak.with_field(cands, ak.local_index(cands.pt, axis=1), "index")
        if weight is not None:
            keep = weight > 0
            cands = cands[keep]
            w = ak.without_parameters(weight[keep])
            cands = ak.with_field(cands, cands.pt * w, "pt")
            cands = ak.with_field(cands, cands.mass * w, "mass")
        px = cands.pt * np.cos(cands.phi)
        py = cands.pt * np.sin(cands.phi)
        pz = cands.pt * np.sinh(cands.eta)
        energy = np.sqrt(px * px + py * py + pz * pz + cands.mass * cands.mass)
        for name, value in (("px", px), ("py", py), ("pz", pz), ("E", energy)):
            cands = ak.with_field(cands, value, name)
        return cands

    def jet_constituents(self, events: Any, cands: ak.Array) -> ak.Array:
        """Constituents of each jet, (n_events, n_jets, var), jets in descending pT.

        ``cands``: from :meth:`particles`; in the older PFNano layout they are the stored AK8
        constituents themselves (with their ``jet`` index), otherwise the event's PF candidates.
        """
        cfg = self.config
        if cfg.constituents == "recluster":
            return cluster_jets(cands, radius=cfg.radius, algorithm=cfg.algorithm, min_pt=cfg.jet_pt_min)
        filename = events.metadata.get("filename", "<input>")
        if "jet" in cands.fields:  # older PFNano: the constituents carry their jet index
            order = ak.argsort(cands.jet, axis=1, stable=True)
            cons = cands[order]
            cons_jet = cons.jet
        else:
            if "FatJetPFCands" not in events.fields:
                raise InputError(f"{filename}: --constituents pfnano needs FatJetPFCands_jetIdx and _pFCandsIdx")
            link = events.FatJetPFCands
            jet_idx = ak.without_parameters(_field(link, "jetIdx", "FatJetPFCands_jetIdx", filename))
            cand_idx = ak.without_parameters(_field(link, "pFCandsIdx", "FatJetPFCands_pFCandsIdx", filename))
            order = ak.argsort(jet_idx, axis=1, stable=True)
            jet_idx, cand_idx = jet_idx[order], cand_idx[order]
            # PUPPI may have removed candidates: map original candidate index -> position in cands
            n_orig = ak.num(events.PFCands.pt, axis=1)
            position = _inverse_index(cands["index"], n_orig)
            pos = position[cand_idx]
            valid = pos >= 0
            cons = cands[ak.where(valid, pos, 0)][valid]
            cons_jet = jet_idx[valid]
        cons = ak.unflatten(cons, ak.flatten(ak.run_lengths(cons_jet)), axis=1)
        jet_pt = ak.sum(cons.px, axis=2) ** 2 + ak.sum(cons.py, axis=2) ** 2
        cons = cons[ak.argsort(jet_pt, axis=1, ascending=False)]
        return cons[np.sqrt(ak.sum(cons.px, axis=2) ** 2 + ak.sum(cons.py, axis=2) ** 2) > cfg.jet_pt_min]

    def process(self, events: Any) -> dict[str, Any]:
        cfg = self.config
        dataset = events.metadata.get("dataset", "jets")
        filename = events.metadata.get("filename", "<input>")
        n_events = len(events)
        is_data = bool(events.metadata.get("is_data", "genWeight" not in events.fields))
        keep_lumi = self.lumi_mask.select(events, filename) if (is_data and self.lumi_mask is not None) else None
        if keep_lumi is not None:
            events = events[keep_lumi]
        n_lumi = len(events)
        keep_trigger = trigger_mask(events, cfg.triggers, filename)
        if keep_trigger is not None:
            events = events[keep_trigger]
        gen_weight = (  # a NaN or inf weight is a data error naming the file and branch
            ak.to_numpy(_field(events, "genWeight", "genWeight", filename)).astype(np.float64)
            if not is_data else np.ones(len(events))
        )
        weight = event_weights({**events.metadata, "is_data": is_data}, gen_weight, luminosity=cfg.luminosity)
        layout = events.metadata.get("layout", "pfnano-stored" if "PFCands" not in events.fields else "pfcands")
        cands = self.particles(events, CANDIDATES[layout])
        cons = self.jet_constituents(events, cands)
        # jet axes and selection before the (costlier) observables
        px, py, pz = ak.sum(cons.px, axis=2), ak.sum(cons.py, axis=2), ak.sum(cons.pz, axis=2)
        pt = np.hypot(px, py)
        eta = np.arcsinh(pz / ak.where(pt > 0, pt, 1e-12))
        phi = np.arctan2(py, px)
        n_cons = ak.num(cons, axis=2)
        pass_pt = pt > cfg.jet_pt_min
        pass_eta = pass_pt & (abs(eta) < cfg.jet_eta_max)
        selected = pass_eta & (n_cons > 0)
        if cfg.max_jets:
            selected = selected & (ak.local_index(pt, axis=1) < cfg.max_jets)
        genpart = None
        if "GenPart" in events.fields:
            gp = events.GenPart
            genpart = ak.zip({k: ak.without_parameters(gp[k]) for k in ("pdgId", "genPartIdxMother", "eta", "phi")})
        labels = truth_labels(eta[selected], phi[selected], genpart, radius=cfg.radius)
        sel_cons = cons[selected]
        per_event = ak.num(sel_cons, axis=1)
        event_numbers = np.repeat(ak.to_numpy(events.event).astype(np.int64), ak.to_numpy(per_event))
        jet_index = ak.flatten(ak.local_index(pt, axis=1)[selected])
        jets = build_jets(
            ak.flatten(sel_cons, axis=1),
            label=ak.flatten(labels),
            source=filename.rsplit("/", 1)[-1],
            event=event_numbers,
            jet_index=jet_index,
            weight=np.repeat(weight, ak.to_numpy(per_event)),
            max_constituents=cfg.max_constituents,
            observable_options={
                "zcut": cfg.softdrop_zcut, "sd_beta": cfg.softdrop_beta, "sd_r0": cfg.r0,
                "tau_beta": cfg.nsubjettiness_beta, "tau_r0": cfg.r0,
            },
        )
        hists = make_histograms()
        for name, h in hists.items():
            h.fill(**{name: ak.to_numpy(jets[name]), "label": ak.to_numpy(jets.label)}, weight=ak.to_numpy(jets.weight))
        n_selected_events = int(ak.sum(per_event > 0))
        cutflow = {
            "events_read": n_events,
            "events_lumi_mask": n_lumi,
            "events_trigger": len(events),
            "events_no_candidates": int(ak.sum(ak.num(cands, axis=1) == 0)),
            "events_selected": n_selected_events,
            "events_rejected": n_events - n_selected_events,
            "jets_clustered": int(ak.sum(ak.num(pt, axis=1))),
            "jets_pt": int(ak.sum(pass_pt)),
            "jets_eta": int(ak.sum(pass_eta)),
            "jets_constituents": int(ak.sum(pass_eta & (n_cons > 0))),
            "jets_selected": len(jets),
        }
        return {dataset: {"jets": jets, "hists": hists, "cutflow": cutflow}}

    def postprocess(self, accumulator: Any) -> Any:
        return accumulator


def _inverse_index(index: ak.Array, n_orig: ak.Array) -> ak.Array:
    """For each event, an array of length n_orig mapping original index -> position in ``index`` (-1: absent)."""
    counts = ak.to_numpy(n_orig)
    out = np.full(int(counts.sum()), -1, dtype=np.int64)
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    kept = ak.num(index, axis=1)
    flat_index = ak.to_numpy(ak.flatten(index)).astype(np.int64)
    ev = np.repeat(np.arange(len(counts)), ak.to_numpy(kept))
    pos = ak.to_numpy(ak.flatten(ak.local_index(index, axis=1)))
    out[starts[ev] + flat_index] = pos
    return ak.unflatten(out, counts)
