"""Test inputs in other CMS layouts, written with uproot from the 2018-style PFNano sample file.

:func:`write_stored_layout` writes the older PFNano layout (as in 2017 PFNano productions): the AK8
constituents' own kinematics, PUPPI weights, ids and displacement in ``FatJetPFCands_*`` beside
``FatJetPFCands_jetIdx``, and no ``PFCands_*`` collection or ``pFCandsIdx`` index.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot

#: candidate branches copied into the older layout (``PFCands_X`` -> ``FatJetPFCands_X``)
STORED = ("pt", "eta", "phi", "mass", "puppiWeight", "pdgId", "charge", "d0", "dz", "d0Err", "dzErr")
#: event-level branches kept as they are
EVENT = ("run", "luminosityBlock", "event", "genWeight", "HLT_AK8PFHT900_TrimMass50", "HLT_AK8PFJetFwd40")
FATJET = ("pt", "eta", "phi", "mass", "rawFactor", "msoftdrop")
GENPART = ("pdgId", "genPartIdxMother", "eta", "phi", "pt", "mass", "status", "statusFlags")


def _collection(arrays: ak.Array, prefix: str, names: tuple[str, ...]) -> ak.Array:
    return ak.zip({n: arrays[f"{prefix}_{n}"] for n in names})


def write_stored_layout(src: Path, dst: Path, *, gen_weight_scale: float = 1.0, runs_sumw: float | None = None,
                        lumi_blocks: np.ndarray | None = None) -> Path:
    """Write ``src`` (PFCands + FatJetPFCands index layout) in the older stored layout to ``dst``.

    ``gen_weight_scale`` multiplies ``genWeight`` (and the ``Runs`` sum, unless ``runs_sumw`` is given);
    ``lumi_blocks`` replaces the events' luminosity-section numbers.
    """
    with uproot.open(src) as f:
        ev = f["Events"]
        keys = set(ev.keys())
        a = ev.arrays([*EVENT, *(f"PFCands_{n}" for n in STORED), "FatJetPFCands_jetIdx", "FatJetPFCands_pFCandsIdx",
                       *(f"FatJet_{n}" for n in FATJET), *(f"GenPart_{n}" for n in GENPART if f"GenPart_{n}" in keys)])
        runs = f["Runs"].arrays(["run", "genEventCount", "genEventSumw"], library="np")
    idx = a.FatJetPFCands_pFCandsIdx
    stored = {n: a[f"PFCands_{n}"][idx] for n in STORED}
    stored["jetIdx"] = a.FatJetPFCands_jetIdx
    gen = [n for n in GENPART if f"GenPart_{n}" in a.fields]
    events = {n: a[n] for n in EVENT}
    events["genWeight"] = ak.values_astype(a.genWeight * gen_weight_scale, np.float32)
    if lumi_blocks is not None:
        events["luminosityBlock"] = ak.values_astype(ak.Array(np.asarray(lumi_blocks)), np.uint32)
    events["FatJetPFCands"] = ak.zip(stored)
    events["FatJet"] = _collection(a, "FatJet", FATJET)
    if gen:
        events["GenPart"] = _collection(a, "GenPart", tuple(gen))
    sumw = runs["genEventSumw"] * gen_weight_scale if runs_sumw is None else np.array([runs_sumw], dtype=np.float64)
    with uproot.recreate(dst) as out:  # NanoAOD names: FatJet_pt with the counter nFatJet
        tree = out.mktree("Events", {k: v.type.content for k, v in events.items()}, field_name=lambda outer, inner: f"{outer}_{inner}", counter_name=lambda name: f"n{name}")
        tree.extend(events)
        out["Runs"] = {"run": runs["run"], "genEventCount": runs["genEventCount"], "genEventSumw": sumw}
    return dst


def raw_pt_differences(path: str | Path, jets: ak.Array) -> np.ndarray:
    """Relative differences of each jet's pT to the raw pT of the file's nearest AK8 FatJet (Delta R < 0.1).

    Raw: ``FatJet_pt * (1 - FatJet_rawFactor)``, before jet energy corrections, as our jets are.
    A jet without a FatJet within 0.1 gives ``inf``.
    """
    with uproot.open(path) as f:
        fj = f["Events"].arrays(["event", "FatJet_pt", "FatJet_eta", "FatJet_phi", "FatJet_rawFactor"])
    raw_pt = fj.FatJet_pt * (1 - fj.FatJet_rawFactor)
    events = ak.to_numpy(fj.event)
    out = []
    for jet in jets:
        e = int(np.flatnonzero(events == jet.event)[0])
        dphi = (ak.to_numpy(fj.FatJet_phi[e]) - jet.phi + np.pi) % (2 * np.pi) - np.pi
        dr = np.hypot(ak.to_numpy(fj.FatJet_eta[e]) - jet.eta, dphi)
        k = int(np.argmin(dr)) if len(dr) else -1
        out.append(abs(jet.pt / raw_pt[e][k] - 1) if k >= 0 and dr[k] < 0.1 else np.inf)
    return np.asarray(out)


def process_file(inp, **config) -> dict:
    """Check one input (path or :class:`InputFile`), cut it into one chunk and run the jet processor on it."""
    from hepscale.jets.config import JetProcessorConfig
    from hepscale.jets.inputs import check_file, make_chunks, open_events
    from processors.jets import JetProcessor

    check = check_file(inp, constituents=config.get("constituents", "recluster"))
    assert check.error is None, check.error
    (chunk,) = make_chunks([check], chunksize=max(check.entries, 1))
    return JetProcessor(JetProcessorConfig(**config)).process(open_events(chunk))[chunk.dataset]
