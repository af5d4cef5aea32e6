"""The results of a tagging study: its summary table and figures, from the runs table.

- :func:`tagging_summary_table`: one line per run (model, feature set, particles per jet P, N,
  D, U, epochs, C, validation and test loss, AUC, background rejection at 50% signal
  efficiency with its bootstrap standard deviation);
- :func:`plot_loss_vs`: validation loss against jets seen D or compute C, one figure per
  feature set, one colour per model size N and one marker per P; runs of one size, P and
  unique-jet set U joined by a line, open markers for repeated data (more than one epoch);
- :func:`plot_rejection_vs_loss`: background rejection at 50% signal efficiency against
  validation loss, one colour per feature set and one marker per P;
- :func:`loss_fits`: the fits of ``L(D) = L_inf + B / D^beta`` (law ``power-offset`` of the
  validation loss against D) among a study's ``fits/*.json``, with the feature set, size and P
  their filters select;
- :func:`plot_linf`: ``L_inf`` of those fits (with its bootstrap interval) per feature set, one
  colour per model size;
- :func:`tagging_figures`: all of them into a study folder's ``figures/``; where the study has
  fitted ``L(D)`` (``fit.fits`` with ``per: [features, model]``), each size's fitted curve is
  drawn on the loss-vs-D figure of its feature set.

The figures read the runs table (the columns of ``result.json`` of a tagger run,
:mod:`hepscale.tasks.tagging.trainer`) and the fit results, and carry the experiment label of
the data (:func:`hepscale.plotting.style.cms_label`: generated jets say "Pythia 8", not "CMS").
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

__all__ = ["tagging_summary_table", "plot_loss_vs", "plot_rejection_vs_loss",
           "loss_fits", "plot_linf", "tagging_figures"]

#: runs-table column of each axis (labelled by :func:`hepscale.plotting.labels.run_column_label`)
_COLUMNS = {"D": "tokens_seen", "C": "flops", "loss": "final_val_loss", "rejection": "rejection_50"}


def _axis_label(axis: str) -> str:
    from hepscale.plotting.labels import run_column_label

    return run_column_label(_COLUMNS[axis], unit="jets")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: epochs from which a run counts as seeing repeated data (one epoch rounds up to whole batches: a bit over 1)
_REPEATED = 1.5


def _num(value: Any, fmt: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return format(v, fmt) if math.isfinite(v) else "-"


def _pm(mean: Any, std: Any) -> str:
    text = _num(mean, ".4g")
    return text if text == "-" else f"{text} +- {_num(std, '.2g')}"


def tagging_summary_table(table: Any) -> str:
    """One line per tagger run: model, features, P, N, D, U, epochs, C, validation loss, test
    loss, AUC and background rejection at 50% signal efficiency (bootstrap mean +- std)."""
    header = (f"{'model':<5} {'features':<8} {'P':>4} {'N':>9} {'D':>9} {'U':>9} {'epochs':>7} {'C':>9} "
              f"{'val loss':>9} {'test loss':>9} {'AUC':>7} {'rejection at 50%':>18}")
    lines = [header, "-" * len(header)]
    t = table.sort_values(["features", "max_particles", "n_params_non_embedding", "tokens_seen", "unique_tokens"])
    for _, row in t.iterrows():
        lines.append(
            f"{row['model']:<5} {row['features']:<8} {int(row['max_particles']):>4} "
            f"{row['n_params_non_embedding']:>9.3g} {row['tokens_seen']:>9.3g} {row['unique_tokens']:>9.3g} "
            f"{row['epochs']:>7.3g} {row['flops']:>9.3g} {_num(row['final_val_loss'], '.4f'):>9} "
            f"{_num(row.get('test_loss'), '.4f'):>9} {_num(row.get('auc'), '.4f'):>7} "
            f"{_pm(row.get('rejection_50'), row.get('rejection_50_std')):>18}")
    lines.append("N: non-embedding parameters; P: particles per jet; D: jets seen; U: unique jets; C: training FLOPs "
                 "(the tagger's count per jet x D); losses: cross entropy (nats); AUC and rejection on the test split, "
                 "rejection = 1/(background efficiency), bootstrap mean +- std")
    return "\n".join(lines)


def _sizes(table: Any) -> list[tuple[str, float]]:
    """Model sizes of the table as ``(model, N)``, smallest first."""
    sizes = table.groupby("model")["n_params_non_embedding"].max().sort_values()
    return [(str(m), float(n)) for m, n in sizes.items()]


def _legend(ax: Any, colours: dict[str, tuple[Any, str]], markers: dict[Any, tuple[str, str]], *,
            repeated: bool, title: str | None) -> None:
    """A legend of proxy artists: colours, markers and (``repeated``) open markers."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", ls="-", label=text) for c, text in colours.values()]
    handles += [Line2D([], [], color="0.3", marker=m, ls="none", label=text) for m, text in markers.values()]
    if repeated:
        handles.append(Line2D([], [], color="0.3", marker="o", ls="none", markerfacecolor="none",
                              label="repeated data (more than one epoch)"))
    ax.legend(handles=handles, title=title, fontsize="small", title_fontsize="small")


