from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from hepscale.jets.dataset import LABELS, read_jets, read_metadata
from hepscale.jets.histograms import read_histograms
from hepscale.jets.processing import Chunk, check_file, open_events
from processors import CUTFLOW_STEPS, JetProcessor, JetProcessorConfig


def run_processor(path, **config):
    check = check_file(path, constituents=config.get("constituents", "recluster"))
    assert check.error is None, check.error
    chunk = Chunk(str(path), "ds", 0, check.entries, check.schema, "test")
    return JetProcessor(JetProcessorConfig(**config)).process(open_events(chunk))["ds"]


@pytest.fixture(scope="module")
def pfnano_jets(pfnano_file):
    return run_processor(pfnano_file)["jets"]


def test_reclustered_jets_match_cms_fatjets(pfnano_file, pfnano_jets):
    """Our anti-kT R=0.8 PUPPI jets against the file's own AK8 PUPPI FatJets (raw, i.e. uncorrected).

    Tolerances: NanoAOD stores PF candidate pT, mass and PUPPI weights and the FatJet pT and
    rawFactor with truncated float mantissas (a few 1e-4 relative each), and the jet mass, a
    difference of large numbers, amplifies that; we see at most 0.13% (pT) and 0.21% (mass)
    and allow 0.5% and 1%.
    """
    with uproot.open(pfnano_file) as f:
        fj = f["Events"].arrays(["event", "FatJet_pt", "FatJet_eta", "FatJet_phi", "FatJet_mass", "FatJet_rawFactor",
                                 "FatJet_tau1", "FatJet_tau2"])
    raw_pt = fj.FatJet_pt * (1 - fj.FatJet_rawFactor)
    sel = (raw_pt > 300) & (abs(fj.FatJet_eta) < 2.5)
    assert len(pfnano_jets) == int(ak.sum(sel)) == 20
    events = ak.to_numpy(fj.event)
    for jet in pfnano_jets:
        e = int(np.flatnonzero(events == jet.event)[0])
        dphi = (fj.FatJet_phi[e] - jet.phi + np.pi) % (2 * np.pi) - np.pi
        dr = np.hypot(fj.FatJet_eta[e] - jet.eta, dphi)
        k = int(np.argmin(dr))
        assert dr[k] < 0.1
        assert jet.pt == pytest.approx(raw_pt[e][k], rel=5e-3)
        assert jet.mass == pytest.approx(fj.FatJet_mass[e][k] * (1 - fj.FatJet_rawFactor[e][k]), rel=1e-2)
        # CMS minimises tau_N over the axes (OnePass_KT_Axes); our exclusive-kT axes cannot do better
        assert jet.tau1 >= 0.995 * fj.FatJet_tau1[e][k]
    assert ak.all(pfnano_jets.label == LABELS["QCD"])  # QCD sample: no hard W/Z/H/top in GenPart
    assert set(pfnano_jets.constituents.fields) >= {"d0", "dz", "d0err", "dzerr", "pid", "charge"}


def test_constituents_carry_their_candidates_displacement(pfnano_file, pfnano_jets):
    """d0, dz, d0err, dzerr of every stored constituent are those of its PF candidate (same eta, phi, event)."""
    with uproot.open(pfnano_file) as f:
        pf = f["Events"].arrays(["event", "PFCands_eta", "PFCands_phi", "PFCands_d0", "PFCands_dz", "PFCands_d0Err",
                                 "PFCands_dzErr"])
    events = ak.to_numpy(pf.event)
    branches = {"d0": "PFCands_d0", "dz": "PFCands_dz", "d0err": "PFCands_d0Err", "dzerr": "PFCands_dzErr"}
    n_checked = 0
    for jet in pfnano_jets:
        e = int(np.flatnonzero(events == jet.event)[0])
        eta, phi = np.asarray(pf.PFCands_eta[e], dtype=np.float64), np.asarray(pf.PFCands_phi[e], dtype=np.float64)
        c_eta, c_phi = np.asarray(jet.constituents.eta), np.asarray(jet.constituents.phi)
        dphi = (c_phi[:, None] - phi[None, :] + np.pi) % (2 * np.pi) - np.pi
        dist = np.hypot(c_eta[:, None] - eta[None, :], dphi)
        match = np.argmin(dist, axis=1)
        assert np.all(dist[np.arange(len(match)), match] < 1e-4)
        for field, branch in branches.items():
            expected = np.asarray(pf[branch][e], dtype=np.float64)[match]
            np.testing.assert_array_equal(np.asarray(jet.constituents[field]), expected, err_msg=field)
        n_checked += len(match)
    assert n_checked == int(ak.sum(ak.num(pfnano_jets.constituents))) > 500
    charged = np.concatenate([np.asarray(j.constituents.charge) != 0 for j in pfnano_jets])
    d0err = np.concatenate([np.asarray(j.constituents.d0err) for j in pfnano_jets])
    # PFNano stores -1 for candidates without track details (neutral ones and soft charged ones)
    assert np.all(d0err[~charged] == -1) and np.all((d0err[charged] > 0) | (d0err[charged] == -1))
    assert np.mean(d0err[charged] > 0) > 0.8


