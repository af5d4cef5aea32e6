"""The generation study's figures against D and of its search space: words on the axes, bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _table() -> pd.DataFrame:
    rows = []
    for model, n in (("Pico", 5e4), ("XS", 1e6)):
        for d, epochs in ((1e5, 1.0), (4e5, 4.0)):
            rows.append({"run_id": f"{model}{d:g}", "model": model, "n_params_non_embedding": n, "tokens_seen": d,
                         "epochs": epochs, "flops": 6 * n * d, "final_val_loss": 4.5 - 0.1 * np.log10(n * d),
                         "evaluation.swd.mean": 0.5, "evaluation.swd.std": 0.05,
                         "evaluation.swd.floor_mean": 0.07, "evaluation.swd.floor_std": 0.01,
                         "evaluation.tokenization.mean": 0.3, "evaluation.tokenization.std": 0.01})
    return pd.DataFrame(rows)


def test_figures_against_d_and_the_search_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    import hepscale.plotting.style as style
    from hepscale.tasks.generation import results as gr

    saved = []

    def keep(fig, path):  # record the axes before the figure is written
        saved.append([(ax.get_xlabel(), ax.get_ylabel(), [t.get_text() for t in ax.get_legend().get_texts()])
                      for ax in fig.axes])
        return style_save(fig, path)

    style_save = style.save_figure
    monkeypatch.setattr(style, "save_figure", keep)
    files = gr.generation_figures(_table(), tmp_path, label="Pythia 8")
    names = ("loss_vs_D", "swd_vs_D", "search_space", "swd_vs_loss")  # no isoFLOP grid, no samples: neither figure
    assert sorted(f.name for f in files) == sorted(f"{n}.{s}" for n in names for s in ("pdf", "png"))
    assert all(f.stat().st_size > 0 for f in files)
    loss, space, swd, _ = saved
    assert loss[0][:2] == ("Training tokens seen D", "Validation loss [nats]")
    assert swd[0][1] == "Sliced Wasserstein distance"
    assert {"SWD floor (real vs real)", "tokenization (decoded real vs real)",
            "repeated data (more than one epoch)"} <= set(swd[0][2])
    assert [t for t in swd[0][2] if "N =" in t] == ["Pico (N = 5e+04)", "XS (N = 1e+06)"]  # smallest first
    assert [ax[:2] for ax in space] == [("Non-embedding parameters N", "Training tokens seen D"),
                                       ("Non-embedding parameters N", "Training compute C [FLOPs]")]
    plt.close("all")


def _capture(monkeypatch: pytest.MonkeyPatch) -> list:
    """Keep each figure's axes (the figure is still written) to read what was drawn."""
    import hepscale.plotting.style as style

    saved, save = [], style.save_figure

    def keep(fig, path):
        saved.append(list(fig.axes))
        return save(fig, path)

    monkeypatch.setattr(style, "save_figure", keep)
    return saved


def _isoflop_table() -> pd.DataFrame:
    """Three budgets x five sizes; per budget the loss is a parabola in ln N with a known minimum."""
    rows = []
    for k, budget in enumerate((1e11, 3e11, 1e12)):
        u_star, y_star = np.log(2e5) + 0.7 * k, 4.6 - 0.2 * k
        for model, n in (("Pico", 2.5e4), ("XXS", 8e4), ("XS", 2e5), ("S", 4.4e5), ("M-", 1.2e6)):
            rows.append({"run_id": f"{model}-{k}", "model": model, "n_params_non_embedding": n,
                         "tokens_seen": budget / (6 * n), "epochs": 1.0, "flops": budget * (1 + 0.01 * (n > 1e5)),
                         "final_val_loss": y_star + 0.05 * (np.log(n) - u_star) ** 2})
    return pd.DataFrame(rows)


