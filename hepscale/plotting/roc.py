"""The ROC figure of a tagger: background rejection against signal efficiency, CMS style."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_roc"]


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike[str], *,
             rejections: Mapping[str, Mapping[str, Any]] | None = None, label: str = "Simulation",
             com: float = 13, title: str | None = None) -> list[Path]:
    """Background rejection ``1 / eps_B`` (log scale) against signal efficiency ``eps_S``, one
    curve per signal class (name -> ``(eps_S, eps_B)`` of :func:`hepscale.metrics.tagging.roc_curve`);
    ``rejections``: name -> the metrics record (``auc``, ``rejection``) for the legend.

    Returns the files written (PDF and PNG).
    """
    import matplotlib.pyplot as plt

    from hepscale.plotting.style import cms_label, cms_style, save_figure

    with cms_style():
        fig, ax = plt.subplots(figsize=(10, 9))
        for name, (eps_s, eps_b) in curves.items():
            keep = (eps_b > 0) & (eps_s > 0)
            text = name
            if rejections and name in rejections:
                rec = rejections[name]
                r50 = rec.get("rejection", {}).get("0.5")
                text += f" (AUC {rec['auc']:.3f}" + (f", $R_{{50}}$ = {r50:.3g})" if r50 else ")")
            ax.plot(eps_s[keep], 1.0 / eps_b[keep], label=text)
        ax.set_yscale("log")
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel(r"Signal efficiency $\varepsilon_{S}$")
        ax.set_ylabel(r"Background rejection $1/\varepsilon_{B}$")
        ax.legend(title=title, loc="upper right")
        cms_label(ax, label=label, com=com)
        return save_figure(fig, path)
