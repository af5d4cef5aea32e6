"""The summary table and figures of a generation study.

- :func:`summary_table`, :func:`headline`: one line per run (N, D, C, loss, SWD and floor, the
  tokenization distance) and the study's result in words (the best run against its floor,
  Spearman's rho of SWD and validation loss);
- :func:`plot_swd_vs_n`: SWD against N with the floor and tokenization bands;

- :func:`plot_vs_data`: validation loss, or the SWD with its floor and tokenization bands, against
  tokens seen D, one colour per model size, open markers for repeated data (more than one epoch);
- :func:`plot_search_space`: the planes (N, D) and (N, C) of the study's grid, showing which runs
  exist (and, filled, which were evaluated);
- :func:`plot_loss_vs_compute`: for isoFLOP grids, the loss against N per compute budget with its
  parabola and minimum, and the loss against C of every run with the compute-optimal frontier;
- :func:`plot_swd_vs_loss`: the SWD against the validation loss with Spearman's rho, the floor
  and tokenization bands;
- :func:`plot_generated_vs_real`: the jet observables of each model size's sample against the real
  validation jets at the model's resolution (and raw), with ratio panels;
- :func:`generation_figures`: all of them into a study folder's ``figures/``.

Axis labels are words with units (:mod:`hepscale.plotting.labels`), and the experiment label
follows the data (:func:`hepscale.plotting.style.cms_label`).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["SWD_FIGURE", "summary_table", "headline", "swd_loss_spearman", "plot_swd_vs_n", "plot_vs_data",
           "plot_search_space", "plot_loss_vs_compute", "plot_swd_vs_loss", "plot_generated_vs_real",
           "generation_figures"]

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


def plot_loss_vs_compute(table: Any, path: str | os.PathLike[str], *, label: str = "Simulation",
                         rtol: float = 0.05) -> list[Path]:
    """IsoFLOP figure: left, the validation loss against N for each compute budget (runs whose C
    agree within ``rtol``, :func:`hepscale.fit.isoflop.group_budgets`) with its parabola in ln N and
    the minimum; right, the loss against C of every run (one colour per size) with the frontier
    (the runs lower than every run of smaller C) and a power law through it.

    Returns
    -------
    list of Path
        The files written (PDF and PNG); empty when no budget has runs of 3 distinct N (the
        grid is not an isoFLOP grid).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from hepscale.fit.isoflop import (
        frontier_mask,
        group_budgets,
        isoflop_minima,
        loglog_fit,
    )
    from hepscale.plotting.labels import run_column_label
    from hepscale.plotting.style import cms_label, cms_style, save_figure

    t = table[table["final_val_loss"].notna() & (table["flops"] > 0)]
    if t.empty:
        return []
    N = t["n_params_non_embedding"].to_numpy(dtype=float)
    C = t["flops"].to_numpy(dtype=float)
    D = t["tokens_seen"].to_numpy(dtype=float)
    y = t["final_val_loss"].to_numpy(dtype=float)
    labels, budgets = group_budgets(C, rtol=rtol)
    groups = [g for g in range(len(budgets)) if len(np.unique(N[labels == g])) >= 3]
    if not groups:
        return []
    parabolas = isoflop_minima(N, D, y, labels, budgets)
    cmap = plt.get_cmap("plasma")
    with cms_style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(20, 9))
        minima = []
        for k, g in enumerate(groups):
            colour = cmap(0.85 * k / max(1, len(groups) - 1))
            sel = labels == g
            left.plot(N[sel], y[sel], ls="none", marker="o", color=colour, label=f"C = {budgets[g]:.2g} FLOPs")
            par = parabolas[g]
            if all(math.isfinite(c) for c in par.coeffs):
                u = np.linspace(*par.u_range, 100)
                left.plot(np.exp(u), np.polyval(par.coeffs, u), color=colour, lw=1.5)
            if par.valid:
                left.plot(math.exp(par.u_min), par.y_min, marker="*", markersize=18, color=colour,
                          markeredgecolor="black", ls="none")
                minima.append((math.exp(par.u_min), par.y_min))
        if minima:
            left.plot([], [], marker="*", markersize=18, color="white", markeredgecolor="black", ls="none",
                      label="parabola minimum")
        left.set_xscale("log")
        left.set_xlabel(run_column_label("n_params_non_embedding"))
        left.set_ylabel(run_column_label("final_val_loss"))
        left.legend(fontsize="small", loc="upper right")
        cms_label(left, label=label)

        colours = _colours(t)
        for model in colours:
            sel = (t["model"] == model).to_numpy()
            right.plot(C[sel], y[sel], ls="none", marker="o", color=colours[model][0], label=colours[model][1])
        front = frontier_mask(C, y)
        order = np.argsort(C[front])
        right.plot(C[front][order], y[front][order], color="black", lw=1, marker="o", markerfacecolor="none",
                   markersize=12, label="frontier")
        k, p = loglog_fit(C[front], y[front])
        if math.isfinite(p):
            grid = np.geomspace(C.min(), C.max(), 100)
            right.plot(grid, k * grid**p, color="black", ls="--", lw=1,
                       label=rf"frontier fit $L \propto C^{{{p:.3f}}}$")
        right.set_xscale("log")
        right.set_xlabel(run_column_label("flops"))
        right.set_ylabel(run_column_label("final_val_loss"))
        right.legend(fontsize="small", loc="upper right")
        cms_label(right, label=label)
        return save_figure(fig, path)


