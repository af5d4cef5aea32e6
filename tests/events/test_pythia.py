from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from hepscale.events.pythia import BLOCK_SIZE, GeneratorConfig, generate
from hepscale.generate import main


def read_all(path):
    with uproot.open(path) as f:
        return f["Events"].arrays(), json.loads(f["hepscale_provenance"])


def test_nanoaod_like_layout_and_provenance(generated_samples):
    events, prov = read_all(generated_samples["ttbar"])
    assert len(events) == 400
    for branch in ("run", "luminosityBlock", "event", "genWeight", "nPFCands", "PFCands_pt", "PFCands_eta",
                   "PFCands_phi", "PFCands_mass", "PFCands_pdgId", "PFCands_charge", "nGenPart", "GenPart_pdgId",
                   "GenPart_genPartIdxMother"):
        assert branch in events.fields, branch
    assert events.event.tolist() == list(range(1, 401))
    pid = np.abs(ak.to_numpy(ak.flatten(events.PFCands_pdgId)))
    assert not np.isin(pid, [12, 14, 16]).any()  # neutrinos are invisible
    assert np.all(np.abs(ak.flatten(events.PFCands_eta)) < 5)
    charge = ak.to_numpy(ak.flatten(events.PFCands_charge))
    assert set(np.unique(charge)) <= {-1, 0, 1}
    assert np.all(charge[pid == 22] == 0) and np.all(np.abs(charge[pid == 211]) == 1)
    assert prov["process"] == "ttbar" and prov["seed"] == 11 and prov["pythia8mc_version"].startswith("8.")
    assert "PhaseSpace:pTHatMin = 400" in prov["settings"]
    assert len(prov["block_seeds"]) == 2


def test_ttbar_truth_record(generated_samples):
    events, _ = read_all(generated_samples["ttbar"])
    for ev in range(20):
        pdg = events.GenPart_pdgId[ev].to_list()
        mother = events.GenPart_genPartIdxMother[ev].to_list()
        tops = [i for i, p in enumerate(pdg) if abs(p) == 6]
        assert len(tops) == 2
        for t in tops:
            daughters = [pdg[i] for i, m in enumerate(mother) if m == t]
            # t -> W q with q = b almost always (q = s, d through CKM mixing)
            assert len(daughters) == 2 and 24 in map(abs, daughters)
            assert [abs(d) for d in daughters if abs(d) != 24][0] in (1, 3, 5)
            w = next(i for i, m in enumerate(mother) if m == t and abs(pdg[i]) == 24)
            quarks = [pdg[i] for i, m in enumerate(mother) if m == w]
            assert len(quarks) == 2 and all(abs(q) <= 5 for q in quarks)
            charge = sum((2 / 3 if abs(q) % 2 == 0 else -1 / 3) * np.sign(q) for q in quarks)
            assert charge == pytest.approx(np.sign(pdg[w]))  # the decay quarks carry the W's charge
    # the top mass is Pythia's (Breit-Wigner around 173 GeV)
    masses = ak.to_numpy(ak.flatten(events.GenPart_mass[abs(events.GenPart_pdgId) == 6]))
    assert 165 < np.median(masses) < 180


def test_same_seed_same_events_whatever_jobs(tmp_path):
    n = BLOCK_SIZE + 20  # two blocks
    a = generate(GeneratorConfig(process="zqq", events=n, seed=7), tmp_path / "a.root", jobs=1)
    b = generate(GeneratorConfig(process="zqq", events=n, seed=7), tmp_path / "b.root", jobs=2)
    c = generate(GeneratorConfig(process="zqq", events=n, seed=8), tmp_path / "c.root", jobs=1)
    ea, pa = read_all(a)
    eb, pb = read_all(b)
    ec, _ = read_all(c)
    for field in ea.fields:
        assert ak.all(ak.flatten(ea[field], axis=None) == ak.flatten(eb[field], axis=None)), field
    assert pa["block_seeds"] == pb["block_seeds"]
    assert not ak.all(ak.num(ea.PFCands_pt) == ak.num(ec.PFCands_pt))


def test_config_and_cli_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="process must be one of"):
        GeneratorConfig(process="susy")
    with pytest.raises(ValueError, match="events must be at least 1"):
        GeneratorConfig(events=0)
    assert main(["--process", "qcd", "--events", "5", "--output", str(tmp_path / "x.root"), "--set",
                 "Nonsense:key = 3"]) == 2
    assert "Pythia rejected the setting 'Nonsense:key = 3'" in capsys.readouterr().err
    assert not (tmp_path / "x.root").exists()
