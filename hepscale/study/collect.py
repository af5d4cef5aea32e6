"""The results of a study: the runs table, the summary table and the SWD-vs-N figure.

- ``runs.parquet``, ``runs.csv``: the runs table (:func:`hepscale.runs.table.gather_runs`),
  restricted to the runs of ``plan.json``; a run counts when it is finished;
- ``summary.txt``: one line per run (N, D, C, loss, SWD and floor; a tagging study: feature
  set, P, N, D, U, C, losses, AUC and background rejection, :mod:`hepscale.study.tagging_results`);
- ``figures/swd_vs_N.{pdf,png}``: SWD against N with the floor band, and the figures of
  :mod:`hepscale.study.generation_results` (loss and SWD against D, the search-space planes)
  (a tagging study: loss
  against D and C per feature set, background rejection against loss);
- ``fits/<name>.json`` (+ figures): ``python -m hepscale.fit`` outputs (run by the executor
  or the DAG, see :func:`hepscale.study.commands.job_commands`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from hepscale.runs.folder import RUNS_DIR, RunFolder
from hepscale.study.config import StudyError
from hepscale.study.folder import (
    PLAN_JSON,
    RUNS_CSV,
    RUNS_PARQUET,
    SUMMARY_TXT,
    planned_run_ids,
)

__all__ = ["SWD_FIGURE", "collect", "summary_table", "headline", "swd_loss_spearman", "plot_swd_vs_n",
           "study_outputs"]

#: the SWD-vs-N figure of a study folder (without suffix)
SWD_FIGURE = "figures/swd_vs_N"


def collect(study_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the runs table of a study folder as ``runs.parquet`` and ``runs.csv`` (atomically).

    Only runs of the folder's ``plan.json`` are collected (all runs under ``runs/`` without
    one); a run counts when its ``result.json`` exists.

    Returns
    -------
    dict
        ``parquet`` and ``csv`` (paths) and ``rows`` (count).

    Raises
    ------
    StudyError
        When the folder has no runs, or none of its plan has finished.
    """
    from hepscale._io import atomic_path
    from hepscale.runs.table import gather_runs

    root = Path(study_dir)
    if not (root / RUNS_DIR).is_dir():
        raise StudyError(f"study folder {root} has no {RUNS_DIR}/ folder (nothing has run yet)")
    table = gather_runs(root, pattern=f"{RUNS_DIR}/*/{RunFolder.RESULT}")
    ids = planned_run_ids(root)
    if ids is not None:
        table = table[table["run_id"].isin(ids)].reset_index(drop=True)
        if table.empty:
            raise StudyError(f"no finished run of {root / PLAN_JSON} under {root}/{RUNS_DIR}")
    with atomic_path(root / RUNS_PARQUET, suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(root / RUNS_CSV, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    return {"parquet": str(root / RUNS_PARQUET), "csv": str(root / RUNS_CSV), "rows": len(table)}


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


def study_outputs(study_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Summary table (``summary.txt``) and figures of a collected study: ``figures/swd_vs_N``, or
    for a tagging study those of :func:`hepscale.study.tagging_results.tagging_figures`.

    Returns
    -------
    dict
        ``summary`` (text), ``summary_file`` (path) and ``figures`` (paths; empty when no
        generation run was evaluated).
    """
    import pandas as pd

    from hepscale._io import atomic_write_text
    from hepscale.study.data import folder_label
    from hepscale.study.tagging_results import (
        is_tagging_table,
        tagging_figures,
        tagging_summary_table,
    )

    root = Path(study_dir)
    table = pd.read_parquet(root / RUNS_PARQUET)
    tagging = is_tagging_table(table)
    text = tagging_summary_table(table) if tagging else summary_table(table)
    atomic_write_text(root / SUMMARY_TXT, text + "\n")
    out: dict[str, Any] = {"summary": text, "summary_file": str(root / SUMMARY_TXT), "figures": []}
    if tagging:
        out["figures"] = [str(f) for f in tagging_figures(table, root)]
    else:
        from hepscale.study.generation_results import generation_figures

        label = folder_label(root)
        if "evaluation.swd.mean" in table.columns:
            out["figures"] = [str(f) for f in plot_swd_vs_n(table, root / SWD_FIGURE, label=label)]
        out["figures"] += [str(f) for f in generation_figures(table, root, label=label)]
    return out
