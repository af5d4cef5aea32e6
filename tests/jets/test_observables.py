from __future__ import annotations

import itertools

import awkward as ak
import fastjet
import numpy as np
import pytest

from hepscale.jets.observables import (
    OBSERVABLES,
    jet_observables,
    observables_from_arrays,
)


def random_jets(n_jets: int, seed: int, *, max_n: int = 80) -> ak.Array:
    """Jets of 0..max_n massive constituents: up to three hard prongs around (eta, phi) = (0.3, 1) and soft radiation."""
    rng = np.random.default_rng(seed)
    jets = []
    for _ in range(n_jets):
        n = int(rng.integers(0, max_n))
        prong = rng.integers(0, 3, n)
        centres = rng.normal(0, 0.25, (3, 2))
        soft = rng.random(n) < 0.3  # soft wide-angle radiation, which soft drop should remove
        eta = 0.3 + np.where(soft, rng.uniform(-0.6, 0.6, n), centres[prong, 0] + rng.normal(0, 0.05, n))
        phi = 1.0 + np.where(soft, rng.uniform(-0.6, 0.6, n), centres[prong, 1] + rng.normal(0, 0.05, n))
        pt = np.where(soft, rng.exponential(1.0, n), rng.exponential(15, n) + 0.5)
        jets.append({"pt": pt, "eta": eta, "phi": phi, "mass": np.full(n, 0.1396)})
    return ak.zip({k: ak.Array([j[k] for j in jets]) for k in ("pt", "eta", "phi", "mass")})


def fastjet_sequence(cons: ak.Array) -> fastjet.ClusterSequence:
    px = cons.pt * np.cos(cons.phi)
    py = cons.pt * np.sin(cons.phi)
    pz = cons.pt * np.sinh(cons.eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + cons.mass**2)
    vec = ak.zip({"px": px, "py": py, "pz": pz, "E": e})
    # each jet is one "event"; C/A with a radius that takes every constituent into one jet
    return fastjet.ClusterSequence(vec, fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0))


@pytest.fixture(scope="module")
def jets_and_obs():
    cons = random_jets(200, seed=3)
    cons = cons[ak.num(cons) > 0]
    return cons, jet_observables(cons)


def test_nsubjettiness_matches_fastjet_contrib(jets_and_obs):
    cons, obs = jets_and_obs
    cs = fastjet_sequence(cons)
    for n in (1, 2, 3):
        ref = ak.to_numpy(cs.njettiness(axes_definition="KT_Axes", njets=[n], beta=1.0, R0=0.8)).ravel()
        np.testing.assert_allclose(obs[f"tau{n}"], ref, rtol=1e-9, atol=1e-12)
    assert np.all(obs["tau2"][obs["n_constituents"] > 2] > 0)
    multi = obs["n_constituents"] > 2
    np.testing.assert_allclose(obs["tau21"][multi], obs["tau2"][multi] / obs["tau1"][multi])
    np.testing.assert_allclose(obs["tau32"][multi], obs["tau3"][multi] / obs["tau2"][multi])


def test_softdrop_mass_matches_fastjet(jets_and_obs):
    cons, obs = jets_and_obs
    sd = fastjet_sequence(cons).exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=0.8)
    ref = ak.to_numpy(sd.msoftdrop)
    np.testing.assert_allclose(obs["msoftdrop"], ref, rtol=1e-9, atol=1e-9)
    assert np.mean(obs["msoftdrop"] < obs["mass"] - 1e-6) > 0.2  # grooming removes something in many jets
    assert np.all(obs["msoftdrop"] <= obs["mass"] + 1e-9)


def direct_d2(pt, eta, phi, m):
    """D2 (beta = 1) by the defining triple sums, with z_i = pt_i / sum pt and rapidity-azimuth distances."""
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    y = 0.5 * np.log((e + pz) / (e - pz))
    z = pt / pt.sum()

    def dr(i, j):
        dphi = (phi[i] - phi[j] + np.pi) % (2 * np.pi) - np.pi
        return np.hypot(y[i] - y[j], dphi)

    idx = range(len(pt))
    e2 = sum(z[i] * z[j] * dr(i, j) for i, j in itertools.combinations(idx, 2))
    e3 = sum(z[i] * z[j] * z[k] * dr(i, j) * dr(i, k) * dr(j, k) for i, j, k in itertools.combinations(idx, 3))
    return e3 / e2**3


def test_d2_matches_direct_computation_and_fastjet(jets_and_obs):
    cons, obs = jets_and_obs
    for j in range(5):
        c = cons[j]
        ref = direct_d2(*(ak.to_numpy(c[f]) for f in ("pt", "eta", "phi", "mass")))
        assert obs["d2"][j] == pytest.approx(ref, rel=1e-10)
    ecf = ak.to_numpy(fastjet_sequence(cons).exclusive_jets_energy_correlator(njets=1, func="D2", beta=1.0)).ravel()
    ok = np.isfinite(ecf) & (obs["n_constituents"] >= 3)
    np.testing.assert_allclose(obs["d2"][ok], ecf[ok], rtol=1e-9)


def test_kinematics_and_multiplicity(jets_and_obs):
    cons, obs = jets_and_obs
    px = ak.sum(cons.pt * np.cos(cons.phi), axis=1)
    py = ak.sum(cons.pt * np.sin(cons.phi), axis=1)
    pz = ak.sum(cons.pt * np.sinh(cons.eta), axis=1)
    e = ak.sum(np.sqrt((cons.pt * np.cosh(cons.eta)) ** 2 + cons.mass**2), axis=1)
    np.testing.assert_allclose(obs["pt"], np.hypot(px, py), rtol=1e-12)
    np.testing.assert_allclose(obs["mass"], np.sqrt(e**2 - px**2 - py**2 - pz**2), rtol=1e-9)
    np.testing.assert_array_equal(obs["n_constituents"], ak.to_numpy(ak.num(cons)))


def test_degenerate_jets():
    # one empty jet, one with one constituent, one with two: no NaN, tau_N = 0 for N >= n
    offsets = np.array([0, 0, 1, 3])
    px = np.array([100.0, 50.0, 40.0])
    py = np.array([0.0, 10.0, -5.0])
    pz = np.array([10.0, 0.0, 3.0])
    e = np.sqrt(px**2 + py**2 + pz**2)
    obs = observables_from_arrays(offsets, px, py, pz, e)
    assert set(obs) == set(OBSERVABLES)
    for name in OBSERVABLES:
        assert np.all(np.isfinite(obs[name])), name
    assert obs["n_constituents"].tolist() == [0, 1, 2]
    assert obs["tau1"][1] == 0 and obs["tau2"][2] == 0 and obs["tau1"][2] > 0
    assert obs["d2"][2] == 0


def test_non_finite_input_is_an_error():
    with pytest.raises(ValueError, match="constituent px has 1 non-finite"):
        observables_from_arrays(np.array([0, 1]), np.array([np.nan]), np.zeros(1), np.zeros(1), np.ones(1))
    with pytest.raises(KeyError, match="missing"):
        jet_observables(ak.Array([[{"pt": 1.0}]]))
