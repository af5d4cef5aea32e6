"""Scaling-law fits of a runs table, with seeded bootstrap uncertainties.

``python -m hepscale.fit`` (or ``hepscale fit``) reads a study folder or a CSV/parquet runs table
and fits one of the laws below, writing a JSON result, a terminal table and a CMS-style figure.
:class:`FitOptions` holds everything a fit takes; :func:`options_from_args` and
:func:`options_to_args` turn the tool's flags into options and back.

Modules: :mod:`~hepscale.fit.laws` (power, power-offset, log, chinchilla, repetition,
data-constrained; their fits: Huber loss, grid of starts, L-BFGS-B, seeded bootstrap),
:mod:`~hepscale.fit.optimal` (compute-optimal allocation of the chinchilla law),
:mod:`~hepscale.fit.isoflop` (isoFLOP parabolas, frontier), :mod:`~hepscale.fit.proxy` (loss as a
proxy of a physics metric), :mod:`~hepscale.fit.window` (learnable window),
:mod:`~hepscale.fit.analysis` (options, the analysis of each law with the columns and runs it
needs, runs table -> result).
"""

from __future__ import annotations

from collections.abc import Sequence

from hepscale.fit._cli import options_from_args, options_to_args
from hepscale.fit.analysis import (
    ANALYSES,
    REGISTRY,
    Analysis,
    FitOptions,
    FitOutput,
    analyse,
    default_columns,
    default_x,
    min_runs,
    required_columns,
)
from hepscale.fit.laws import (
    DEFAULT_HUBER_DELTA,
    EPOCH_GRID,
    LAWS,
    Bootstrap,
    Law,
    LawFit,
    bootstrap_law,
    fit_law,
    get_law,
    prediction_band,
)
from hepscale.fit.optimal import ChinchillaParams, compute_optimal
from hepscale.fit.proxy import ProxyResult, proxy_relation
from hepscale.fit.window import WindowResult, learnable_window

__all__ = [
    "ANALYSES",
    "DEFAULT_HUBER_DELTA",
    "EPOCH_GRID",
    "LAWS",
    "REGISTRY",
    "Analysis",
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
    "default_columns",
    "default_x",
    "fit_law",
    "get_law",
    "learnable_window",
    "main",
    "min_runs",
    "options_from_args",
    "options_to_args",
    "prediction_band",
    "proxy_relation",
    "required_columns",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hepscale.fit`` (see :mod:`hepscale.fit._cli`)."""
    from hepscale.fit._cli import main as _main

    return _main(argv)
