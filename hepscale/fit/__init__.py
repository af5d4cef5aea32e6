"""Scaling-law fits of a runs table, with seeded bootstrap uncertainties.

``python -m hepscale.fit`` (or ``hepscale fit``) reads a study folder or a CSV/parquet runs table
and fits one of the laws below, writing a JSON result, a terminal table and a CMS-style figure.

Modules: :mod:`~hepscale.fit.laws` (power, power-offset, log, chinchilla, repetition),
:mod:`~hepscale.fit.fitting` (Huber loss, grid of starts, L-BFGS-B, seeded bootstrap),
:mod:`~hepscale.fit.optimal` (compute-optimal allocation of the chinchilla law),
:mod:`~hepscale.fit.isoflop` (isoFLOP parabolas, frontier), :mod:`~hepscale.fit.proxy` (loss as a
proxy of a physics metric), :mod:`~hepscale.fit.window` (learnable window),
:mod:`~hepscale.fit.analysis` (runs table -> result).
"""

from __future__ import annotations

from collections.abc import Sequence

from hepscale.fit.analysis import ANALYSES, FitOptions, FitOutput, analyse
from hepscale.fit.fitting import (
    DEFAULT_HUBER_DELTA,
    Bootstrap,
    LawFit,
    bootstrap_law,
    fit_law,
    prediction_band,
)
from hepscale.fit.laws import EPOCH_GRID, LAWS, Law, get_law
from hepscale.fit.optimal import ChinchillaParams, compute_optimal
from hepscale.fit.proxy import ProxyResult, proxy_relation
from hepscale.fit.window import WindowResult, learnable_window

__all__ = [
    "ANALYSES",
    "DEFAULT_HUBER_DELTA",
    "EPOCH_GRID",
    "LAWS",
    "Bootstrap",
    "ChinchillaParams",
    "FitOptions",
    "FitOutput",
    "Law",
    "LawFit",
    "ProxyResult",
    "WindowResult",
    "analyse",
    "bootstrap_law",
    "compute_optimal",
    "fit_law",
    "get_law",
    "learnable_window",
    "main",
    "prediction_band",
    "proxy_relation",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hepscale.fit`` (see :mod:`hepscale.fit._cli`)."""
    from hepscale.fit._cli import main as _main

    return _main(argv)
