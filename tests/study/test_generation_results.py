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
    from hepscale.study import generation_results as gr

    saved = []

    def keep(fig, path):  # record the axes before the figure is written
        saved.append([(ax.get_xlabel(), ax.get_ylabel(), [t.get_text() for t in ax.get_legend().get_texts()])
                      for ax in fig.axes])
        return style_save(fig, path)

    style_save = style.save_figure
    monkeypatch.setattr(style, "save_figure", keep)
    files = gr.generation_figures(_table(), tmp_path, label="Pythia 8")
    assert sorted(f.name for f in files) == sorted(f"{n}.{s}" for n in ("loss_vs_D", "swd_vs_D", "search_space")
                                                   for s in ("pdf", "png"))
    assert all(f.stat().st_size > 0 for f in files)
    loss, swd, space = saved
    assert loss[0][:2] == ("Training tokens seen D", "Validation loss [nats]")
    assert swd[0][1] == "Sliced Wasserstein distance"
    assert {"SWD floor (real vs real)", "tokenization (decoded real vs real)",
            "repeated data (more than one epoch)"} <= set(swd[0][2])
    assert [t for t in swd[0][2] if "N =" in t] == ["Pico (N = 5e+04)", "XS (N = 1e+06)"]  # smallest first
    assert [ax[:2] for ax in space] == [("Non-embedding parameters N", "Training tokens seen D"),
                                       ("Non-embedding parameters N", "Training compute C [FLOPs]")]
    plt.close("all")
