from __future__ import annotations

import itertools
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from hepscale.jets import dataset
from hepscale.metrics import jetnet as jm

# the five prime n=4, d=4 multigraphs in energyflow's order (see prime_efps_n4_d4)
GRAPHS = [
    [(0, 1), (0, 1), (0, 2), (0, 3)],
    [(0, 1), (0, 1), (1, 2), (2, 3)],
    [(0, 1), (1, 2), (1, 2), (2, 3)],
    [(0, 1), (1, 2), (2, 0), (0, 3)],
    [(0, 1), (1, 2), (2, 3), (3, 0)],
]


def _particles(n: int, seed: int, *, width: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = np.zeros((n, 30, 3))
    mask = np.arange(30)[None, :] < rng.integers(4, 31, n)[:, None]
    a[..., 0] = rng.normal(0, width, (n, 30))
    a[..., 1] = rng.normal(0, 0.1, (n, 30))
    a[..., 2] = rng.exponential(0.05, (n, 30))
    a[~mask] = 0
    return a, mask


def _brute_force_efp(jet: np.ndarray, edges: list[tuple[int, int]]) -> float:
    z = jet[:, 2]
    m = len(z)
    total = 0.0
    for idx in itertools.product(range(m), repeat=4):
        term = np.prod(z[list(idx)])
        for a, b in edges:
            deta = jet[idx[a], 0] - jet[idx[b], 0]
            dphi = abs(jet[idx[a], 1] - jet[idx[b], 1])
            dphi = min(dphi, 2 * np.pi - dphi)
            term *= np.hypot(deta, dphi)
        total += term
    return total


def test_prime_efps_match_brute_force_sums() -> None:
    rng = np.random.default_rng(0)
    jet = np.column_stack([rng.normal(0, 0.3, 5), rng.uniform(-np.pi, np.pi, 5), rng.random(5)])
    ours = jm.prime_efps_n4_d4(jet[None])[0]
    expected = [_brute_force_efp(jet, g) for g in GRAPHS]
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    # masked (padded) particles do not contribute
    padded = np.concatenate([jet, rng.random((3, 3))])[None]
    mask = np.arange(8)[None, :] < 5
    np.testing.assert_allclose(jm.prime_efps_n4_d4(padded, mask)[0], expected, rtol=1e-10)


def test_prime_efps_match_energyflow() -> None:
    ef = pytest.importorskip("energyflow")
    a, mask = _particles(50, 1)
    efpset = ef.EFPSet(("n==", 4), ("d==", 4), ("p==", 1), measure="hadr", beta=1, normed=None, coords="ptyphim")
    expected = efpset.batch_compute(a[:, :, [2, 0, 1]], n_jobs=1)
    np.testing.assert_allclose(jm.prime_efps_n4_d4(a, mask), expected, rtol=1e-10)


def test_jet_mass_of_two_massless_particles() -> None:
    jet = np.array([[[0.3, 0.1, 0.6], [-0.2, -0.3, 0.4]]])
    deta, dphi = 0.5, 0.4
    expected = np.sqrt(2 * 0.6 * 0.4 * (np.cosh(deta) - np.cos(dphi)))
    assert jm.jet_masses(jet)[0] == pytest.approx(expected, rel=1e-12)


def test_w1_metrics_are_seeded_and_scale_as_expected() -> None:
    a, ma = _particles(2000, 1)
    b, mb = _particles(2000, 2)
    kw = dict(n_eval=1500, n_batches=3)
    assert jm.w1m(a, b, mask1=ma, mask2=mb, seed=3, **kw) == jm.w1m(a, b, mask1=ma, mask2=mb, seed=3, **kw)
    assert jm.w1m(a, b, mask1=ma, mask2=mb, seed=3, **kw) != jm.w1m(a, b, mask1=ma, mask2=mb, seed=4, **kw)
    # doubling every pT doubles every mass: W1(m, 2m) = mean(m)
    doubled = a.copy()
    doubled[..., 2] *= 2
    mean_mass = jm.jet_masses(a, ma).mean()
    w, _ = jm.w1m(a, doubled, mask1=ma, mask2=ma, seed=0, **kw)
    assert w == pytest.approx(mean_mass, rel=0.05)
    # a shift of every particle's eta_rel by 0.05 is a W1 of 0.05 in eta_rel only
    shifted = a.copy()
    shifted[..., 0] += 0.05 * ma
    means, stds = jm.w1p(a, shifted, mask1=ma, mask2=ma, seed=0, **kw)
    assert means[0] == pytest.approx(0.05, rel=0.1)
    assert means[1] < 0.02 and means[2] < 0.01
    assert stds.shape == (3,)
    # EFPs are translation invariant in (eta, phi)
    e_means, _ = jm.w1efp(a, shifted, mask1=ma, mask2=ma, seed=0, **kw)
    same, _ = jm.w1efp(a, a, mask1=ma, mask2=ma, seed=0, **kw)
    np.testing.assert_allclose(e_means, same, rtol=1e-9)


def test_frechet_distance_known_answer() -> None:
    # 1D Gaussians: (m1 - m2)^2 + (s1 - s2)^2
    assert jm.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_fpd_and_kpd_of_shifted_gaussians() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6000, 4))
    y = rng.normal(size=(6000, 4))
    mu = np.array([0.3, 0.0, -0.2, 0.1])
    kw = dict(min_samples=1000, max_samples=3000, num_batches=4, num_points=4, normalise=False)
    val, err = jm.fpd(x, y + mu, **kw)
    assert val == pytest.approx(mu @ mu, rel=0.15)
    assert jm.fpd(x, y + mu, **kw) == (val, err)
    same, same_err = jm.fpd(x, y, **kw)
    assert same < 0.2 * val
    k_same, k_same_err = jm.kpd(x, y, num_batches=5, batch_size=800)
    k_shift, k_shift_err = jm.kpd(x, y + mu, num_batches=5, batch_size=800)
    assert abs(k_same) < 3 * k_same_err + 1e-3
    assert k_shift > 3 * k_shift_err and k_shift > 5 * abs(k_same)


