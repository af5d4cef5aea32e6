"""Terminal table and CMS-style figure of a fit result."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from hepscale.fit.analysis import FitOutput

logger = logging.getLogger(__name__)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.4e}"
    return str(value)


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return out


def format_table(result: dict[str, Any]) -> str:
    """A readable plain-text summary of a fit result (the JSON document)."""
    lines = [f"law: {result.get('law')}", f"  {result.get('formula')}", ""]
    level = result.get("confidence_level")
    ci = result.get("ci") or {}
    ci_name = f"{100 * level:g}% CI" if level else "CI"
    params = result.get("params") or {}
    rows = [[name, _num(value), " .. ".join(_num(v) for v in ci.get(name, [])) or "-"] for name, value in params.items()]
    lines += _rows(["parameter", "value", ci_name], rows)
    derived = {k: v for k, v in (result.get("derived") or {}).items() if not isinstance(v, str)}
    if derived:
        dci = result.get("derived_ci") or {}
        lines += [""] + _rows(["derived", "value", ci_name],
                              [[k, _num(v), " .. ".join(_num(x) for x in dci.get(k, [])) or "-"] for k, v in derived.items()])
    optimal = (result.get("compute_optimal") or {}).get("budgets")
    if optimal:
        lines += [""] + _rows(["C [FLOPs]", "N_opt", "D_opt", "L_opt"],
                              [[_num(r["C"]), _num(r["N_opt"]), _num(r["D_opt"]), _num(r["L_opt"])] for r in optimal])
    budgets = result.get("budgets")
    if budgets:
        lines += [""] + _rows(["C", "runs", "N_opt", "D_opt", "L_opt", "note"],
                              [[_num(b["C"]), _num(b["n_runs"]), _num(b["N_opt"]), _num(b["D_opt"]), _num(b["L_opt"]),
                                b.get("reason") or ""] for b in budgets])
    quality = result.get("fit_quality")
    if quality:
        lines += ["", "fit quality: " + ", ".join(f"{k}={_num(v)}" for k, v in quality.items()
                                                   if not isinstance(v, (list, dict)))]
        if quality.get("at_bound"):
            lines.append(f"  at bound: {', '.join(quality['at_bound'])}")
    boot = result.get("bootstrap")
    if boot:
        lines.append(f"bootstrap: {boot.get('n_resamples')} resamples (seed {boot.get('seed')}), "
                     f"{boot.get('n_failed', 0)} failed, {boot.get('method')} intervals")
    for warning in result.get("warnings") or []:
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines)


def _errorbar(ax: Any, x: np.ndarray, y: np.ndarray, err: np.ndarray | None, **kwargs: Any) -> None:
    ax.errorbar(x, y, yerr=err, fmt="o", markersize=5, capsize=2, **kwargs)


def plot_output(output: FitOutput, path: str | os.PathLike[str], *, label: str = "Simulation") -> list[Path]:
    """Draw the figure of a fit (mplhep CMS style) and write it as PDF and PNG.

    Points with error bars (where an error column is given), the fitted law, its bootstrap band
    and the law written on the plot. Returns the paths written.
    """
    from hepscale.plotting.style import cms_label, cms_style, save_figure

    plot = output.plot
    with cms_style():
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 8))
        kind = plot.get("kind")
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        if kind in ("single", "frontier"):
            mask = plot.get("mask")
            if mask is not None:
                _errorbar(ax, plot["x"][~mask], plot["y"][~mask], None if plot["y_err"] is None else plot["y_err"][~mask],
                          color="0.6", label="runs")
                _errorbar(ax, plot["x"][mask], plot["y"][mask], None if plot["y_err"] is None else plot["y_err"][mask],
                          color=colors[0], label="frontier")
            else:
                _errorbar(ax, plot["x"], plot["y"], plot["y_err"], color=colors[0], label="runs")
            for curve in plot["curves"]:
                ax.plot(curve["x"], curve["y"], color=colors[1], label="fit")
                if curve["low"] is not None:
                    ax.fill_between(curve["x"], curve["low"], curve["high"], color=colors[1], alpha=0.25,
                                    label="bootstrap band")
        elif kind == "grouped":
            for curve in plot["curves"]:
                color = colors[curve["group"] % len(colors)]
                sel = plot["groups"] == curve["group"]
                err = None if plot["y_err"] is None else plot["y_err"][sel]
                _errorbar(ax, plot["x"][sel], plot["y"][sel], err, color=color, label=curve["label"])
                ax.plot(curve["x"], curve["y"], color=color)
                if curve["low"] is not None:
                    ax.fill_between(curve["x"], curve["low"], curve["high"], color=color, alpha=0.2)
        elif kind == "isoflop":
            for g, par in enumerate(plot["parabolas"]):
                color = colors[g % len(colors)]
                sel = plot["labels"] == g
                ax.plot(plot["N"][sel], plot["y"][sel], "o", color=color, label=f"C = {par.budget:.2g}")
                if np.all(np.isfinite(par.coeffs)):
                    u = np.linspace(*par.u_range, 100)
                    ax.plot(np.exp(u), np.polyval(par.coeffs, u), color=color)
                if par.valid:
                    ax.plot(math.exp(par.u_min), par.y_min, "*", color=color, markersize=16)
        elif kind == "proxy":
            _errorbar(ax, plot["x"], plot["y"], plot["y_err"], color=colors[0], label="runs")
            ax.step(plot["fit_x"], plot["fit_y"], where="post", color=colors[1], label="isotonic fit")
        elif kind == "window":
            pos = np.arange(len(plot["slopes"]))
            ax.errorbar(pos, plot["slopes"], yerr=plot["se"], fmt="o", markersize=3, color=colors[0],
                        label=r"reducible loss $r_p$")
            if plot["start"] is not None:
                ax.axvspan(plot["start"] - 0.5, plot["end"] + 0.5, color=colors[1], alpha=0.2, label="learnable window")
            ax.axhline(0.0, color="0.5", lw=1)
        if kind in ("single", "frontier", "grouped", "isoflop"):
            ax.set_xscale("log")
        ax.set_xlabel(plot.get("xlabel", ""))
        ax.set_ylabel(plot.get("ylabel", "Reducible loss [nats]" if kind == "window" else ""))
        ax.text(0.04, 0.06, plot.get("text", ""), transform=ax.transAxes, fontsize=16, va="bottom")
        ax.legend(loc="upper right", fontsize=14)
        cms_label(ax, label=label)
        return save_figure(fig, path)
