"""Events: the embedded Pythia 8 generator.

- :mod:`~hepscale.events.pythia`: pp collisions at 13 TeV into NanoAOD-like ROOT files
  (``hepscale generate``).

Jet sources that hold jets rather than events (JetClass, Aspen Open Jets) are read by
:mod:`hepscale.jets.readers`.
"""

from __future__ import annotations

from hepscale._lazy import lazy_exports

_EXPORTS = {
    "PROCESSES": "hepscale.events.pythia",
    "GeneratorConfig": "hepscale.events.pythia",
    "already_generated": "hepscale.events.pythia",
    "generate": "hepscale.events.pythia",
    "write_nanoaod": "hepscale.events.pythia",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