def plot_swd_vs_loss(table: Any, path: str | os.PathLike[str], *, label: str = "Simulation") -> list[Path]:
    """The SWD (bootstrap mean +- std) against the validation loss of every evaluated run, one
    colour per model size, with Spearman's rank correlation, the floor and the tokenization bands.

    Returns
    -------
    list of Path
        The files written (PDF and PNG); empty with fewer than two evaluated runs.
    """
    import matplotlib.pyplot as plt

    from hepscale.plotting.labels import run_column_label
    from hepscale.plotting.style import cms_label, cms_style, save_figure

    if _SWD not in table.columns:
        return []
    t = table[table[_SWD].notna() & table["final_val_loss"].notna()]
    if len(t) < 2:
        return []
    with cms_style():
        fig, ax = plt.subplots(figsize=(10, 9))
        colours = _colours(t)
        for model in colours:
            runs = t[t["model"] == model]
            ax.errorbar(runs["final_val_loss"], runs[_SWD], yerr=runs.get("evaluation.swd.std"), ls="none",
                        marker="o", color=colours[model][0], label=colours[model][1])
        _band(ax, t, "evaluation.swd.floor_mean", "evaluation.swd.floor_std", "tab:blue", "SWD floor (real vs real)")
        _band(ax, t, "evaluation.tokenization.mean", "evaluation.tokenization.std", "tab:orange",
              "tokenization (decoded real vs real)")
        rho = swd_loss_spearman(t)
        title = None if rho is None else rf"Spearman $\rho$ = {rho[0]:.3f} ($p$ = {rho[1]:.2g}, {rho[2]} runs)"
        ax.set_xlabel(run_column_label("final_val_loss"))
        ax.set_ylabel(run_column_label(_SWD))
        ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
        ax.legend(fontsize="x-small", loc="best", title=title, title_fontsize="x-small")
        cms_label(ax, label=label)
        return save_figure(fig, path)


def _sample_per_size(table: Any, study_dir: Path) -> list[tuple[str, float, Path, Path | None]]:
    """(model, N, samples file, reference file) of each size's evaluated run with the most tokens
    seen (lowest loss among those), smallest model first."""
    from hepscale.runs.folder import RunFolder

    t = table[table[_SWD].notna()].sort_values(["n_params_non_embedding", "tokens_seen", "final_val_loss"],
                                               ascending=[True, False, True])
    out = []
    for model, runs in t.groupby("model", sort=False):
        row = runs.iloc[0]
        samples = RunFolder(study_dir / "runs" / str(row["run_id"])).samples
        ref = row.get("evaluation.reference")
        ref_path = None
        if isinstance(ref, str) and ref:
            ref_path = Path(ref) if Path(ref).is_absolute() else study_dir / ref
        out.append((str(model), float(row["n_params_non_embedding"]), samples, ref_path))
    return out