def test_stored_constituents_give_the_same_jets(pfnano_file, pfnano_jets):
    stored = run_processor(pfnano_file, constituents="pfnano")["jets"]
    assert len(stored) == len(pfnano_jets)
    for name in ("pt", "mass", "msoftdrop", "tau21", "d2", "n_constituents"):
        np.testing.assert_allclose(ak.to_numpy(stored[name]), ak.to_numpy(pfnano_jets[name]), rtol=1e-9)


def test_puppi_weights_change_the_jets(pfnano_file, pfnano_jets):
    unweighted = run_processor(pfnano_file, puppi="off")["jets"]
    # without PUPPI the pile-up and underlying event add constituents and mass
    assert np.median(ak.to_numpy(unweighted.n_constituents)) > np.median(ak.to_numpy(pfnano_jets.n_constituents))


def test_selection_is_configurable(generated_samples):
    out = run_processor(generated_samples["qcd"], jet_pt_min=450.0, jet_eta_max=1.0, max_jets=1)
    jets = out["jets"]
    assert ak.all(jets.pt > 450) and ak.all(abs(jets.eta) < 1.0) and ak.all(jets.jet_index == 0)
    assert out["cutflow"]["jets_selected"] == len(jets)


def test_top_jets_peak_at_the_top_mass_and_qcd_does_not(processed_samples):
    jets = read_jets(processed_samples / "jets.parquet")
    top = jets[(jets.label == LABELS["Tbqq"]) & (jets.source == "ttbar.root")]
    qcd = jets[jets.source == "qcd.root"]
    assert len(top) > 150 and len(qcd) > 500
    msd_top, msd_qcd = ak.to_numpy(top.msoftdrop), ak.to_numpy(qcd.msoftdrop)
    assert 160 < np.median(msd_top) < 185
    assert np.mean((msd_top > 140) & (msd_top < 200)) > 0.6
    assert np.mean((msd_qcd > 140) & (msd_qcd < 200)) < 0.15
    assert np.median(ak.to_numpy(top.tau32)) < np.median(ak.to_numpy(qcd.tau32)) - 0.1
    w = jets[jets.label == LABELS["Wqq"]]
    assert 70 < np.median(ak.to_numpy(w.msoftdrop)) < 95
    assert ak.all(qcd.label == LABELS["QCD"])


def test_cutflow_accounts_for_every_event_and_jet(processed_samples, generated_samples):
    meta = read_metadata(processed_samples / "jets.parquet")
    jets = read_jets(processed_samples / "jets.parquet")
    total = meta["cutflow"]["total"]
    assert list(total) == list(CUTFLOW_STEPS)
    assert total["events_read"] == 800
    assert total["events_selected"] + total["events_rejected"] == total["events_read"]
    assert total["jets_clustered"] >= total["jets_pt"] >= total["jets_eta"] >= total["jets_selected"] == len(jets)
    assert meta["cutflow"]["ttbar"]["events_read"] == 400
    assert len(set(zip(jets.source.to_list(), jets.event.to_list()))) == total["events_selected"]
    assert meta["chunks"]["total"] == 6 and meta["skipped_files"] == []
    assert {i["path"] for i in meta["inputs"]} == {str(p) for p in generated_samples.values()}


def test_histograms_agree_with_the_jet_dataset(processed_samples):
    jets = read_jets(processed_samples / "jets.parquet")
    hists = read_histograms(processed_samples / "histograms.json")  # JSON, never a pickle
    assert not (processed_samples / "histograms.pkl").exists()
    ttbar = jets[jets.source == "ttbar.root"]
    h = hists["ttbar"]["mass"]
    edges = h.axes["mass"].edges
    expected, _ = np.histogram(ak.to_numpy(ttbar.mass), bins=edges)
    assert np.array_equal(h.project("mass").values(), expected)  # genWeight = 1 for generated events
    with uproot.open(processed_samples / "histograms.root") as f:
        assert np.array_equal(f["ttbar/mass"].values(), expected)
    assert (processed_samples / "figures" / "msoftdrop.pdf").stat().st_size > 0
    assert (processed_samples / "figures" / "msoftdrop.png").stat().st_size > 0
