"""Tests of the learnable window: per-position asymptotes against scipy, a planted window, the false-positive
rate of flat positions against its nominal value, edges of the exponent range, bootstrap and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import curve_fit

from hepscale.errors import DataError
from hepscale.fit.window import (
    ALPHA_RANGE,
    fit_positions,
    learnable_window,
    null_threshold,
    position_matrix,
)

N_POS = 30
WINDOW = np.arange(5, 15)
X = np.geomspace(1e6, 1e9, 10)


def planted(seed: int, *, amplitude: float, sigma: float, alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-position losses of 10 runs: positions 5..14 fall as E + A x^-alpha with A x_min^-alpha = amplitude,
    the others are flat; Gaussian noise of standard deviation sigma."""
    rng = np.random.default_rng(seed)
    A = np.zeros(N_POS)
    A[WINDOW] = amplitude * X[0] ** alpha
    E = 2.0 + 0.02 * np.arange(N_POS)
    return X, E + np.outer(X**-alpha, A) + rng.normal(0.0, sigma, (len(X), N_POS))


def test_planted_window_is_found() -> None:
    x, losses = planted(0, amplitude=0.5, sigma=0.005)
    res = learnable_window(x, losses, n_resamples=200, seed=0)
    assert res.positions == list(range(5, 15))
    assert (res.start, res.end, res.size, res.contiguous) == (5, 14, 10, True)
    # reducible loss at x_max: A x_max^-0.5 = 0.5 (x_min / x_max)^0.5
    truth = 0.5 * math.sqrt(X[0] / X[-1])
    r, se = res.fits.reducible[WINDOW], res.fits.reducible_se_full[WINDOW]
    assert np.all(np.abs(r - truth) < 4 * se)
    np.testing.assert_allclose(res.fits.alpha[WINDOW], 0.5, atol=0.1)
    np.testing.assert_allclose(res.fits.E[WINDOW], 2.0 + 0.02 * WINDOW, atol=0.03)
    np.testing.assert_allclose((res.fits.E + res.fits.reducible)[WINDOW], 2.0 + 0.02 * WINDOW + truth, atol=0.01)
    # bootstrap: the size interval holds the size, the window's positions are learnable in (almost) every resample
    low, high = res.ci["size"]
    assert low <= 10 <= high and res.size_std < 2.0
    assert np.all(res.learnable_fraction[WINDOW] > 0.95)
    ci = res.reducible_ci[WINDOW]
    assert np.all((ci[:, 0] <= r) & (r <= ci[:, 1]))
    body = res.to_dict()
    assert body["params"] == {"start": 5, "end": 14, "size": 10, "reducible_total": pytest.approx(r.sum())}
    assert body["window"]["positions"] == list(range(5, 15))
    assert len(body["per_position"]["reducible"]) == N_POS and body["threshold"] > 2.0


def test_noise_larger_than_the_signal_gives_no_window() -> None:
    # A x_min^-0.5 = 0.5 sigma: the largest change of any position is below the noise of one run
    x, losses = planted(1, amplitude=0.0025, sigma=0.005)
    res = learnable_window(x, losses, n_resamples=50, seed=0)
    assert res.positions == [] and res.size == 0 and res.start is None and res.end is None
    assert res.to_dict()["params"]["size"] == 0
    # over many noise draws, positions pass about as often as flat ones (2.3% at z = 2), not as a window
    threshold = null_threshold(X, 2.0)
    passed = np.array([fit_positions(*planted(seed, amplitude=0.0025, sigma=0.005)).learnable(threshold, 2.0)
                       for seed in range(40)])
    assert passed.mean() < 0.05 and passed.sum(axis=1).max() <= 3


def test_flat_positions_pass_at_the_nominal_rate() -> None:
    """z = 2 means a flat position passes with probability P(N(0,1) > 2) = 2.28%, whatever the noise level."""
    rng = np.random.default_rng(7)
    flat = 1.5 + rng.normal(0.0, 0.03, (len(X), 20_000))
    threshold = null_threshold(X, 2.0, seed=1)
    assert 1.8 < threshold < 2.6
    rate = float(np.mean(fit_positions(X, flat).learnable(threshold, 2.0)))
    nominal = 0.5 * math.erfc(2.0 / math.sqrt(2.0))
    assert rate == pytest.approx(nominal, abs=0.006)
    # without the calibration (threshold = z) the search over alpha passes flat positions far more often
    assert float(np.mean(fit_positions(X, flat).z_score > 2.0)) > 2.0 * nominal


