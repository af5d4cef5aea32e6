"""The compiled objective of the joint law gives the NumPy objective's numbers, and the same fits."""

from __future__ import annotations

import numpy as np
import pytest

from hepscale.fit import ChinchillaParams, bootstrap_law, fit_law, get_law
from hepscale.fit._optimize import objective


def _points(seed: int = 0, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(4, 8, n)
    D = 10 ** rng.uniform(6, 10, n)
    L = ChinchillaParams(E=1.7, A=400.0, B=2000.0, alpha=0.34, beta=0.28).loss(N, D) * np.exp(rng.normal(0, 0.01, n))
    return N, D, L


@pytest.mark.parametrize("delta", [1e-3, 1e-1])
def test_fused_objective_equals_the_numpy_objective(delta: float) -> None:
    law = get_law("chinchilla")
    fused = law.fused_objective("log")
    assert fused is not None and law.fused_objective("linear") is None
    N, D, L = _points()
    rng = np.random.default_rng(1)
    for theta in np.column_stack([rng.uniform(-1, 2, 20), rng.uniform(0, 10, 20), rng.uniform(0, 12, 20),
                                  rng.uniform(0, 1, 20), rng.uniform(0, 1, 20)]):
        want_value, want_grad = objective(theta, law.log_model, (N, D), np.log(L), delta)
        value, grad = fused(theta, (N, D), np.log(L), delta)
        assert value == pytest.approx(want_value, rel=1e-12, abs=1e-300)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-14)


def test_fits_with_the_compiled_objective_equal_the_numpy_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    N, D, L = _points(seed=2)
    fast = fit_law("chinchilla", (N, D), L)
    boot_fast = bootstrap_law(fast, (N, D), L, n_resamples=20, seed=3)
    monkeypatch.setattr(type(get_law("chinchilla")), "fused_objective", lambda self, y_scale: None)
    slow = fit_law("chinchilla", (N, D), L)
    boot_slow = bootstrap_law(slow, (N, D), L, n_resamples=20, seed=3)
    np.testing.assert_allclose(fast.theta, slow.theta, rtol=1e-6, atol=1e-8)
    # each resample ends at the same minimum: equal objective (points may differ along the flat
    # direction of E, where summation order alone moves L-BFGS-B's end point)
    law = get_law("chinchilla")
    indices = np.random.default_rng(3).integers(0, len(L), size=(20, len(L)))
    for idx, a, b in zip(indices, boot_fast.thetas, boot_slow.thetas):
        fa = objective(a, law.log_model, (N[idx], D[idx]), np.log(L[idx]), slow.delta)[0]
        fb = objective(b, law.log_model, (N[idx], D[idx]), np.log(L[idx]), slow.delta)[0]
        assert fa == pytest.approx(fb, rel=1e-3)
    np.testing.assert_allclose(boot_fast.samples["alpha"], boot_slow.samples["alpha"], atol=2e-3)
    assert fast.params["alpha"] == pytest.approx(0.34, abs=0.03)
