from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
from _synthetic import OBSERVABLE_NAMES as NAMES
from _synthetic import observable_sample

from hepscale.metrics import swd


@pytest.mark.parametrize("sizes", [(3000, 3000), (3000, 1999)])
def test_wasserstein_1d_matches_scipy(sizes: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    u = rng.normal(size=sizes[0])
    v = rng.normal(0.2, 1.3, size=sizes[1])
    assert swd.wasserstein_1d(u, v) == pytest.approx(scipy.stats.wasserstein_distance(u, v), rel=1e-9)


def test_wasserstein_1d_weighted_and_p2() -> None:
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(2)
    u, v = rng.normal(size=1000), rng.exponential(size=1500)
    wu, wv = rng.random(1000), rng.random(1500)
    expected = scipy.stats.wasserstein_distance(u, v, wu, wv)
    assert swd.wasserstein_1d(u, v, weights_u=wu, weights_v=wv) == pytest.approx(expected, rel=1e-9)
    # POT's wasserstein_1d returns W_p^p
    w2 = ot.wasserstein_1d(u, v, wu / wu.sum(), wv / wv.sum(), p=2)
    assert swd.wasserstein_1d(u, v, p=2, weights_u=wu, weights_v=wv) ** 2 == pytest.approx(w2, rel=1e-8)


def test_wasserstein_1d_known_shift() -> None:
    u = np.random.default_rng(3).normal(size=500)
    assert swd.wasserstein_1d(u, u + 0.75) == pytest.approx(0.75, rel=1e-12)
    assert swd.wasserstein_1d(u, u + 0.75, p=2) == pytest.approx(0.75, rel=1e-6)


def test_random_projections_are_unit_and_seeded() -> None:
    a = swd.random_projections(5, 100, seed=7)
    assert a.shape == (5, 100)
    np.testing.assert_allclose(np.linalg.norm(a, axis=0), 1.0)
    np.testing.assert_array_equal(a, swd.random_projections(5, 100, seed=7))
    assert not np.allclose(a, swd.random_projections(5, 100, seed=8))


@pytest.mark.parametrize("p", [1.0, 2.0])
@pytest.mark.parametrize("n_x", [2000, 1500])
def test_swd_matches_pot_with_identical_projections(p: float, n_x: int) -> None:
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(4)
    x, y = observable_sample(rng, n_x, shift=3.0), observable_sample(rng, 2000)
    theta = swd.random_projections(5, 200, seed=11)
    mean, std = y.mean(axis=0), y.std(axis=0)
    expected = ot.sliced_wasserstein_distance((x - mean) / std, (y - mean) / std, projections=theta, p=p)
    ours = swd.sliced_wasserstein(x, y, projections=theta, p=p)
    assert abs(ours - expected) / expected < 1e-2
    # in fact they agree to float32 rounding of the projections
    assert ours == pytest.approx(expected, rel=1e-4)


def test_swd_of_a_shift_is_the_mean_projected_shift() -> None:
    """x = y + delta std(y): every projection's W1 is |theta . delta| exactly."""
    rng = np.random.default_rng(5)
    y = observable_sample(rng, 1000)
    delta = np.array([0.3, -0.2, 0.1, 0.0, 0.4])
    x = y + delta * y.std(axis=0)
    theta = swd.random_projections(5, 4000, seed=1)
    assert swd.sliced_wasserstein(x, y, projections=theta) == pytest.approx(np.abs(theta.T @ delta).mean(), rel=1e-4)
    # and the Monte Carlo over directions converges to |delta| E|theta_1| on S^4
    d = 5
    e_abs = math.gamma(d / 2) / (math.sqrt(math.pi) * math.gamma((d + 1) / 2))
    assert swd.sliced_wasserstein(x, y, n_projections=4000, seed=2) == pytest.approx(
        np.linalg.norm(delta) * e_abs, rel=0.03
    )


def test_swd_unequal_and_weighted_match_exact_resampling() -> None:
    """Integer weights equal repeated jets; unequal sizes use the exact quantile walk."""
    rng = np.random.default_rng(6)
    x, y = observable_sample(rng, 700, shift=5.0), observable_sample(rng, 900)
    w = rng.integers(0, 4, size=700)
    repeated = np.repeat(x, w, axis=0)
    a = swd.sliced_wasserstein(x, y, weights_x=w, seed=3, n_projections=50)
    b = swd.sliced_wasserstein(repeated, y, seed=3, n_projections=50)
    assert a == pytest.approx(b, rel=1e-9)
    # equal-size sorting path and weighted path agree
    y2 = y[:700]
    c = swd.sliced_wasserstein(x, y2, seed=3, n_projections=50)
    d = swd.sliced_wasserstein(x, y2, seed=3, n_projections=50, weights_y=np.ones(700))
    assert c == pytest.approx(d, rel=1e-6)


def test_bootstrap_without_replacement_of_whole_pools_equals_direct_swd() -> None:
    rng = np.random.default_rng(7)
    gen, ref = observable_sample(rng, 1500, shift=4.0), observable_sample(rng, 1500)
    for p, method in ((2.0, "auto"), (1.0, "exact"), (1.0, "histogram")):
        res = swd.bootstrap_swd(
            gen, ref, n_jets=1500, n_bootstraps=2, n_projections=64, p=p, seed=5, floor=False, replace=False,
            method=method,
        )
        assert res.method == ("exact" if method == "auto" else method)
        direct = swd.sliced_wasserstein(gen, ref, n_projections=64, p=p, seed=5, method=res.method)
        assert res.swd == pytest.approx(direct, rel=1e-6)
        assert res.swd_std == pytest.approx(0.0, abs=1e-12)
        assert res.floor is None
    # per-observable W1 in the observable's own units (GeV for the mass)
    for i, name in enumerate(NAMES):
        expected = scipy.stats.wasserstein_distance(gen[:, i], ref[:, i])
        assert res.per_observable[name]["mean"] == pytest.approx(expected, rel=1e-5)


def test_bootstrap_is_reproducible_and_floor_is_below_a_shifted_sample() -> None:
    rng = np.random.default_rng(8)
    ref = observable_sample(rng, 4000)
    same = observable_sample(rng, 2000)
    shifted = observable_sample(rng, 2000, shift=40.0)
    kw = dict(n_jets=2000, n_bootstraps=5, n_projections=64, seed=3)
    a = swd.bootstrap_swd(same, ref, **kw)
    b = swd.bootstrap_swd(same, ref, **kw)
    assert a == b
    c = swd.bootstrap_swd(same, ref, **{**kw, "seed": 4})
    assert c.swd != a.swd
    assert len(a.swd_values) == 5 and len(a.floor_values) == 5
    assert a.swd_std > 0 and a.floor_std is not None and a.floor_std > 0
    # same distribution: SWD compatible with the floor; shifted: far above it
    assert a.floor is not None and abs(a.swd - a.floor) < 5 * math.hypot(a.swd_std, a.floor_std) + 0.2 * a.floor
    s = swd.bootstrap_swd(shifted, ref, **kw)
    assert s.floor is not None and s.swd > 5 * s.floor
    assert s.per_observable["mass"]["mean"] == pytest.approx(40.0, rel=0.1)
    assert s.to_dict()["observables"] == list(NAMES)


def test_bootstrap_floor_uses_disjoint_halves() -> None:
    """A reference of identical halves (each jet duplicated) still gives a positive floor."""
    rng = np.random.default_rng(9)
    ref = observable_sample(rng, 3000)
    res = swd.bootstrap_swd(ref[:1000], ref, n_jets=1000, n_bootstraps=3, n_projections=32, seed=1)
    assert res.floor is not None and res.floor > 0


def test_bad_input_is_rejected() -> None:
    rng = np.random.default_rng(10)
    good = observable_sample(rng, 200)
    bad = good.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="tau32"):
        swd.bootstrap_swd(bad, good, n_jets=50, n_bootstraps=2, n_projections=8)
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        swd.sliced_wasserstein(bad, good)
    with pytest.raises(ValueError, match="empty"):
        swd.sliced_wasserstein(np.zeros((0, 5)), good)
    with pytest.raises(ValueError, match="n_jets=300"):
        swd.bootstrap_swd(good, good, n_jets=300, n_bootstraps=2)
    with pytest.raises(ValueError, match="2 \\* n_jets|400 are needed"):
        swd.bootstrap_swd(good, good, n_jets=200, n_bootstraps=2)
    flat = good.copy()
    flat[:, 4] = 40.0
    with pytest.raises(ValueError, match="n_constituents"):
        swd.bootstrap_swd(good, flat, n_jets=50, n_bootstraps=2, n_projections=8)
    with pytest.raises(ValueError, match="4 features"):
        swd.sliced_wasserstein(good, good[:, :4])
    with pytest.raises(ValueError, match="p must be"):
        swd.sliced_wasserstein(good, good, p=0.5)


