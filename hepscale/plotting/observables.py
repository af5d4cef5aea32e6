"""Figures of jet observables, CMS style: generated vs reference with a ratio panel, and histograms by truth label."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepscale.plotting.labels import observable_label
from hepscale.plotting.style import cms_label, cms_style, ratio_axes, save_figure

__all__ = ["plot_observables", "plot_histograms_by_label", "normalized", "finish_ratio_panel",
           "observable_edges"]

_INTEGER_OBSERVABLES = {"n_constituents"}


def observable_edges(ref: np.ndarray, gen: np.ndarray, name: str, n_bins: int) -> np.ndarray:
    """Bin edges of an observable: bins on whole counts for counts (over both samples' 0.1 to
    99.9% range), else ``n_bins`` equal bins over the reference's 0.1 to 99.9% range."""
    both = np.concatenate([ref, gen])
    if name in _INTEGER_OBSERVABLES:
        lo, hi = np.floor(np.quantile(both, 0.001)), np.ceil(np.quantile(both, 0.999))
        step = max(1.0, np.ceil((hi - lo + 1) / n_bins))
        return np.arange(lo - 0.5, hi + step + 0.5, step)
    lo, hi = np.quantile(ref, [0.001, 0.999])
    if not hi > lo:
        lo, hi = both.min(), both.max()
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def normalized(x: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of ``x`` on ``edges`` normalized to unit area, and its Poisson uncertainty."""
    h, _ = np.histogram(x, bins=edges)
    scale = max(len(x), 1) * np.diff(edges)
    return h / scale, np.sqrt(h) / scale


def finish_ratio_panel(rax: Any, edges: np.ndarray, name: str, ylabel: str) -> None:
    """The ratio panel's unity line, range, ticks and labels (x: the observable ``name``)."""
    rax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
    rax.set_ylim(0.5, 1.5)
    rax.set_yticks([0.6, 1.0, 1.4])
    rax.set_ylabel(ylabel)
    rax.set_xlabel(observable_label(name))
    rax.set_xlim(edges[0], edges[-1])


def plot_observables(
    generated: np.ndarray,
    reference: np.ndarray,
    observables: Sequence[str],
    outdir: str | os.PathLike[str],
    *,
    label: str = "Simulation",
    com: float = 13,
    per_observable: dict[str, dict[str, Any]] | None = None,
    n_bins: int = 40,
    p: float = 1.0,
    generated_label: str = "Generated",
    reference_label: str = "Reference",
) -> list[Path]:
    """One figure per observable: normalized distributions and generated/reference ratio.

    Parameters
    ----------
    generated, reference
        Shapes (n_gen, k) and (n_ref, k), columns in the order of ``observables``.
    outdir
        Folder for ``<observable>.pdf`` and ``<observable>.png``.
    label, com
        CMS label text ("Simulation" or "Open Data") and centre-of-mass energy in TeV.
    per_observable
        Optional ``SWDResult.per_observable``: the W_p (mean +- std, floor) is shown in the
        legend, with ``p`` its order.

    Returns
    -------
    list of Path
        The files written.
    """
    import mplhep

    out = Path(outdir)
    written: list[Path] = []
    with cms_style():
        for i, name in enumerate(observables):
            g, r = generated[:, i], reference[:, i]
            edges = observable_edges(r, g, name, n_bins)
            dr, er = normalized(r, edges)
            dg, eg = normalized(g, edges)
            fig, ax, rax = ratio_axes()
            mplhep.histplot(dr, edges, yerr=er, ax=ax, label=reference_label, histtype="fill", alpha=0.35, color="C0")
            glabel = generated_label
            if per_observable and name in per_observable:
                w = per_observable[name]
                glabel += f"\n$W_{{{p:g}}}$ = {w['mean']:.3g} $\\pm$ {w['std']:.2g}"
                if w.get("floor_mean") is not None:
                    glabel += f" (floor {w['floor_mean']:.3g})"
            mplhep.histplot(dg, edges, yerr=eg, ax=ax, label=glabel, histtype="errorbar", color="black")
            ax.set_ylabel("Normalized to unit area")
            ax.set_ylim(0, max(dr.max(), dg.max(), 1e-12) * 1.45)
            ax.legend(loc="upper right", fontsize="small")
            cms_label(ax, label=label, com=com)
            centers = 0.5 * (edges[1:] + edges[:-1])
            ok = dr > 0
            ratio = np.divide(dg, dr, out=np.full_like(dg, np.nan), where=ok)
            rerr = np.divide(eg, dr, out=np.full_like(dg, np.nan), where=ok)
            band = np.divide(er, dr, out=np.zeros_like(dr), where=ok)
            rax.stairs(1 + band, edges, baseline=1 - band, fill=True, alpha=0.35, color="C0")
            rax.errorbar(centers[ok], ratio[ok], yerr=rerr[ok], fmt="o", color="black", markersize=3)
            finish_ratio_panel(rax, edges, name, "Gen. / Ref.")
            written += save_figure(fig, out / name)
    return written


def plot_histograms_by_label(hists: dict[str, dict[str, Any]], folder: str | os.PathLike[str], *,
                     label: str = "Simulation", names: Sequence[str] | None = None,
                     label_names: Mapping[int, str] | None = None) -> list[Path]:
    """CMS-style figures of the jet observables (one per observable, PDF and PNG, in ``folder``).

    Each figure has one normalized curve per dataset and truth label (``label_names``: the name
    of each label, e.g. :data:`hepscale.jets.dataset.LABEL_NAMES`; else the label's number).
    """
    import hist
    import matplotlib.pyplot as plt
    import mplhep

    names_of = dict(label_names or {})
    first = next(iter(hists.values()))
    written: list[Path] = []
    with cms_style():
        for name in names or list(first):
            fig, ax = plt.subplots(figsize=(10, 10))
            for ds, hs in hists.items():
                h = hs[name]
                for lab in h.axes["label"]:
                    sub = h[{"label": hist.loc(lab)}]
                    n = sub.sum().value
                    if n <= 0:
                        continue
                    tag = names_of.get(int(lab), "unlabelled" if int(lab) < 0 else str(lab))
                    mplhep.histplot(sub, ax=ax, density=True, yerr=False, label=f"{ds}: {tag} ({n:.0f} jets)")
            ax.set_ylabel("Fraction of jets / bin width")
            ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
            ax.legend(fontsize="x-small", loc="upper right")
            cms_label(ax, label=label)
            written += save_figure(fig, Path(folder) / name)
    return written