def loss_fits(fits_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The fits of the validation loss against D with law ``power-offset`` among ``fits_dir/*.json``:
    one record per fit with ``name``, ``features``, ``model``, ``max_particles`` (the values its
    ``==`` filters select, None where it has none), ``params``, ``ci`` (``y_inf`` is L_inf and
    ``alpha`` is beta) and ``curve`` (its prediction band: ``x``, ``y``, ``low``, ``high``)."""
    import json

    from hepscale.runs.table import parse_filter

    out = []
    for path in sorted(Path(fits_dir).glob("*.json")):
        try:
            fit = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        inputs = fit.get("inputs", {}) if isinstance(fit, dict) else {}
        if fit.get("law") != "power-offset" or inputs.get("columns", {}).get("y") != _COLUMNS["loss"] \
                or inputs.get("columns", {}).get("x") != _COLUMNS["D"]:
            continue
        selected: dict[str, Any] = {"features": None, "model": None, "max_particles": None}
        for text in inputs.get("filters", []):
            column, op, value = parse_filter(text)
            if op == "==" and column in selected and not isinstance(value, list):
                selected[column] = int(value) if column == "max_particles" else str(value)
        curves = fit.get("prediction_band", {}).get("curves") or [None]
        out.append({"name": path.stem, **selected, "params": fit["params"], "ci": fit.get("ci", {}),
                    "curve": curves[0]})
    return out


def plot_linf(fits: list[dict[str, Any]], path: str | os.PathLike[str], *, label: str = "Simulation") -> list[Path]:
    """L_inf of the fits of :func:`loss_fits` (bootstrap interval as error bar) per feature set,
    one colour per model size, one marker per P.

    Returns
    -------
    list of Path
        The files written (PDF and PNG).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from hepscale.plotting.style import cms_label, cms_style, save_figure

    sets = sorted({str(f["features"]) for f in fits})
    models = list(dict.fromkeys(str(f["model"]) for f in fits))
    ps = sorted({f["max_particles"] for f in fits if f["max_particles"] is not None})
    width = 0.6 / max(1, len(models))
    with cms_style():
        fig, ax = plt.subplots(figsize=(10, 9))
        for f in fits:
            i, j = sets.index(str(f["features"])), models.index(str(f["model"]))
            y = f["params"]["y_inf"]
            lo, hi = f["ci"].get("y_inf", [np.nan, np.nan])
            err = None if not (np.isfinite(lo) and np.isfinite(hi)) else [[max(y - lo, 0)], [max(hi - y, 0)]]
            marker = _MARKERS[ps.index(f["max_particles"]) % len(_MARKERS)] if f["max_particles"] in ps else "o"
            ax.errorbar([i + (j - (len(models) - 1) / 2) * width], [y], yerr=err, color=f"C{j}", marker=marker,
                        ls="none", capsize=4)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=f"C{j}", marker="o", ls="none",
                          label="all sizes" if m == "None" else m) for j, m in enumerate(models)]
        handles += [Line2D([], [], color="0.3", marker=_MARKERS[k % len(_MARKERS)], ls="none",
                           label=f"P = {p} particles") for k, p in enumerate(ps) if len(ps) > 1]
        ax.legend(handles=handles, fontsize="small", title="model size", title_fontsize="small")
        ax.set_xticks(range(len(sets)), sets)
        ax.set_xlim(-0.5, len(sets) - 0.5)
        ax.set_xlabel("Input feature set")
        ax.set_ylabel(r"Irreducible loss $L_{\infty}$ of $L(D) = L_{\infty} + B/D^{\beta}$ [nats]")
        cms_label(ax, label=label)
        return save_figure(fig, path)


def plot_loss_vs(table: Any, x: str, path: str | os.PathLike[str], *, features: str,
                 label: str = "Simulation", fits: list[dict[str, Any]] | None = None) -> list[Path]:
    """Validation loss against D (``x="D"``) or C (``x="C"``) for the runs of one feature set;
    with ``x="D"``, the fitted ``L(D)`` of each size among ``fits`` (:func:`loss_fits`) dashed.

    Returns
    -------
    list of Path
        The files written (PDF and PNG).
    """
    import matplotlib.pyplot as plt

    from hepscale.plotting.style import cms_label, cms_style, save_figure, size_colours

    t = table[(table["features"] == features) & table["final_val_loss"].notna()]
    col = _COLUMNS[x]
    with cms_style():
        fig, ax = plt.subplots(figsize=(10, 9))
        colours = size_colours(_sizes(t))
        ps = sorted(int(p) for p in t["max_particles"].unique())
        markers = {p: (_MARKERS[i % len(_MARKERS)], f"P = {p} particles") for i, p in enumerate(ps)}
        repeated = bool((t["epochs"] >= _REPEATED).any())
        for (model, p, _), runs in t.groupby(["model", "max_particles", "unique_tokens"]):
            runs = runs.sort_values(col)
            colour, marker = colours[str(model)][0], markers[int(p)][0]
            ax.plot(runs[col], runs["final_val_loss"], color=colour, ls="-", lw=1)
            for fresh, part in runs.groupby(runs["epochs"] < _REPEATED):
                ax.plot(part[col], part["final_val_loss"], color=colour, marker=marker, ls="none",
                        markerfacecolor=colour if fresh else "none")
        fitted = False
        for f in (fits or []) if x == "D" else []:
            if f["features"] != features or f["model"] not in colours or not f["curve"]:
                continue
            ax.plot(f["curve"]["x"], f["curve"]["y"], color=colours[f["model"]][0], ls="--", lw=1.5)
            fitted = True
        if fitted:
            from matplotlib.lines import Line2D

            ax.add_artist(ax.legend(handles=[Line2D([], [], color="0.3", ls="--",
                                                    label=r"fit $L_{\infty} + B/D^{\beta}$")],
                                    loc="lower left", fontsize="small"))
        ax.set_xscale("log")
        ax.set_xlabel(_axis_label(x))
        ax.set_ylabel(_axis_label("loss"))
        _legend(ax, colours, markers if len(ps) > 1 else {}, repeated=repeated, title=f"features: {features}")
        cms_label(ax, label=label)
        return save_figure(fig, path)


def plot_rejection_vs_loss(table: Any, path: str | os.PathLike[str], *, label: str = "Simulation") -> list[Path]:
    """Background rejection at 50% signal efficiency (bootstrap mean +- std) against validation
    loss, one colour per feature set and one marker per P.

    Returns
    -------
    list of Path
        The files written (PDF and PNG).
    """
    import matplotlib.pyplot as plt

    from hepscale.plotting.style import cms_label, cms_style, save_figure

    t = table[table["rejection_50"].notna() & table["final_val_loss"].notna()]
    with cms_style():
        fig, ax = plt.subplots(figsize=(10, 9))
        sets = sorted(str(f) for f in t["features"].unique())
        colours = {f: (f"C{i}", f"features: {f}") for i, f in enumerate(sets)}
        ps = sorted(int(p) for p in t["max_particles"].unique())
        markers = {p: (_MARKERS[i % len(_MARKERS)], f"P = {p} particles") for i, p in enumerate(ps)}
        for (features, p), runs in t.groupby(["features", "max_particles"]):
            err = runs["rejection_50_std"] if "rejection_50_std" in runs.columns else None
            ax.errorbar(runs["final_val_loss"], runs["rejection_50"], yerr=err, ls="none",
                        color=colours[str(features)][0], marker=markers[int(p)][0])
        ax.set_yscale("log")
        ax.set_xlabel(_axis_label("loss"))
        ax.set_ylabel(_axis_label("rejection"))
        _legend(ax, colours, markers if len(ps) > 1 else {}, repeated=False, title=None)
        cms_label(ax, label=label)
        return save_figure(fig, path)


def tagging_figures(table: Any, study_dir: str | os.PathLike[str]) -> list[Path]:
    """The figures of a tagging study into ``study_dir/figures/``: ``loss_vs_D_<features>``,
    ``loss_vs_C_<features>`` (one per feature set), ``rejection_vs_loss`` and, where the study
    has fitted L(D) (:func:`loss_fits`), ``linf_per_features`` (PDF and PNG).

    Returns
    -------
    list of Path
        The files written.
    """
    from hepscale.study.data import folder_label

    root = Path(study_dir)
    label = folder_label(root)
    fits = loss_fits(root / "fits")
    written: list[Path] = []
    for features in sorted(str(f) for f in table["features"].unique()):
        for x in ("D", "C"):
            written += plot_loss_vs(table, x, root / "figures" / f"loss_vs_{x}_{features}", features=features,
                                    label=label, fits=fits)
    if "rejection_50" in table.columns and table["rejection_50"].notna().any():
        written += plot_rejection_vs_loss(table, root / "figures" / "rejection_vs_loss", label=label)
    if any(f["features"] is not None for f in fits):
        written += plot_linf([f for f in fits if f["features"] is not None], root / "figures" / "linf_per_features",
                             label=label)
    return written