def test_metrics_package_reexports_lazily() -> None:
    """``hepscale.metrics`` names the public API of its modules without importing numba at import."""
    code = (
        "import sys, types\n"
        "import hepscale.metrics\n"
        "assert 'numba' not in sys.modules, 'numba imported by import hepscale.metrics'\n"
        "from hepscale.metrics import jetnet\n"
        "assert isinstance(jetnet, types.ModuleType), jetnet\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    from hepscale import metrics
    from hepscale.metrics import jetnet, tagging

    for module in (swd, jetnet, tagging):
        assert set(module.__all__) <= set(metrics.__all__), module.__name__
        for name in module.__all__:
            assert getattr(metrics, name) is getattr(module, name), f"{module.__name__}.{name}"
    assert not hasattr(metrics, "evaluate_run")  # evaluating a run folder is its task's (hepscale.tasks)
    with pytest.raises(AttributeError):
        _ = metrics.no_such_metric


@pytest.mark.parametrize(("n_gen", "n_ref", "n_jets"), [(400, 4000, 200), (2000, 2000, 500), (800, 12000, 800)])
def test_a_perfect_model_reaches_the_floor(n_gen: int, n_ref: int, n_jets: int) -> None:
    """An independent real sample in place of generated jets: SWD / floor = 1 within its
    uncertainty, whatever the pool sizes, over many independent trials. With pools of the raw
    sizes (``equal_pools=False``) the same estimator is biased when the pools differ."""
    ratios, raw = [], []
    for trial in range(20):
        rng = np.random.default_rng(100 + trial)
        gen, ref = observable_sample(rng, n_gen), observable_sample(rng, n_ref)
        kw = dict(n_jets=n_jets, n_bootstraps=4, n_projections=32, seed=trial)
        res = swd.bootstrap_swd(gen, ref, **kw)
        assert res.pool_sizes == (min(n_gen, n_ref // 2),) * 3
        ratios.append(res.swd / res.floor)
        if 4 * n_gen <= n_ref:  # a generated pool much smaller than the reference halves
            old = swd.bootstrap_swd(gen, ref, equal_pools=False, **kw)
            raw.append(old.swd / old.floor)
    mean, err = np.mean(ratios), np.std(ratios, ddof=1) / np.sqrt(len(ratios))
    assert abs(mean - 1.0) < 3 * err + 0.01, (mean, err)
    if raw:  # the test can fail: unequal pools put a perfect model away from the floor
        raw_mean, raw_err = np.mean(raw), np.std(raw, ddof=1) / np.sqrt(len(raw))
        assert abs(raw_mean - 1.0) > 3 * raw_err, (raw_mean, raw_err)
