"""The histogram estimator of the SWD (``method="histogram"``) against the exact one."""

from __future__ import annotations

import numpy as np
import pytest
from _synthetic import OBSERVABLE_NAMES as NAMES
from _synthetic import observable_sample

from hepscale.metrics import _histogram, swd


def test_histogram_bootstrap_matches_exact_on_the_same_resamples() -> None:
    """Same resamples, same directions: the two estimators agree within 1% of the floor."""
    rng = np.random.default_rng(11)
    gen, ref = observable_sample(rng, 20_000, shift=2.0), observable_sample(rng, 40_000)
    kw = dict(n_jets=20_000, n_bootstraps=10, n_projections=64, seed=2)
    exact = swd.bootstrap_swd(gen, ref, method="exact", **kw)
    hist = swd.bootstrap_swd(gen, ref, method="histogram", **kw)
    assert exact.floor is not None and hist.floor is not None and exact.floor_std is not None
    tol = 0.01 * exact.floor
    # the comparison resolves single resamples: their spread is far above the tolerance
    assert exact.swd_std > 5 * tol and exact.floor_std > 5 * tol
    assert abs(hist.swd - exact.swd) < tol
    assert abs(hist.floor - exact.floor) < tol
    assert np.abs(np.subtract(hist.swd_values, exact.swd_values)).max() < tol
    assert np.abs(np.subtract(hist.floor_values, exact.floor_values)).max() < tol
    assert hist.floor_std is not None and abs(hist.floor_std - exact.floor_std) < tol
    assert abs(hist.swd_std - exact.swd_std) < tol
    # a 2 GeV mass shift is resolved by both
    assert hist.swd > hist.floor + 2 * hist.floor_std / np.sqrt(10)
    # the per-observable W1 are exact in both
    assert hist.per_observable == exact.per_observable


def test_histogram_single_swd_matches_exact() -> None:
    """Equal sizes, unequal sizes and weights: the single-SWD histogram path against exact."""
    rng = np.random.default_rng(12)
    x, y = observable_sample(rng, 30_000, shift=3.0), observable_sample(rng, 30_000)
    theta = swd.random_projections(5, 100, seed=4)
    ex = swd.sliced_wasserstein(x, y, projections=theta)
    hi = swd.sliced_wasserstein(x, y, projections=theta, method="histogram")
    assert hi == pytest.approx(ex, rel=2e-3)
    w = np.exp(-(x[:, 0] - x[:, 0].mean()) / 50.0)  # favours light jets: changes the mass distribution
    ex_w = swd.sliced_wasserstein(x, y[:20_000], projections=theta, weights_x=w)
    hi_w = swd.sliced_wasserstein(x, y[:20_000], projections=theta, weights_x=w, method="histogram")
    assert hi_w == pytest.approx(ex_w, rel=2e-3)
    # weights matter: the weighted distance is not the unweighted one
    assert abs(ex_w - swd.sliced_wasserstein(x, y[:20_000], projections=theta)) > 0.2 * ex_w


@pytest.mark.parametrize("delta", [0.05, 0.5])
def test_histogram_known_answer_shifted_gaussians(delta: float) -> None:
    """Two 1D Gaussian samples shifted by ``delta``: W1 = delta."""
    rng = np.random.default_rng(13)
    u = rng.normal(size=100_000)
    one = np.array([[1.0]])
    # the same sample shifted: the exact W1 is delta, without sampling noise
    same = swd.sliced_wasserstein(u + delta, u, projections=one, standardize=False, method="histogram")
    assert same == pytest.approx(delta, rel=1e-3)
    # independent samples: delta within the sampling noise, and the exact estimator's value
    v = rng.normal(size=100_000)
    ind = swd.sliced_wasserstein(v + delta, u, projections=one, standardize=False, method="histogram")
    exact = swd.sliced_wasserstein(v + delta, u, projections=one, standardize=False)
    assert ind == pytest.approx(delta, abs=0.01)
    assert ind == pytest.approx(exact, rel=2e-3)


@pytest.mark.parametrize("multiplicity", [1, 100])
def test_histogram_of_discrete_values_is_exact(multiplicity: int) -> None:
    """Values on two atoms fall into bins of their own: the histogram W1 is the exact W1.

    With every jet counted 100 times the bin of the atom 0 holds about 2400 x 100 counts,
    beyond int16: the kernel must switch to its int32 accumulators.
    """
    rng = np.random.default_rng(14)
    a = rng.binomial(1, 0.3, size=(3000, 1)).astype(np.float32)
    b = rng.binomial(1, 0.5, size=(3000, 1)).astype(np.float32)
    half = np.arange(3000) % 2 == 1
    # column 0: every jet; column 1: every other jet of both samples
    counts = [np.stack([np.full(3000, multiplicity), multiplicity * half], axis=1).astype(np.int8) for _ in range(2)]
    inputs = _histogram.hist_pools([a, b], counts)
    w1, n_bins = _histogram.hist_w1(*inputs, np.array([[0, 1]]), np.array([[1.0]]), 1.0 / multiplicity, 1000)
    assert n_bins[0] >= 2
    # exact: atoms 0 and 1, so W1 = |fraction of zeros in a - fraction of zeros in b|
    for r, keep in enumerate([np.ones(3000, bool), half]):
        expected = abs(np.mean(a[keep, 0] == 0) - np.mean(b[keep, 0] == 0))
        assert expected > 0.1
        assert w1[0, r, 0] / keep.sum() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("garbage", [1, 1000])