def plot_generated_vs_real(table: Any, study_dir: str | os.PathLike[str], folder: str | os.PathLike[str], *,
                           label: str = "Simulation", n_bins: int = 30) -> list[Path]:
    """One figure per SWD observable: the real validation jets at the model's resolution (encoded
    and decoded with the runs' tokenizer, :mod:`hepscale.tasks.generation.resolution`) and raw, and the
    sample of each model size (its evaluated run with the most tokens seen), normalised, with the
    ratio generated / real (model resolution) below. Bins from the real jets' 0.1 to 99.9% range.

    Returns
    -------
    list of Path
        The files written into ``folder`` (``<observable>.pdf`` and ``.png``); empty when no run
        was evaluated or its samples or reference are gone (logged).
    """
    import mplhep
    import numpy as np

    from hepscale.jets.dataset import observable_matrix, read_jets
    from hepscale.tasks.generation.resolution import reference_pair, run_resolution
    from hepscale.plotting.observables import (
        finish_ratio_panel,
        normalized,
        observable_edges,
    )
    from hepscale.plotting.style import (
        cms_label,
        cms_style,
        ratio_axes,
        save_figure,
        size_colours,
    )

    study_dir = Path(study_dir)
    if _SWD not in table.columns or not table[_SWD].notna().any():
        return []
    chosen = _sample_per_size(table, study_dir)
    missing = [str(s) for _, _, s, r in chosen if not s.is_file() or r is None or not r.is_file()]
    if missing:
        logger.warning("generated vs real observables not drawn: missing %s", ", ".join(missing))
        return []
    names = list(table["evaluation.swd.observables"].dropna().iloc[0]) \
        if "evaluation.swd.observables" in table.columns else ["mass", "pt", "d2", "tau21", "tau32", "n_constituents"]
    largest = chosen[-1]
    resolution = run_resolution(largest[2].parent)
    if resolution is None:
        logger.warning("generated vs real observables not drawn: %s is not a generative run", largest[2].parent)
        return []
    raw, decoded = reference_pair(largest[3], resolution)
    real = observable_matrix(decoded, names)
    real_raw = observable_matrix(raw, names)
    generated = [(model, n, observable_matrix(read_jets(s, columns=names), names)) for model, n, s, _ in chosen]
    colours = size_colours([(m, n) for m, n, _ in generated])  # smallest first
    written: list[Path] = []
    with cms_style():
        for i, name in enumerate(names):
            r = real[:, i][np.isfinite(real[:, i])]
            both = np.concatenate([r, real_raw[:, i]])  # the range of the real jets at either resolution
            edges = observable_edges(both, both, name, n_bins)
            fig, ax, rax = ratio_axes()
            dr, er = normalized(r, edges)
            mplhep.histplot(dr, edges, yerr=er, ax=ax, histtype="fill", alpha=0.3, color="0.5",
                            label="Real, at the model's resolution")
            draw, _ = normalized(real_raw[:, i], edges)
            mplhep.histplot(draw, edges, ax=ax, histtype="step", ls="--", color="0.3", label="Real, full resolution")
            ok = dr > 0
            band = np.divide(er, dr, out=np.zeros_like(dr), where=ok)
            rax.stairs(1 + band, edges, baseline=1 - band, fill=True, alpha=0.3, color="0.5")
            for model, _, g in generated:
                colour, text = colours[model]
                dg, _ = normalized(g[:, i][np.isfinite(g[:, i])], edges)
                mplhep.histplot(dg, edges, ax=ax, histtype="step", color=colour, label=text)
                ratio = np.divide(dg, dr, out=np.full_like(dg, np.nan), where=ok)
                rax.stairs(ratio, edges, color=colour)
            finish_ratio_panel(rax, edges, name, "Gen. / Real")
            ax.set_ylabel("Normalized to unit area")
            ax.set_ylim(0, ax.get_ylim()[1] * 1.4)
            ax.legend(fontsize="x-small", loc="upper right")
            cms_label(ax, label=label)
            written += save_figure(fig, Path(folder) / name)
    return written


