"""Experiment labels follow the data; axis labels are words, never runs-table column names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize(("label", "present", "absent"), [
    ("Pythia 8", ["Pythia 8", "Simulation"], ["CMS"]),
    ("Open Data", ["CMS", "Open Data"], ["Simulation"]),
    ("Simulation", ["CMS", "Simulation"], []),
])
def test_experiment_label_follows_the_data(label: str, present: list[str], absent: list[str]) -> None:
    import matplotlib.pyplot as plt

    from hepscale.plotting.style import cms_label, cms_style

    with cms_style():
        fig, ax = plt.subplots()
        cms_label(ax, label=label)
        text = " ".join(_texts(fig))
        plt.close(fig)
    for word in present:
        assert text.count(word) == 1, (label, text)  # once: "Simulation Simulation" is a defect
    for word in absent:
        assert word not in text, (label, text)


def test_every_default_fit_column_has_words() -> None:
    from hepscale.fit.analysis import default_columns
    from hepscale.plotting.labels import run_column_label

    for role, column in default_columns().items():
        if column is None or role in ("positions",):
            continue
        text = run_column_label(column, role=role, unit="jets")
        assert column not in text and text.strip(), (role, column, text)
    assert run_column_label("tokens_seen", unit="jets") == "Training jets seen D"
    assert run_column_label("tokens_seen") == "Training tokens seen D"
    assert run_column_label("my_column", role="N") == "Parameters N"  # a custom column: the role's words
    assert "varepsilon_{B}" in run_column_label("rejection_50", role="metric")  # LaTeX braces kept


@pytest.mark.parametrize(("law", "x"), [("power-offset", "D"), ("log", "N"), ("chinchilla", "N"), ("frontier", "C")])
def test_fit_figures_label_axes_in_words(law: str, x: str) -> None:
    from hepscale.fit.analysis import FitOptions, analyse

    rng = np.random.default_rng(0)
    N = np.repeat([1e4, 3e4, 1e5, 3e5], 4)
    D = np.tile([1e5, 3e5, 1e6, 3e6], 4)
    loss = 0.3 + 30 * N ** -0.3 + 40 * D ** -0.3 + rng.normal(0, 1e-3, len(N))
    table = pd.DataFrame({"run_id": [f"r{i}" for i in range(len(N))], "n_params_non_embedding": N,
                          "tokens_seen": D, "flops": 6 * N * D, "final_val_loss": loss})
    out = analyse(table, FitOptions(law=law, x=x, n_bootstrap=0, data_unit="jets"))
    labels = [out.plot.get("xlabel", ""), out.plot.get("ylabel", "")]
    for column in table.columns:
        assert not any(column in text for text in labels), (law, labels)
    assert out.plot["ylabel"] == "Validation loss [nats]"