def test_loss_vs_compute_draws_each_budgets_parabola_and_the_frontier(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from hepscale.fit.isoflop import frontier_mask
    from hepscale.tasks.generation import results as gr

    saved = _capture(monkeypatch)
    table = _isoflop_table()
    files = gr.plot_loss_vs_compute(table, tmp_path / "loss_vs_C", label="Pythia 8")
    assert [f.name for f in files] == ["loss_vs_C.pdf", "loss_vs_C.png"]
    left, right = saved[0]
    stars = [line for line in left.get_lines() if line.get_marker() == "*" and len(line.get_xdata())]
    expected = [(np.exp(np.log(2e5) + 0.7 * k), 4.6 - 0.2 * k) for k in range(3)]
    assert len(stars) == 3
    for line, (n_opt, y_opt) in zip(stars, expected):  # the minima of the known parabolas (C within 1%: one budget)
        assert line.get_xdata()[0] == pytest.approx(n_opt, rel=1e-6)
        assert line.get_ydata()[0] == pytest.approx(y_opt, abs=1e-9)
    assert left.get_xlabel() == "Non-embedding parameters N"
    assert right.get_xlabel() == "Training compute C [FLOPs]" and right.get_ylabel() == "Validation loss [nats]"
    front = [line for line in right.get_lines() if line.get_label() == "frontier"][0]
    mask = frontier_mask(table["flops"].to_numpy(), table["final_val_loss"].to_numpy())
    assert sorted(front.get_xdata()) == sorted(table["flops"][mask])
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert "Pico (N = 2.5e+04)" in legend and any(t.startswith("frontier fit") for t in legend)
    # a grid at fixed D (one size per compute value) is not an isoFLOP grid: no figure
    assert gr.plot_loss_vs_compute(_table(), tmp_path / "none") == []


@pytest.mark.parametrize(("sign", "rho"), [(1.0, "1.000"), (-1.0, "-1.000")])
def test_swd_vs_loss_states_spearman_rho(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sign: float,
                                         rho: str) -> None:
    from hepscale.tasks.generation import results as gr

    saved = _capture(monkeypatch)
    table = _table()
    table["evaluation.swd.mean"] = 1.0 + sign * (table["final_val_loss"] - 4.0) ** 3  # monotonic in the loss
    gr.plot_swd_vs_loss(table, tmp_path / "swd_vs_loss", label="Pythia 8")
    (ax,) = saved[0]
    assert ax.get_xlabel() == "Validation loss [nats]" and ax.get_ylabel() == "Sliced Wasserstein distance"
    assert ax.get_legend().get_title().get_text() == rf"Spearman $\rho$ = {rho} ($p$ = 0, 4 runs)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"SWD floor (real vs real)", "tokenization (decoded real vs real)"} <= set(legend)
    assert gr.plot_swd_vs_loss(table.iloc[:1], tmp_path / "one") == []


def test_generated_vs_real_compares_each_size_with_real_jets_at_the_models_resolution(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from _synthetic import random_jets, tiny_generation_run, token_dataset

    from hepscale.jets.dataset import read_jets, write_jets
    from hepscale.tasks.generation.resolution import decode_like_generated, run_resolution
    from hepscale.tasks.generation import results as gr

    token_dataset(tmp_path / "base", n=200, seed=7, n_max=30)  # up to 29 constituents: truncated at 19
    run = tiny_generation_run(tmp_path / "base", n_layer=1, d_model=16, steps=2, warmup_steps=1)
    study = tmp_path / "study"
    write_jets(study / "data" / "reference.parquet", random_jets(400, seed=11, n_max=30))
    reference = read_jets(study / "data" / "reference.parquet")
    decoded = decode_like_generated(reference, run_resolution(run))
    # "perfect" at the model's resolution: the decoded reference itself; "raw": the reference as it is
    for run_id, samples in (("perfect", decoded), ("raw", reference)):
        shutil.copytree(run, study / "runs" / run_id)
        write_jets(study / "runs" / run_id / "samples.parquet", samples)
    observables = np.array(["mass", "d2", "n_constituents"])
    table = pd.DataFrame([
        {"run_id": run_id, "model": model, "n_params_non_embedding": n, "tokens_seen": 1e4, "final_val_loss": 4.0,
         "evaluation.swd.mean": 0.1, "evaluation.reference": "data/reference.parquet",
         "evaluation.swd.observables": observables}
        for run_id, model, n in (("perfect", "Small", 1e3), ("raw", "Large", 1e4))])
    saved = _capture(monkeypatch)
    files = gr.plot_generated_vs_real(table, study, tmp_path / "figures", label="Pythia 8")
    assert sorted(f.name for f in files) == sorted(f"{n}.{s}" for n in observables for s in ("pdf", "png"))
    ax, rax = saved[2]  # n_constituents
    assert rax.get_xlabel() == "Number of constituents" and ax.get_ylabel() == "Normalized to unit area"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Real, at the model's resolution", "Real, full resolution", "Small (N = 1e+03)",
                      "Large (N = 1e+04)"]
    ratios = [p.get_data().values for p in rax.patches][1:]  # the first is the real jets' uncertainty band
    perfect, raw = ratios
    filled = np.isfinite(perfect)
    assert filled.sum() >= 3 and np.allclose(perfect[filled], 1.0)  # like with like: ratio 1 in every bin
    assert not np.allclose(raw[filled], 1.0)  # raw jets have more constituents than the model can make
    n_real = decoded["n_constituents"].to_numpy()
    assert n_real.max() <= 19 < reference["n_constituents"].to_numpy().max()
    # a run whose samples are gone: no figure, no error
    (study / "runs" / "raw" / "samples.parquet").unlink()
    assert gr.plot_generated_vs_real(table, study, tmp_path / "none") == []


def test_summary_headline_states_best_swd_against_the_floor_and_spearman_rho() -> None:
    from hepscale.tasks.generation.results import headline, summary_table

    table = _table()
    table["evaluation.swd.mean"] = [0.9, 0.7, 0.6, 0.35]  # falls with the loss: rho = +1
    table.loc[3, "evaluation.swd.floor_mean"] = 0.05
    lines = headline(table)
    assert lines == ["best model: XS (N = 1e+06, D = 4e+05), SWD 0.35 +- 0.05 = 7 x its floor 0.05 +- 0.01",
                     "tokenization distance 0.3 +- 0.01 = 6 x the floor (what the representation alone costs)",
                     "Spearman rho(validation loss, SWD) = 1.000 (p = 0, 4 runs)"]
    assert summary_table(table).splitlines()[-3:] == lines
    table["evaluation.swd.mean"] = 0.5  # constant: rho undefined, not printed
    assert not any(line.startswith("Spearman") for line in headline(table))
    assert headline(table.drop(columns=[c for c in table.columns if c.startswith("evaluation.")])) == []
