"""Figures of a generation study beside SWD vs N (:func:`hepscale.study.collect.plot_swd_vs_n`).

- :func:`plot_vs_data`: validation loss, or the SWD with its floor and tokenization bands, against
  tokens seen D, one colour per model size, open markers for repeated data (more than one epoch);
- :func:`plot_search_space`: the planes (N, D) and (N, C) of the study's grid, showing which runs
  exist (and, filled, which were evaluated);
- :func:`generation_figures`: all of them into a study folder's ``figures/``.

Axis labels are words with units (:mod:`hepscale.plotting.labels`), and the experiment label
follows the data (:func:`hepscale.plotting.style.cms_label`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["plot_vs_data", "plot_search_space", "generation_figures"]

#: epochs from which a run counts as seeing repeated data (whole batches round one epoch up)
_REPEATED = 1.5
_SWD = "evaluation.swd.mean"


def _colours(table: Any) -> dict[str, tuple[Any, str]]:
    from hepscale.plotting.style import size_colours

    sizes = table.groupby("model")["n_params_non_embedding"].max().sort_values()
    return size_colours([(str(m), float(n)) for m, n in sizes.items()])


def _band(ax: Any, table: Any, mean: str, std: str, colour: str, text: str) -> None:
    import numpy as np

    if mean not in table.columns or not table[mean].notna().any():
        return
    m = float(np.nanmean(table[mean].to_numpy(dtype=float)))
    s = float(np.nanmean(table[std].to_numpy(dtype=float))) if std in table.columns else 0.0
    ax.axhspan(m - s, m + s, color=colour, alpha=0.25, label=text)
    ax.axhline(m, color=colour, lw=1)


def plot_vs_data(table: Any, y: str, path: str | os.PathLike[str], *, label: str = "Simulation") -> list[Path]:
    """``y="loss"``: validation loss against D; ``y="swd"``: the SWD (bootstrap mean +- std) with
    its floor and, when evaluated at the model's resolution, the tokenization distance as bands.

    Returns
    -------
    list of Path
        The files written (PDF and PNG).
    """
    import matplotlib.pyplot as plt

    from hepscale.plotting.labels import run_column_label
    from hepscale.plotting.style import cms_label, cms_style, save_figure

    column = "final_val_loss" if y == "loss" else _SWD
    t = table[table[column].notna()] if column in table.columns else table.iloc[:0]
    with cms_style():
        fig, ax = plt.subplots(figsize=(10, 9))
        colours = _colours(t)
        for model in colours:  # smallest model first
            runs = t[t["model"] == model].sort_values("tokens_seen")
            colour = colours[str(model)][0]
            ax.plot(runs["tokens_seen"], runs[column], color=colour, lw=1, label=colours[str(model)][1])
            err = runs.get("evaluation.swd.std") if y == "swd" else None
            for fresh, part in runs.groupby(runs["epochs"] < _REPEATED):
                ax.errorbar(part["tokens_seen"], part[column], yerr=None if err is None else err[part.index],
                            ls="none", marker="o", color=colour, markerfacecolor=colour if fresh else "none")
        if y == "swd":
            _band(ax, t, "evaluation.swd.floor_mean", "evaluation.swd.floor_std", "tab:blue", "SWD floor (real vs real)")
            _band(ax, t, "evaluation.tokenization.mean", "evaluation.tokenization.std", "tab:orange",
                  "tokenization (decoded real vs real)")
        if (t["epochs"] >= _REPEATED).any():
            ax.plot([], [], ls="none", marker="o", color="0.3", markerfacecolor="none",
                    label="repeated data (more than one epoch)")
        ax.set_xscale("log")
        ax.set_xlabel(run_column_label("tokens_seen"))
        ax.set_ylabel(run_column_label(column))
        ax.legend(fontsize="small", loc="upper right")
        cms_label(ax, label=label)
        return save_figure(fig, path)


def plot_search_space(table: Any, path: str | os.PathLike[str], *, label: str = "Simulation") -> list[Path]:
    """The runs of the study in the planes (N, D) and (N, C): one marker per run, filled when it
    was evaluated (SWD), open otherwise.

    Returns
    -------
    list of Path
        The files written (PDF and PNG).
    """
    import matplotlib.pyplot as plt

    from hepscale.plotting.labels import run_column_label
    from hepscale.plotting.style import cms_label, cms_style, save_figure

    evaluated = table[_SWD].notna() if _SWD in table.columns else table["run_id"].isna()
    with cms_style():
        fig, axes = plt.subplots(1, 2, figsize=(18, 8))
        for ax, ycol in zip(axes, ("tokens_seen", "flops")):
            for done, part in table.groupby(evaluated):
                ax.plot(part["n_params_non_embedding"], part[ycol], ls="none", marker="o", color="tab:blue",
                        markerfacecolor="tab:blue" if done else "none",
                        label="run, evaluated" if done else "run, not evaluated")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(run_column_label("n_params_non_embedding"))
            ax.set_ylabel(run_column_label(ycol))
            ax.legend(fontsize="small")
            cms_label(ax, label=label)
        return save_figure(fig, path)


def generation_figures(table: Any, study_dir: str | os.PathLike[str], *, label: str) -> list[Path]:
    """``loss_vs_D``, ``swd_vs_D`` (when runs were evaluated) and ``search_space`` into
    ``study_dir/figures/`` (PDF and PNG); returns the files written."""
    root = Path(study_dir) / "figures"
    written = plot_vs_data(table, "loss", root / "loss_vs_D", label=label)
    if _SWD in table.columns and table[_SWD].notna().any():
        written += plot_vs_data(table, "swd", root / "swd_vs_D", label=label)
    written += plot_search_space(table, root / "search_space", label=label)
    return written