def test_histogram_floor_is_robust_to_outliers_of_the_generated_sample(garbage: int) -> None:
    """Generated jets far out (masses of 1e4-1e6 GeV, thousands of standard deviations) must
    not coarsen the bins of the reference: the floor stays within 1% of its exact value."""
    rng = np.random.default_rng(16)
    gen, ref = observable_sample(rng, 5000, shift=1.0), observable_sample(rng, 10_000)
    gen[:garbage, 0] = rng.uniform(1e4, 1e6, garbage)  # one outlier, or 20% garbage
    kw = dict(n_jets=5000, n_bootstraps=4, n_projections=32, seed=3)
    exact = swd.bootstrap_swd(gen, ref, method="exact", **kw)
    hist = swd.bootstrap_swd(gen, ref, method="histogram", **kw)
    assert exact.floor is not None and hist.floor is not None
    assert abs(hist.floor - exact.floor) < 0.01 * exact.floor
    assert np.abs(np.subtract(hist.floor_values, exact.floor_values)).max() < 0.01 * exact.floor
    # the SWD of such a sample is huge; the histogram's is within a few per cent of it
    assert exact.swd > 10 * exact.floor
    assert hist.swd == pytest.approx(exact.swd, rel=0.05)


def test_histogram_perfect_model_reaches_the_floor() -> None:
    """An independent real sample as the generated one: SWD / floor = 1 with the histogram."""
    ratios = []
    for trial in range(20):
        rng = np.random.default_rng(200 + trial)
        gen, ref = observable_sample(rng, 1000), observable_sample(rng, 3000)
        res = swd.bootstrap_swd(gen, ref, n_jets=1000, n_bootstraps=4, n_projections=32, seed=trial, method="histogram")
        assert res.method == "histogram" and res.floor is not None
        ratios.append(res.swd / res.floor)
    mean, err = np.mean(ratios), np.std(ratios, ddof=1) / np.sqrt(len(ratios))
    assert abs(mean - 1.0) < 3 * err + 0.01, (mean, err)
    # and a model 40 GeV off in mass is far above it
    rng = np.random.default_rng(300)
    bad = swd.bootstrap_swd(observable_sample(rng, 1000, shift=40.0), observable_sample(rng, 3000), n_jets=1000, n_bootstraps=4,
                            n_projections=32, method="histogram")
    assert bad.floor is not None and bad.swd > 2 * bad.floor


def test_method_and_bins_are_recorded() -> None:
    rng = np.random.default_rng(15)
    gen, ref = observable_sample(rng, 600), observable_sample(rng, 1200)
    kw = dict(n_jets=600, n_bootstraps=2, n_projections=16, seed=1)
    default = swd.bootstrap_swd(gen, ref, **kw).to_dict()
    assert default["method"] == "histogram" and default["bins"] == swd.DEFAULT_BINS == 1000
    # the keys callers read are unchanged
    for key in ("mean", "std", "floor_mean", "floor_std", "per_observable", "observables", "n_jets", "values",
                "floor_values", "pool_sizes", "n_bootstraps", "n_projections", "p", "seed", "replace"):
        assert key in default, key
    assert default["observables"] == list(NAMES) and len(default["values"]) == 2
    coarse = swd.bootstrap_swd(gen, ref, bins=200, **kw).to_dict()
    assert coarse["method"] == "histogram" and coarse["bins"] == 200
    assert coarse["mean"] != default["mean"]  # the bins enter the estimate
    exact = swd.bootstrap_swd(gen, ref, method="exact", **kw).to_dict()
    assert exact["method"] == "exact" and exact["bins"] is None
    p2 = swd.bootstrap_swd(gen, ref, p=2, **kw).to_dict()  # auto: exact for p != 1
    assert p2["method"] == "exact" and p2["bins"] is None
    with pytest.raises(ValueError, match="p = 1"):
        swd.bootstrap_swd(gen, ref, p=2, method="histogram", **kw)
    with pytest.raises(ValueError, match="method must be one of"):
        swd.bootstrap_swd(gen, ref, method="binned", **kw)
    with pytest.raises(ValueError, match="bins must be at least 10"):
        swd.sliced_wasserstein(gen, ref, method="histogram", bins=3)
