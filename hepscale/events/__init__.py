"""Events: the embedded Pythia 8 generator and the readers of other jet sources.

- :mod:`~hepscale.events.pythia`: pp collisions at 13 TeV into NanoAOD-like ROOT files
  (``hepscale generate``);
- :mod:`~hepscale.events.readers`: JetClass ROOT and Aspen Open Jets HDF5 files into the jet
  dataset (``hepscale convert``).
"""

from __future__ import annotations

from hepscale._lazy import lazy_exports

_EXPORTS = {
    "PROCESSES": "hepscale.events.pythia",
    "GeneratorConfig": "hepscale.events.pythia",
    "already_generated": "hepscale.events.pythia",
    "generate": "hepscale.events.pythia",
    "write_nanoaod": "hepscale.events.pythia",
    "read_jetclass": "hepscale.events.readers",
    "read_aspen": "hepscale.events.readers",
    "convert": "hepscale.events.readers",
    "SourceError": "hepscale.events.readers",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
