"""hepscale: neural scaling-law studies of jet machine learning.

The package is organised one module per concept: ``generate`` (embedded Pythia 8),
``observables`` (jet substructure), ``dataset`` (the jet dataset contract), ``readers``
(JetClass, Aspen Open Jets), ``process`` (coffea + dask event processing), and the
training, evaluation and fitting tools. Nothing is configured or loaded at import.
"""

from __future__ import annotations

from hepscale._version import __version__, code_version

__all__ = ["__version__", "code_version"]