def generation_figures(table: Any, study_dir: str | os.PathLike[str], *, label: str) -> list[Path]:
    """``loss_vs_D``, ``search_space``, ``loss_vs_C`` (isoFLOP grids) and, when runs were
    evaluated, ``swd_vs_D``, ``swd_vs_loss`` and ``observables/<name>`` (generated vs real) into
    ``study_dir/figures/`` (PDF and PNG); returns the files written."""
    root = Path(study_dir) / "figures"
    written = plot_vs_data(table, "loss", root / "loss_vs_D", label=label)
    written += plot_search_space(table, root / "search_space", label=label)
    written += plot_loss_vs_compute(table, root / "loss_vs_C", label=label)
    if _SWD in table.columns and table[_SWD].notna().any():
        written += plot_vs_data(table, "swd", root / "swd_vs_D", label=label)
        written += plot_swd_vs_loss(table, root / "swd_vs_loss", label=label)
        written += plot_generated_vs_real(table, study_dir, root / "observables", label=label)
    return written


#: the SWD-vs-N figure of a study folder (without suffix)
SWD_FIGURE = "figures/swd_vs_N"


def summary_table(table: Any) -> str:
    """One line per run: model, N, D, epochs, C, final validation loss and SWD (with floor) when evaluated."""
    has_swd = "evaluation.swd.mean" in table.columns
    has_tok = "evaluation.tokenization.mean" in table.columns
    header = f"{'model':<5} {'N':>9} {'D':>9} {'epochs':>7} {'C':>9} {'val loss':>9}"
    if has_swd:
        header += f" {'SWD':>19} {'SWD floor':>19}"
    if has_tok:
        header += f" {'tokenization':>19} {'raw floor':>19}"
    lines = [header, "-" * len(header)]
    for _, row in table.sort_values(["n_params_non_embedding", "tokens_seen"]).iterrows():
        line = (f"{row['model']:<5} {row['n_params_non_embedding']:>9.3g} {row['tokens_seen']:>9.3g} "
                f"{row['epochs']:>7.3g} {row['flops']:>9.3g} {row['final_val_loss']:>9.4f}")
        if has_swd:
            mean, std = row.get("evaluation.swd.mean"), row.get("evaluation.swd.std")
            fmean, fstd = row.get("evaluation.swd.floor_mean"), row.get("evaluation.swd.floor_std")
            line += f" {_pm(mean, std):>19} {_pm(fmean, fstd):>19}"
        if has_tok:
            tok = _pm(row.get("evaluation.tokenization.mean"), row.get("evaluation.tokenization.std"))
            raw = _pm(row.get("evaluation.tokenization.raw_floor_mean"), row.get("evaluation.tokenization.raw_floor_std"))
            line += f" {tok:>19} {raw:>19}"
        lines.append(line)
    lines.append("N: non-embedding parameters; D: tokens seen; C: FLOPs (6 N B S steps); SWD: bootstrap mean +- std")
    if has_tok:
        lines.append("SWD and its floor against real jets at the model's resolution (encoded and decoded with the "
                     "run's tokenizer); tokenization: SWD(decoded real, real), the distance the representation alone "
                     "causes; raw floor: real vs real at full resolution")
    if has_swd:
        lines += headline(table)
    return "\n".join(lines)


def headline(table: Any) -> list[str]:
    """The study's result in words: the best evaluated run's SWD against its floor, the
    tokenization distance against the same floor, and Spearman's rho of SWD and validation loss
    over the evaluated runs (3 or more, neither constant)."""
    t = table[table["evaluation.swd.mean"].notna()] if "evaluation.swd.mean" in table.columns else table.iloc[:0]
    if t.empty:
        return []
    best = t.loc[t["evaluation.swd.mean"].idxmin()]
    floor = float(best.get("evaluation.swd.floor_mean", math.nan))
    swd = float(best["evaluation.swd.mean"])
    out = [f"best model: {best['model']} (N = {best['n_params_non_embedding']:.3g}, D = {best['tokens_seen']:.3g}), "
           f"SWD {_pm(swd, best.get('evaluation.swd.std'))} = {swd / floor:.3g} x its floor "
           f"{_pm(floor, best.get('evaluation.swd.floor_std'))}"]
    tok = best.get("evaluation.tokenization.mean")
    if tok is not None and math.isfinite(float(tok)):
        out.append(f"tokenization distance {_pm(tok, best.get('evaluation.tokenization.std'))} = "
                   f"{float(tok) / floor:.3g} x the floor (what the representation alone costs)")
    rho = swd_loss_spearman(t)
    if rho is not None:
        out.append(f"Spearman rho(validation loss, SWD) = {rho[0]:.3f} (p = {rho[1]:.2g}, {rho[2]} runs)")
    return out


