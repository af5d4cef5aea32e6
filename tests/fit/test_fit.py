"""Tests of hepscale.fit: laws recovered from synthetic data within bootstrap intervals, derived
quantities against independent computations, bad input, and the command line."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import huber as scipy_huber
from scipy.stats import pearsonr, rankdata

from hepscale.fit import (
    LAWS,
    ChinchillaParams,
    FitOptions,
    _optimize,
    analyse,
    bootstrap_law,
    compute_optimal,
    fit_law,
    learnable_window,
    proxy_relation,
)
from hepscale.fit._optimize import huber, objective
from hepscale.fit.isoflop import frontier_mask, group_budgets, isoflop_analysis
from hepscale.fit.laws import RepetitionLaw

N_BOOT = 150  # the library default is 1000; fewer keep the tests fast

TRUE_CHINCHILLA = {"E": 1.7, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.28}


def chinchilla_data(seed: int = 1, noise: float = 0.01) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e4, 1e8, 8), 12)
    D = np.tile(np.geomspace(1e6, 1e10, 12), 8)
    L = ChinchillaParams(**TRUE_CHINCHILLA).loss(N, D) * np.exp(rng.normal(0.0, noise, N.size))
    return N, D, L


def assert_recovered(params: dict[str, float], ci: dict[str, list[float]], true: dict[str, float], rtol: float) -> None:
    for name, value in true.items():
        low, high = ci[name]
        assert low <= value <= high, f"{name}: true {value} outside CI [{low}, {high}]"
        assert params[name] == pytest.approx(value, rel=rtol), name


# -- building blocks ------------------------------------------------------------------------------


def test_huber_matches_scipy() -> None:
    r = np.array([-3e-3, -1e-3, -2e-4, 0.0, 5e-4, 1e-3, 0.2])
    loss, dr = huber(r, 1e-3)
    np.testing.assert_allclose(loss, scipy_huber(1e-3, r), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(dr, [-1e-3, -1e-3, -2e-4, 0.0, 5e-4, 1e-3, 1e-3])


def _law_inputs(name: str, rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    n = 40
    if name in ("power", "power-offset", "log"):
        x = np.geomspace(1e4, 1e8, n)
        return (x,), 3.0 - 0.1 * np.log(x) + 2.0 + rng.normal(0, 0.01, n)
    if name == "chinchilla":
        N, D = np.geomspace(1e4, 1e8, n), rng.permutation(np.geomspace(1e6, 1e10, n))
        return (N, D), ChinchillaParams(**TRUE_CHINCHILLA).loss(N, D) * 1.01
    U = np.geomspace(1e6, 1e8, n)
    X = (U * rng.uniform(0.5, 40, n), U) if name == "repetition" else (U * rng.uniform(0.5, 40, n), U,
                                                                         np.geomspace(1e4, 1e8, n))
    return X, 2.0 + 300.0 / X[0] ** 0.3 + 0.01 * rng.normal(size=n) ** 2


@pytest.mark.parametrize("name", sorted(LAWS))
@pytest.mark.parametrize("y_scale", ["log", "linear"])
def test_gradient_matches_finite_differences(name: str, y_scale: str) -> None:
    law = LAWS[name]
    rng = np.random.default_rng(4)
    X, y = _law_inputs(name, rng)
    target = np.log(y) if y_scale == "log" else y
    delta = 10.0  # quadratic regime everywhere: a smooth objective to difference
    model = law.model(y_scale)
    for theta in law.starts(X, y)[:: max(1, len(law.starts(X, y)) // 3)]:
        _, grad = objective(theta, model, X, target, delta)
        numeric = np.empty_like(theta)
        for i in range(len(theta)):
            step = 1e-6 * max(1.0, abs(theta[i]))
            up, down = theta.copy(), theta.copy()
            up[i] += step
            down[i] -= step
            numeric[i] = (objective(up, model, X, target, delta)[0] - objective(down, model, X, target, delta)[0]) / (2 * step)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6 * max(1.0, np.abs(numeric).max()))


def test_params_round_trip() -> None:
    for law in LAWS.values():
        theta = law.starts(*_law_inputs(law.name, np.random.default_rng(0)))[0]
        np.testing.assert_allclose(law.theta(law.params(theta)), theta, rtol=1e-12, atol=1e-12)


# -- recovery of known parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "true", "y_of_x"),
    [
        ("power", {"x_c": 3.0e13, "alpha": 0.076}, lambda x, p: (p["x_c"] / x) ** p["alpha"]),
        ("power-offset", {"y_inf": 1.6, "A": 45.0, "alpha": 0.3}, lambda x, p: p["y_inf"] + p["A"] * x ** -p["alpha"]),
        ("log", {"a": 5.0, "b": 0.15}, lambda x, p: p["a"] - p["b"] * np.log(x)),
    ],
)
def test_single_variable_laws_recover_parameters(name, true, y_of_x) -> None:
    rng = np.random.default_rng(11)
    x = np.repeat(np.geomspace(1e4, 1e9, 15), 4)
    y = y_of_x(x, true) * np.exp(rng.normal(0.0, 0.01, x.size))
    fit = fit_law(name, x, y)
    assert fit.converged and not fit.at_bound
    boot = bootstrap_law(fit, x, y, n_resamples=N_BOOT, seed=3)
    assert boot.n_failed == 0
    # x_c = scale^(1/alpha) magnifies the error of the scale by 1/alpha ~ 13 for the power law
    assert_recovered(fit.params, boot.intervals(), true, rtol=0.25 if name == "power" else 0.1)
    # the band of the prediction covers the true curve
    from hepscale.fit import prediction_band

    grid = np.geomspace(2e4, 5e8, 20)
    low, high = prediction_band(fit.law, boot.thetas, (grid,))
    truth = y_of_x(grid, true)
    assert np.all((low <= truth) & (truth <= high))


def test_chinchilla_recovers_parameters_within_ci() -> None:
    N, D, L = chinchilla_data()
    fit = fit_law("chinchilla", (N, D), L)
    assert fit.converged and fit.at_bound == []
    assert fit.n_starts == 256
    boot = bootstrap_law(fit, (N, D), L, n_resamples=N_BOOT, seed=0)
    assert_recovered(fit.params, boot.intervals(), TRUE_CHINCHILLA, rtol=0.15)
    assert fit.params["alpha"] == pytest.approx(0.34, abs=0.01)
    assert fit.params["beta"] == pytest.approx(0.28, abs=0.01)


def test_bootstrap_depends_on_seed_only() -> None:
    x = np.geomspace(1e4, 1e8, 30)
    y = (2.0 + 30.0 * x**-0.3) * np.exp(np.random.default_rng(0).normal(0.0, 0.01, x.size))
    fit = fit_law("power-offset", x, y)
    serial = bootstrap_law(fit, x, y, n_resamples=30, seed=5)
    parallel = bootstrap_law(fit, x, y, n_resamples=30, seed=5, n_jobs=2)
    np.testing.assert_array_equal(serial.thetas, parallel.thetas)
    other = bootstrap_law(fit, x, y, n_resamples=30, seed=6)
    assert not np.array_equal(serial.thetas, other.thetas)


def test_chinchilla_exact_data_gives_exact_parameters() -> None:
    N, D, _ = chinchilla_data()
    L = ChinchillaParams(**TRUE_CHINCHILLA).loss(N, D)
    fit = fit_law("chinchilla", (N, D), L)
    for name, value in TRUE_CHINCHILLA.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-3), name
    assert ChinchillaParams.from_mapping(fit.params).loss(1e6, 1e8) == pytest.approx(
        ChinchillaParams(**TRUE_CHINCHILLA).loss(1e6, 1e8), rel=1e-5)


def test_compute_optimal_matches_constrained_minimum() -> None:
    params = ChinchillaParams(**TRUE_CHINCHILLA)
    for C in (1e15, 1e18, 1e21):
        opt = params.compute_optimal(C)
        # independent: minimise L(N, C / 6N) over ln N
        res = minimize_scalar(lambda u: float(params.loss(math.exp(u), C / (6 * math.exp(u)))),
                              bounds=(0.0, 60.0), method="bounded", options={"xatol": 1e-10})
        assert float(opt["N_opt"]) == pytest.approx(math.exp(res.x), rel=1e-4)
        assert float(opt["N_opt"] * opt["D_opt"] * 6) == pytest.approx(C, rel=1e-9)
        assert float(opt["L_opt"]) == pytest.approx(res.fun, rel=1e-9)
    # exponents: N_opt ~ C^(beta / (alpha + beta))
    n1, n2 = compute_optimal(TRUE_CHINCHILLA, 1e15)["N_opt"], compute_optimal(TRUE_CHINCHILLA, 1e17)["N_opt"]
    assert math.log(n2 / n1) / math.log(100) == pytest.approx(0.28 / 0.62, rel=1e-9)


def test_repetition_effective_data() -> None:
    U = np.full(4, 1e6)
    D = U * np.array([1.0, 1.0 + 1e-6, 1e4, 1e9])
    eff = RepetitionLaw.effective_data(D, U, 15.0)
    assert eff[0] == pytest.approx(1e6)  # one epoch: D' = U = D
    assert eff[1] == pytest.approx(D[1], rel=1e-9)  # first repetitions are worth almost a fresh token
    assert eff[3] == pytest.approx(16e6, rel=1e-9)  # bounded: D' -> U (1 + R*)
    # R = R*: D' = U (1 + R* (1 - 1/e))
    assert float(RepetitionLaw.effective_data(16e6, 1e6, 15.0)) == pytest.approx(1e6 * (1 + 15 * (1 - math.exp(-1))))


def test_repetition_recovers_r_star() -> None:
    rng = np.random.default_rng(2)
    true = {"E": 1.5, "B": 800.0, "beta": 0.3, "R_star": 8.0}
    U = np.repeat(np.geomspace(1e5, 1e8, 6), 8)
    epochs = np.tile(np.geomspace(1.0, 100.0, 8), 6)
    D = U * epochs
    eff = RepetitionLaw.effective_data(D, U, true["R_star"])
    L = (true["E"] + true["B"] / eff ** true["beta"]) * np.exp(rng.normal(0.0, 0.005, D.size))
    fit = fit_law("repetition", (D, U), L)
    boot = bootstrap_law(fit, (D, U), L, n_resamples=N_BOOT, seed=1)
    assert_recovered(fit.params, boot.intervals(), true, rtol=0.25)
    assert fit.derived["max_gain"] == pytest.approx(1.0 + fit.params["R_star"])


def test_repetition_with_n_recovers_parameters() -> None:
    rng = np.random.default_rng(2)
    true = {"E": 1.5, "B": 800.0, "beta": 0.3, "R_star": 8.0, "A": 200.0, "alpha": 0.35}
    U = np.repeat(np.geomspace(1e5, 1e8, 4), 12)
    D = U * np.tile(np.geomspace(1.0, 100.0, 4), 12)
    N = np.tile(np.repeat(np.geomspace(1e4, 1e8, 3), 4), 4)
    eff = RepetitionLaw.effective_data(D, U, true["R_star"])
    L = (true["E"] + true["A"] / N ** true["alpha"] + true["B"] / eff ** true["beta"]) * np.exp(
        rng.normal(0.0, 0.005, D.size))
    law = LAWS["repetition-n"]
    starts = law.starts((D, U, N), L)[::4]  # every 4th of the 576 default starts keeps the test fast
    fit = fit_law(law, (D, U, N), L, starts=starts)
    boot = bootstrap_law(fit, (D, U, N), L, n_resamples=N_BOOT, seed=1)
    assert_recovered(fit.params, boot.intervals(), true, rtol=0.05)


# -- isoFLOP, frontier, proxy, window -------------------------------------------------------------


def isoflop_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    params = ChinchillaParams(**TRUE_CHINCHILLA)
    for C in (1e14, 1e15, 1e16, 1e17):
        n_opt = float(params.compute_optimal(C)["N_opt"])
        for N in n_opt * np.geomspace(1 / 30, 30, 9):
            D = C / (6 * N)
            L = float(params.loss(N, D)) * math.exp(rng.normal(0.0, 0.002))
            rows.append({"N": N, "D": D, "C": C * (1 + rng.uniform(-0.01, 0.01)), "loss": L})
    return pd.DataFrame(rows)


def test_group_budgets() -> None:
    labels, budgets = group_budgets(np.array([1e15, 1.01e15, 1e17, 0.99e15, 1.02e17]), rtol=0.05)
    assert labels.tolist() == [0, 0, 1, 0, 1]
    assert budgets[0] == pytest.approx((1e15 * 1.01e15 * 0.99e15) ** (1 / 3))


def test_isoflop_exponents_match_the_law() -> None:
    table = isoflop_table()
    res = isoflop_analysis(table.N.to_numpy(), table.D.to_numpy(), table.C.to_numpy(), table.loss.to_numpy())
    assert all(p.valid for p in res.parabolas)
    # parabola in ln N is an approximation of the law's minimum: exponents within a few per cent
    assert res.fits["a_N"] == pytest.approx(0.28 / 0.62, rel=0.05)
    assert res.fits["b_D"] == pytest.approx(0.34 / 0.62, rel=0.05)
    for par in res.parabolas:
        assert math.exp(par.u_min) == pytest.approx(float(compute_optimal(TRUE_CHINCHILLA, par.budget)["N_opt"]), rel=0.3)
        assert par.d_opt * math.exp(par.u_min) * 6 == pytest.approx(par.budget, rel=0.05)


def test_isoflop_and_frontier_recover_exponents_within_ci() -> None:
    opts = options(law="isoflop", n_bootstrap=100)
    result = analyse(isoflop_table(), opts).result
    for name, true in (("a_N", 0.28 / 0.62), ("b_D", 0.34 / 0.62)):
        low, high = result["ci"][name]
        assert low <= true <= high, name
    assert [b["valid"] for b in result["budgets"]] == [True] * 4
    # frontier: four runs per budget, all but one above a pure power law in C
    rng = np.random.default_rng(1)
    C = np.geomspace(1e14, 1e18, 25).repeat(4)
    loss = (3e22 / C) ** 0.12 * np.exp(rng.normal(0.0, 0.003, C.size)) + np.tile([0.0, 0.1, 0.3, 0.6], 25)
    result = analyse(pd.DataFrame({"C": C, "loss": loss}), options(law="frontier", n_bootstrap=100)).result
    assert result["fit_quality"]["n_points"] == 25
    assert_recovered(result["params"], result["ci"], {"x_c": 3e22, "alpha": 0.12}, rtol=0.1)


def test_isoflop_minimum_outside_range_is_rejected() -> None:
    table = isoflop_table()
    keep = ~((table.C > 5e16) & (table.N < float(compute_optimal(TRUE_CHINCHILLA, 1e17)["N_opt"]) * 1.5))
    table = table[keep]  # the largest budget now only has runs above its optimum
    res = isoflop_analysis(table.N.to_numpy(), table.D.to_numpy(), table.C.to_numpy(), table.loss.to_numpy())
    assert [p.valid for p in res.parabolas] == [True, True, True, False]
    assert "outside the measured range" in res.parabolas[-1].reason
    assert res.fits["n_budgets_used"] == 3


def test_frontier_mask() -> None:
    C = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([5.0, 4.0, 3.0, 3.5, 2.0, 2.0])
    assert frontier_mask(C, y).tolist() == [True, False, True, False, True, False]


def test_proxy_relation_against_ranks() -> None:
    rng = np.random.default_rng(7)
    loss = rng.uniform(1.5, 3.0, 30)
    swd = 0.01 * (loss - 1.4) ** 2 * np.exp(rng.normal(0.0, 0.1, 30))
    res = proxy_relation(loss, swd, n_resamples=200, seed=0)
    expected = pearsonr(rankdata(loss), rankdata(swd)).statistic
    assert res.rho == pytest.approx(expected, rel=1e-12)
    assert res.rho > 0.9 and res.p_value < 1e-6
    assert res.rho_ci[0] <= res.rho <= res.rho_ci[1]
    assert res.direction == "increasing" and res.isotonic_r2 > 0.9
    exact = proxy_relation(loss, np.exp(-loss), n_resamples=10)
    assert exact.rho == pytest.approx(-1.0) and exact.isotonic_r2 == pytest.approx(1.0)
    noise = proxy_relation(loss, rng.uniform(size=30), n_resamples=10)
    assert noise.p_value > 0.01


def window_runs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    D = np.geomspace(1e7, 1e10, 8)
    positions = np.arange(40)
    slope = np.where((positions >= 6) & (positions <= 25), 0.03, 0.0)
    losses = 3.0 - np.outer(np.log(D), slope) + rng.normal(0.0, 0.002, (len(D), len(positions)))
    return D, losses


def test_learnable_window_recovers_planted_window() -> None:
    D, losses = window_runs()
    res = learnable_window(D, losses, n_resamples=100, seed=0)
    assert (res.start, res.end, res.size) == (6, 25, 20) and res.positions == list(range(6, 26))
    low, high = res.ci["size"]
    assert low <= 20 <= high
    assert np.all(res.learnable_fraction[6:26] == 1.0)
    # straight declines in ln D: alpha_p on the lower edge, r_p = slope ln(D_max/D_min) / ((D_max/D_min)^0.05 - 1)
    assert np.all(res.fits.alpha_bound[6:26] == -1)
    np.testing.assert_allclose(res.fits.reducible[6:26], 0.03 * math.log(1e3) / (1e3**0.05 - 1.0), rtol=0.05)


# -- analyses on tables, bad input ----------------------------------------------------------------


def options(**kwargs) -> FitOptions:
    opts = FitOptions(n_bootstrap=40)
    opts.columns.update({"N": "N", "D": "D", "C": "C", "y": "loss"})
    for key, value in kwargs.items():
        setattr(opts, key, value)
    return opts


def test_analyse_reports_bound_and_non_convergence(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.geomspace(1e4, 1e8, 12)
    table = pd.DataFrame({"N": x, "loss": 2.0 + 0.05 * np.log(x)})  # rising loss: alpha is pushed to 0
    out = analyse(table, options(law="power-offset", n_bootstrap=0))
    assert out.result["fit_quality"]["at_bound"] == ["alpha"]
    assert out.result["params"]["alpha"] == 0.0
    assert any("bound" in w for w in out.result["warnings"])
    monkeypatch.setitem(_optimize.LBFGSB_OPTIONS, "maxiter", 2)
    out = analyse(table, options(law="power-offset", n_bootstrap=0))
    assert out.result["fit_quality"]["converged"] is False
    assert any("did not converge" in w for w in out.result["warnings"])


@pytest.mark.parametrize(
    ("table", "law", "message"),
    [
        (pd.DataFrame({"N": [1e4, 1e5], "D": [1e6, 1e7], "loss": [3.0, 2.5]}), "chinchilla",
         "2 point(s) for law 'chinchilla' with 5 parameters"),
        (pd.DataFrame({"N": [1e4, 1e5, np.nan], "loss": [3.0, 2.5, 2.0]}), "log", "column 'N' (N) has 1 non-finite"),
        (pd.DataFrame({"N": [1e4, 1e5, np.inf], "loss": [3.0, 2.5, 2.0]}), "power", "column 'N' (N) has 1 non-finite"),
        (pd.DataFrame({"N": [1e5] * 4, "loss": [3.0, 2.9, 2.5, 2.0]}), "power",
         "x (column 'N') has a single distinct value"),
        (pd.DataFrame({"N": [1e4, 1e5, 1e6], "loss": [3.0, -2.5, 2.0]}), "log",
         "y (column 'loss') has 1 negative value(s)"),
        (pd.DataFrame({"N": [1e4, 1e4, 1e5, 1e5], "loss": [3.0, 2.9, 2.5, 2.4]}), "power-offset",
         "only 2 distinct value(s) of x (column 'N') for law 'power-offset' with 3 parameters"),
        (pd.DataFrame({"N": [1e4, 0.0, 1e5], "loss": [3.0, 2.9, 2.5]}), "log", "x (column 'N') must be positive"),
    ],
)
def test_bad_input_is_named(table: pd.DataFrame, law: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        analyse(table, options(law=law))


def test_missing_column_is_named() -> None:
    table = pd.DataFrame({"N": [1e4, 1e5, 1e6], "loss": [3.0, 2.5, 2.0]})
    with pytest.raises(KeyError, match="column 'tokens' .*--d-col"):
        opts = options(law="chinchilla")
        opts.columns["D"] = "tokens"
        analyse(table, opts)


# -- command line ---------------------------------------------------------------------------------


@pytest.fixture
def runs_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(21)
    N = np.repeat(np.geomspace(1e4, 1e8, 6), 8)
    D = np.tile(np.geomspace(1e6, 1e10, 8), 6)
    loss = ChinchillaParams(**TRUE_CHINCHILLA).loss(N, D) * np.exp(rng.normal(0.0, 0.005, N.size))
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": N, "D": D, "loss": loss, "model": np.repeat(list("abcdef"), 8)}).to_csv(path, index=False)
    return path


def test_issue_example_command(runs_csv: Path) -> None:
    cwd = runs_csv.parent
    cmd = [sys.executable, "-m", "hepscale.fit", "runs.csv", "--law", "chinchilla", "--n-col", "N", "--d-col", "D",
           "--y-col", "loss", "--output", "fit.json"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((cwd / "fit.json").read_text())
    assert set(result["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert set(result["ci"]) == {"E", "A", "B", "alpha", "beta"}
    assert result["confidence_level"] == 0.95
    assert result["bootstrap"]["n_resamples"] == 1000 and result["bootstrap"]["seed"] == 0
    for name, value in TRUE_CHINCHILLA.items():
        low, high = result["ci"][name]
        assert low <= value <= high, name
        assert low <= result["params"][name] <= high
    assert result["inputs"]["columns"] == {"N": "N", "D": "D", "y": "loss"}
    assert result["fit_quality"]["converged"] is True
    assert (cwd / "fit.pdf").stat().st_size > 0 and (cwd / "fit.png").stat().st_size > 0
    assert "alpha" in proc.stdout and "95% CI" in proc.stdout


def test_cli_reproducible_filters_and_subcommand(runs_csv: Path, tmp_path: Path, capsys) -> None:
    from hepscale.cli import main as hepscale_main
    from hepscale.fit import main

    args = [str(runs_csv), "--law", "log", "--n-col", "N", "--y-col", "loss", "--n-bootstrap", "50",
            "--filter", "D == 1e10", "--no-figure"]
    assert main([*args, "--output", str(tmp_path / "a.json"), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert hepscale_main(["fit", *args, "--output", str(tmp_path / "b.json"), "--format", "table"]) == 0
    assert "b_per_decade" in capsys.readouterr().out
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["params"] == b["params"] == printed["params"] and a["ci"] == b["ci"]
    assert a["inputs"]["n_rows_used"] == 6 and a["inputs"]["n_rows_total"] == 48
    assert a["inputs"]["filters"] == ["D == 1e10"]
    # at D = 1e10 the loss falls with ln N: b > 0, and the interval holds the estimate
    assert a["params"]["b"] > 0 and a["ci"]["b"][0] <= a["params"]["b"] <= a["ci"]["b"][1]


def test_cli_errors_name_the_problem(runs_csv: Path, capsys) -> None:
    from hepscale.fit import main

    assert main([str(runs_csv), "--law", "chinchilla", "--n-col", "params", "--d-col", "D", "--y-col", "loss",
                 "--format", "none"]) == 2
    assert "column 'params'" in capsys.readouterr().err
    assert main([str(runs_csv), "--law", "power", "--n-col", "N", "--y-col", "loss", "--filter", "model == a",
                 "--format", "none"]) == 2
    assert "single distinct value" in capsys.readouterr().err
    assert main([str(runs_csv.parent / "missing.csv"), "--format", "none"]) == 2
    assert "does not exist" in capsys.readouterr().err


def _write_run(folder: Path, i: int, N: float, D: float, C: float, loss: float, **extra) -> None:
    folder.mkdir(parents=True)
    record = {"run_id": f"run{i}", "model": "S", "n_params_non_embedding": N, "n_params_total": 1.2 * N,
              "tokens_seen": D, "unique_tokens": D, "epochs": 1.0, "flops": C, "final_val_loss": loss, **extra}
    (folder / "result.json").write_text(json.dumps(record))


def test_study_folder_laws_write_json_and_figures(tmp_path: Path) -> None:
    from hepscale.fit import main

    study = tmp_path / "study"
    table = isoflop_table(seed=3)
    rng = np.random.default_rng(0)
    for i, row in table.iterrows():
        swd = 0.01 * (row.loss - 1.5) ** 2 * math.exp(rng.normal(0, 0.05))
        _write_run(study / f"C{row.C:.0e}" / f"run{i}", i, row.N, row.D, row.C, row.loss,
                   evaluation={"swd": {"mean": swd, "std": 0.05 * swd}})
    for law, extra in [("isoflop", []), ("frontier", []), ("proxy", ["--metric-err-col", "evaluation.swd.std"]),
                       ("chinchilla", ["--grid", "data"])]:
        out = tmp_path / f"{law}.json"
        assert main([str(study), "--law", law, "--n-bootstrap", "30", "--output", str(out), "--format", "none",
                     *extra]) == 0, law
        result = json.loads(out.read_text())
        assert result["law"] == law and result["params"], law
        assert result["code_version"]["version"]
        assert (tmp_path / f"{law}.png").exists() and (tmp_path / f"{law}.pdf").exists()
    iso = json.loads((tmp_path / "isoflop.json").read_text())
    assert iso["params"]["a_N"] == pytest.approx(0.28 / 0.62, rel=0.05)
    assert iso["ci"]["a_N"][0] <= iso["params"]["a_N"] <= iso["ci"]["a_N"][1]
    proxy = json.loads((tmp_path / "proxy.json").read_text())
    assert proxy["params"]["spearman_rho"] > 0.9
    assert proxy["inputs"]["columns"] == {"loss": "final_val_loss", "metric": "evaluation.swd.mean"}


def test_window_from_study_folder(tmp_path: Path) -> None:
    from hepscale.fit import main

    D, losses = window_runs()
    for i, (d, row) in enumerate(zip(D, losses)):
        _write_run(tmp_path / "study" / f"run{i}", i, 1e6, d, 6e6 * d, float(row.mean()),
                   val_loss_per_position=row.tolist())
    out = tmp_path / "window.json"
    assert main([str(tmp_path / "study"), "--law", "window", "--n-bootstrap", "50", "--output", str(out),
                 "--format", "none"]) == 0
    result = json.loads(out.read_text())
    assert result["x"] == "D"
    assert (result["params"]["start"], result["params"]["end"], result["params"]["size"]) == (6, 25, 20)
    assert result["window"]["positions"] == list(range(6, 26)) and result["window"]["contiguous"] is True
    assert len(result["per_position"]["reducible"]) == 40 and result["z"] == 2.0 and result["frac"] == 0.0


def test_laws_module_holds_the_laws_and_their_fits() -> None:
    """The laws and their fits are one module: every name of ``hepscale.fit.laws.__all__`` that
    ``hepscale.fit`` exports is the same object there, with no module ``__getattr__``."""
    from hepscale import fit
    from hepscale.fit import laws

    for name in set(laws.__all__) & set(fit.__all__):
        assert getattr(laws, name) is getattr(fit, name), name
    assert callable(laws.validate) and "__getattr__" not in vars(laws)
    with pytest.raises(AttributeError):
        _ = laws.no_such_law


def test_cli_reports_a_fit_that_fails_from_every_start(runs_csv: Path, capsys, monkeypatch) -> None:
    from hepscale.fit import analysis, main

    def fail(table: pd.DataFrame, options: FitOptions) -> None:
        raise RuntimeError("no starting point converged")

    monkeypatch.setattr(analysis, "analyse", fail)
    assert main([str(runs_csv), "--n-col", "N", "--d-col", "D", "--y-col", "loss", "--format", "none"]) == 2
    assert "hepscale fit: error: no starting point converged" in capsys.readouterr().err

