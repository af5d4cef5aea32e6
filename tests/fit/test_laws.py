"""Tests of the laws of repeated data: effective data below and beyond one epoch, the data-constrained law of
Muennighoff et al. (2023) against its published numbers and an independent formula, recovery of its parameters,
and the ``data-constrained`` analysis from the command line."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepscale.fit import LAWS, ChinchillaParams, fit_law, get_law
from hepscale.fit.laws import RepetitionLaw
from hepscale.fit.laws import DataConstrainedLaw, effective_data

#: the fit of Muennighoff et al. (2023), in the parametrisation of their code (exponentials of the fitted logs)
PAPER = {"A": math.exp(6.255414), "B": math.exp(7.3049974), "E": math.exp(0.6254804), "alpha": 0.3526596,
         "beta": 0.3526596, "R_D_star": 15.387756, "R_N_star": 5.309743}

TRUE = {"E": 1.7, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.28, "R_D_star": 15.0, "R_N_star": 5.0}


def reference_loss(p: dict[str, float], N: float, D: float, U: float) -> float:
    """The law written out with scalars, independently of the library."""
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / (p["alpha"] + p["beta"]))
    a, b = p["beta"] / (p["alpha"] + p["beta"]), p["alpha"] / (p["alpha"] + p["beta"])
    U_D = min(U, D)
    budget = (G * U_D) ** (1.0 / b)  # C / 6 at which D_opt = G^-1 (C/6)^b equals U_D
    U_N = min(G * budget**a, N)
    R_D, R_N = D / U_D - 1.0, N / U_N - 1.0
    D_eff = U_D + U_D * p["R_D_star"] * (1.0 - math.exp(-R_D / p["R_D_star"]))
    N_eff = U_N + U_N * p["R_N_star"] * (1.0 - math.exp(-R_N / p["R_N_star"]))
    return p["E"] + p["A"] / N_eff ** p["alpha"] + p["B"] / D_eff ** p["beta"]


def grid_data(n: int = 5) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """n^3 runs: N, U over four decades, 0.25 to 64 epochs; most runs repeat data, many have excess parameters."""
    N, U, epochs = (a.ravel() for a in np.meshgrid(np.geomspace(1e4, 1e8, n), np.geomspace(1e6, 1e10, n),
                                                   np.geomspace(0.25, 64.0, n), indexing="ij"))
    X = (N, U * epochs, U)
    return X, get_law("data-constrained").predict(get_law("data-constrained").theta(TRUE), X)


# -- effective data ------------------------------------------------------------------------------


def test_effective_data_below_one_epoch_is_the_data_seen() -> None:
    U = 1e6
    D = np.geomspace(1e3, 1e6, 50)
    np.testing.assert_allclose(effective_data(D, U, 15.0), D, rtol=1e-12)
    assert RepetitionLaw.effective_data is effective_data
    # the repetition law sees D' = D below one epoch: L = E + B / D^beta
    law = LAWS["repetition"]
    params = {"E": 1.5, "B": 800.0, "beta": 0.3, "R_star": 8.0}
    np.testing.assert_allclose(law.predict(law.theta(params), (D, np.full_like(D, U))), 1.5 + 800.0 / D**0.3,
                               rtol=1e-12)


def test_effective_data_saturates_and_grows_with_d() -> None:
    U, R_star = 1e6, 15.0
    D = np.geomspace(1e4, 1e8, 400)  # up to 100 epochs (beyond, 1 - exp(-R/R*) rounds to 1)
    eff = effective_data(D, U, R_star)
    assert np.all(np.diff(eff) > 0)  # strictly monotone in D, through the one-epoch point
    assert float(effective_data(1e15, U, R_star)) == pytest.approx(U * (1.0 + R_star), rel=1e-12)
    assert np.all(eff < U * (1.0 + R_star))
    # beyond one epoch: D' = U (1 + R* (1 - exp(-R / R*))) with R = D / U - 1
    assert float(effective_data(5e6, U, R_star)) == pytest.approx(U * (1.0 + R_star * (1.0 - math.exp(-4.0 / 15.0))))


# -- the data-constrained law ---------------------------------------------------------------------


def test_data_constrained_published_value() -> None:
    law = get_law("data-constrained")
    value = law.predict(law.theta(PAPER), (6.34e9, 242e9, 25e9))
    assert value.shape == ()
    assert float(value) == pytest.approx(2.2256440889984477, rel=1e-9)
    assert reference_loss(PAPER, 6.34e9, 242e9, 25e9) == pytest.approx(2.2256440889984477, rel=1e-12)


def test_data_constrained_matches_independent_formula() -> None:
    law = get_law("data-constrained")
    rng = np.random.default_rng(1)
    N, U = np.geomspace(1e3, 1e9, 40), rng.permutation(np.geomspace(1e5, 1e10, 40))
    D = U * np.exp(rng.uniform(math.log(0.1), math.log(200.0), 40))
    eff = DataConstrainedLaw.effective(TRUE, N, D, U)
    assert np.any(eff["R_N"] > 0) and np.any(eff["R_N"] == 0) and np.any(D < U) and np.any(D > U)
    expected = [reference_loss(TRUE, n, d, u) for n, d, u in zip(N, D, U)]
    np.testing.assert_allclose(law.predict(law.theta(TRUE), (N, D, U)), expected, rtol=1e-12)
    # U_N is the compute-optimal N of the chinchilla law at the budget where D_opt = U_D
    chinchilla = ChinchillaParams(**{k: TRUE[k] for k in ("E", "A", "B", "alpha", "beta")})
    U_D = np.minimum(U, D)
    budgets = 6.0 * (float(chinchilla.compute_optimal(6.0)["N_opt"]) * U_D) ** ((TRUE["alpha"] + TRUE["beta"])
                                                                               / TRUE["alpha"])
    opt = chinchilla.compute_optimal(budgets)
    np.testing.assert_allclose(opt["D_opt"], U_D, rtol=1e-9)
    np.testing.assert_allclose(eff["U_N"], np.minimum(opt["N_opt"], N), rtol=1e-9)


def test_data_constrained_is_chinchilla_without_repetition_or_excess() -> None:
    law = get_law("data-constrained")
    N = np.array([1e4, 3e4, 1e5])
    D = np.array([1e10, 3e10, 1e11])
    U = D * 2.0  # less than one epoch: D' = D
    eff = DataConstrainedLaw.effective(TRUE, N, D, U)
    assert np.all(eff["R_N"] == 0) and np.all(eff["R_D"] == 0)  # U_N = N: no excess parameters
    np.testing.assert_allclose(eff["N_eff"], N, rtol=1e-12)
    chinchilla = ChinchillaParams(**{k: TRUE[k] for k in ("E", "A", "B", "alpha", "beta")})
    np.testing.assert_allclose(law.predict(law.theta(TRUE), (N, D, U)), chinchilla.loss(N, D), rtol=1e-12)


def test_data_constrained_parameters_and_pickling() -> None:
    law = get_law("data-constrained")
    np.testing.assert_allclose(law.theta(law.params(law.theta(TRUE))), law.theta(TRUE), rtol=1e-14)
    assert law.params(law.theta(TRUE)) == pytest.approx(TRUE, rel=1e-12)
    derived = law.derived(TRUE)
    assert derived["max_gain_D"] == 16.0 and derived["max_gain_N"] == 6.0
    assert derived["a_N_opt"] == pytest.approx(0.28 / 0.62)
    chinchilla = ChinchillaParams(**{k: TRUE[k] for k in ("E", "A", "B", "alpha", "beta")})
    assert derived["G"] == pytest.approx(float(chinchilla.compute_optimal(6.0)["N_opt"]))
    for name in ("data-constrained", "repetition", "repetition-n"):
        copy = pickle.loads(pickle.dumps(LAWS[name]))
        assert copy.name == name and copy.variables == LAWS[name].variables


def test_data_constrained_fit_recovers_parameters() -> None:
    X, y = grid_data()
    law = get_law("data-constrained")
    fit = fit_law(law, X, y, starts=law.starts(X, y)[::4])
    assert fit.converged and fit.at_bound == []
    for name, value in TRUE.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-3), name
    # with 0.5% noise: the same parameters within a few per cent (R* within 30%)
    noisy = y * np.exp(np.random.default_rng(2).normal(0.0, 0.005, y.size))
    fit = fit_law(law, X, noisy, starts=law.starts(X, noisy)[::4])
    for name, value in TRUE.items():
        assert fit.params[name] == pytest.approx(value, rel=0.3 if name.startswith("R_") else 0.1), name


# -- the analysis and the command line ------------------------------------------------------------


def test_data_constrained_analysis_from_the_command_line(tmp_path: Path) -> None:
    from hepscale.fit import main

    X, y = grid_data(4)
    noisy = y * np.exp(np.random.default_rng(3).normal(0, 0.003, y.size))
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": X[0], "D": X[1], "U": X[2], "loss": noisy}).to_csv(path, index=False)
    out = tmp_path / "dc.json"
    assert main([str(path), "--law", "data-constrained", "--n-col", "N", "--d-col", "D", "--u-col", "U", "--y-col",
                 "loss", "--n-bootstrap", "8", "--output", str(out), "--format", "none"]) == 0
    result = json.loads(out.read_text())
    assert result["law"] == "data-constrained" and set(result["params"]) == set(TRUE) == set(result["ci"])
    assert result["inputs"]["columns"] == {"N": "N", "D": "D", "U": "U", "y": "loss"}
    assert result["bootstrap"]["n_resamples"] == 8 and result["fit_quality"]["converged"] is True
    for name, value in TRUE.items():
        assert result["params"][name] == pytest.approx(value, rel=0.3 if name.startswith("R_") else 0.1), name
    eff = result["effective"]
    np.testing.assert_allclose(eff["D_eff"], effective_data(X[1], X[2], result["params"]["R_D_star"]), rtol=1e-12)
    expected = DataConstrainedLaw.effective(result["params"], *X)
    np.testing.assert_allclose(eff["N_eff"], expected["N_eff"], rtol=1e-12)
    assert np.all(np.asarray(eff["N_eff"]) <= X[0] * (1 + 1e-12))
    assert (tmp_path / "dc.png").exists() and (tmp_path / "dc.pdf").exists()


def test_data_constrained_cli_names_missing_unique_column(tmp_path: Path, capsys) -> None:
    from hepscale.fit import main

    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": [1e4, 1e5, 1e6], "D": [1e6, 1e7, 1e8], "loss": [3.0, 2.5, 2.0]}).to_csv(path, index=False)
    assert main([str(path), "--law", "data-constrained", "--n-col", "N", "--d-col", "D", "--u-col", "unique",
                 "--y-col", "loss", "--format", "none"]) == 2
    assert "column 'unique'" in capsys.readouterr().err