def test_particle_arrays_reproduce_the_dataset_mass(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    counts = rng.integers(3, 40, 200)
    total = int(counts.sum())
    cons = ak.zip(
        {"pt": rng.exponential(20, total) + 1, "eta": rng.normal(0, 0.2, total),
         "phi": rng.normal(0, 0.2, total), "mass": np.zeros(total)}
    )
    jets = dataset.build_jets(ak.unflatten(cons, counts))
    part, mask = jm.particle_arrays(jets, n_particles=64)
    np.testing.assert_array_equal(mask.sum(axis=1), np.minimum(counts, 64))
    assert part.shape == (200, 64, 3)
    # jet mass / jet pT from the relative particle features (all constituents kept)
    rel = jm.jet_masses(part, mask)
    np.testing.assert_allclose(rel * ak.to_numpy(jets.pt), ak.to_numpy(jets.mass), rtol=1e-6)
    # and the evaluation over files: seeded, all metrics present
    ref, gen = tmp_path / "ref.parquet", tmp_path / "gen.parquet"
    dataset.write_jets(ref, jets)
    dataset.write_jets(gen, jets[::-1])
    out = jm.evaluate_datasets(gen, ref, n_eval=150, n_batches=2, seed=1)
    assert out == jm.evaluate_datasets(gen, ref, n_eval=150, n_batches=2, seed=1)
    assert set(out) >= {"w1m", "w1p", "w1efp", "fpd", "kpd"}
    assert out["w1m"]["value"] > 0 and len(out["w1efp"]["per_efp"]) == 5


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        jm.w1m(np.zeros((10, 3)), np.zeros((10, 3)))
    a, m = _particles(10, 1)
    bad = a.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        jm.w1p(a, bad, mask1=m, mask2=m, n_eval=5, n_batches=1)
    with pytest.raises(ValueError, match="empty"):
        jm.w1m(np.zeros((0, 30, 3)), a)
    with pytest.raises(ValueError, match="features"):
        jm.fpd(np.zeros((10, 3)), np.zeros((10, 4)))