def test_fit_matches_scipy_curve_fit() -> None:
    rng = np.random.default_rng(3)
    x = np.geomspace(1e5, 1e8, 9)
    y = 1.2 + 40.0 * x**-0.35 + rng.normal(0.0, 0.002, x.size)
    fits = fit_positions(x, y[:, None])
    assert fits.alpha_bound[0] == 0

    def model(xv, E, r, alpha):
        return E + r * (xv / x.max()) ** -alpha

    popt, pcov = curve_fit(model, x, y, p0=[1.0, 0.01, 0.3])
    np.testing.assert_allclose([fits.E[0], fits.reducible[0], fits.alpha[0]], popt, rtol=1e-4)
    assert fits.reducible_se_full[0] == pytest.approx(math.sqrt(pcov[1, 1]), rel=1e-3)
    # the resolution: the standard error of r at the fitted alpha, from an ordinary least-squares fit
    basis = np.column_stack([np.ones_like(x), (x / x.max()) ** -popt[2]])
    coef, rss, *_ = np.linalg.lstsq(basis, y, rcond=None)
    cov = rss[0] / (len(x) - 3) * np.linalg.inv(basis.T @ basis)
    assert fits.reducible_se[0] == pytest.approx(math.sqrt(cov[1, 1]), rel=1e-3)
    assert fits.reducible[0] == pytest.approx(coef[1], rel=1e-4)
    np.testing.assert_allclose(fits.fitted[:, 0], model(x, *popt), atol=1e-6)


def test_edges_of_the_exponent_range_and_saturated_positions() -> None:
    rng = np.random.default_rng(5)
    x = np.geomspace(1e6, 1e9, 8)
    straight = 3.0 - 0.03 * np.log(x) + rng.normal(0.0, 0.002, x.size)  # no asymptote in sight
    noisy_saturated = 2.0 + 0.5 * (x / x[0]) ** -8.0 + rng.normal(0.0, 0.002, x.size)  # learnt after the first scale
    saturated = 2.0 + 0.5 * (x / x[0]) ** -8.0
    rising = 2.0 + 0.01 * np.log(x / x[0])  # no decrease at all
    fits = fit_positions(x, np.column_stack([straight, noisy_saturated, saturated, rising]))
    assert fits.alpha_bound.tolist()[0] == -1 and fits.alpha_bound.tolist()[2:] == [1, 0]
    assert fits.alpha[0] == pytest.approx(ALPHA_RANGE[0]) and fits.alpha[2] == pytest.approx(ALPHA_RANGE[1])
    # on the lower edge r is the reducible loss of the slowest allowed power law: drop / ((x_max/x_min)^0.05 - 1)
    drop = 0.03 * math.log(x[-1] / x[0])
    assert fits.reducible[0] == pytest.approx(drop / ((x[-1] / x[0]) ** 0.05 - 1.0), rel=0.05)
    assert fits.reducible[3] == 0.0 and math.isnan(fits.reducible_se[3])
    # the saturated position: a significant decrease, but a reducible loss far below what the runs resolve
    assert fits.alpha[1] > 2.0 and fits.z_score[1] > 10.0
    assert fits.reducible[1] < 1e-3 * fits.noise[1]
    assert fits.learnable(3.0, 2.0).tolist() == [True, False, False, False]


def test_bootstrap_is_seeded_and_frac_filters() -> None:
    x, losses = planted(1, amplitude=0.5, sigma=0.005)
    losses[:, 20] += 0.2 * (x / x[0]) ** -0.5  # position 20: 0.4 of the reducible loss of the window's
    a = learnable_window(x, losses, n_resamples=40, seed=4)
    b = learnable_window(x, losses, n_resamples=40, seed=4)
    assert a.ci == b.ci and np.array_equal(a.reducible_ci, b.reducible_ci)
    assert 20 in a.positions and not a.contiguous
    filtered = learnable_window(x, losses, n_resamples=0, seed=4, frac=0.6)
    assert filtered.positions == list(range(5, 15))
    assert math.isnan(filtered.size_std) and all(math.isnan(v) for v in filtered.ci["size"])


@pytest.mark.parametrize(
    ("x", "losses", "message"),
    [
        (np.array([1e6, 1e7, 1e8, 1e8]), np.ones((4, 3)), "3 distinct value"),
        (np.geomspace(1e6, 1e9, 5), np.ones((4, 3)), "do not match 5 runs"),
        (np.array([1e6, 0.0, 1e8, 1e9, 1e10]), np.ones((5, 3)), "finite and positive"),
        (np.geomspace(1e6, 1e9, 5), np.full((5, 3), np.nan), "must be finite"),
    ],
)
def test_bad_input_is_named(x: np.ndarray, losses: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        learnable_window(x, losses, x_name="tokens_seen", n_resamples=0)


def test_position_matrix_reads_json_cells() -> None:
    m = position_matrix(["[1.0, 2.0, 3.0]", [4.0, 5.0], np.array([6.0, 7.0, 8.0])])
    np.testing.assert_array_equal(m, [[1.0, 2.0], [4.0, 5.0], [6.0, 7.0]])
    with pytest.raises(DataError, match="column 'val_loss_per_position', row 1: missing"):
        position_matrix(["[1.0]", None])
