"""Figures for papers: CMS style (mplhep), one table of axis labels, observable figures."""

from __future__ import annotations

from hepscale._lazy import lazy_exports

_EXPORTS = {
    "cms_style": "hepscale.plotting.style",
    "cms_label": "hepscale.plotting.style",
    "save_figure": "hepscale.plotting.style",
    "ratio_axes": "hepscale.plotting.style",
    "OBSERVABLE_LABELS": "hepscale.plotting.labels",
    "observable_label": "hepscale.plotting.labels",
    "plot_observables": "hepscale.plotting.observables",
    "plot_histograms_by_label": "hepscale.plotting.observables",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