def swd_loss_spearman(table: Any) -> tuple[float, float, int] | None:
    """Spearman's rho of SWD and validation loss over the evaluated runs of ``table``, its
    p-value and the number of runs; None with fewer than 3 runs or a constant column (rho
    undefined)."""
    from scipy.stats import spearmanr

    t = table[table["evaluation.swd.mean"].notna() & table["final_val_loss"].notna()]
    if len(t) < 3 or t["final_val_loss"].nunique() < 2 or t["evaluation.swd.mean"].nunique() < 2:
        return None
    res = spearmanr(t["final_val_loss"], t["evaluation.swd.mean"])
    return float(res.statistic), float(res.pvalue), len(t)


def _pm(mean: Any, std: Any) -> str:
    try:
        if mean is None or not math.isfinite(float(mean)):
            return "-"
        return f"{float(mean):.4g} +- {float(std):.2g}"
    except (TypeError, ValueError):
        return "-"


def plot_swd_vs_n(table: Any, path: str | os.PathLike[str], *, label: str = "Simulation") -> list[Path]:
    """SWD (bootstrap mean +- std) against non-embedding parameters N, with the SWD floor as a
    band and, for runs evaluated at the model's resolution, the tokenization distance as a second.

    Returns
    -------
    list of Path
        The files written (PDF and PNG).

    Raises
    ------
    StudyError
        When no run of the table was evaluated.
    """
    import numpy as np

    from hepscale.plotting.style import cms_label, cms_style, save_figure
    from hepscale.study.config import StudyError

    if "evaluation.swd.mean" not in table.columns:
        raise StudyError("the runs table has no evaluation.swd.mean column (no run was evaluated)")
    t = table.dropna(subset=["evaluation.swd.mean"]).sort_values("n_params_non_embedding")
    n = t["n_params_non_embedding"].to_numpy(dtype=float)
    with cms_style():
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 8))
        ax.errorbar(n, t["evaluation.swd.mean"], yerr=t["evaluation.swd.std"], fmt="o", color="black",
                    label="generated vs real")
        if "evaluation.swd.floor_mean" in t.columns and t["evaluation.swd.floor_mean"].notna().any():
            fm = float(np.nanmean(t["evaluation.swd.floor_mean"].to_numpy(dtype=float)))
            fs = float(np.nanmean(t["evaluation.swd.floor_std"].to_numpy(dtype=float)))
            lo, hi = n.min() / 1.5, n.max() * 1.5
            tokenized = "evaluation.tokenization.mean" in t.columns and t["evaluation.tokenization.mean"].notna().any()
            ax.fill_between([lo, hi], fm - fs, fm + fs, color="tab:blue", alpha=0.3,
                            label="SWD floor (real vs real" + (", tokenized)" if tokenized else ")"))
            ax.axhline(fm, color="tab:blue", lw=1)
            if tokenized:  # the distance the representation alone causes
                tm = float(np.nanmean(t["evaluation.tokenization.mean"].to_numpy(dtype=float)))
                ts = float(np.nanmean(t["evaluation.tokenization.std"].to_numpy(dtype=float)))
                ax.fill_between([lo, hi], tm - ts, tm + ts, color="tab:orange", alpha=0.3,
                                label="tokenization (decoded real vs real)")
                ax.axhline(tm, color="tab:orange", lw=1)
            ax.set_xlim(lo, hi)
        ax.set_xscale("log")
        ax.set_xlabel("Non-embedding parameters N")
        ax.set_ylabel("Sliced Wasserstein distance")
        ax.legend()
        cms_label(ax, label=label)
        return save_figure(fig, path)
