"""Jets: from events to the jet dataset.

- :mod:`~hepscale.jets.clustering` (FastJet), :mod:`~hepscale.jets.observables` (the one
  implementation of jet substructure for every source), :mod:`~hepscale.jets.truth` (labels);
- :mod:`~hepscale.jets.dataset`: the jet dataset contract (parquet, one record per jet);
- :mod:`~hepscale.jets.config` (jet building and selection settings),
  :mod:`~hepscale.jets.processing` (the processor on dask over ROOT files, ``hepscale process``),
  :mod:`~hepscale.jets.cluster` (a local dask cluster; other clients: :func:`hepscale.condor.dask.dask_client`);
- :mod:`~hepscale.jets.readers`: JetClass ROOT and Aspen Open Jets HDF5 files into the jet
  dataset (``hepscale convert``).
"""

from __future__ import annotations

from hepscale._lazy import lazy_exports

_EXPORTS = {
    "read_jetclass": "hepscale.jets.readers",
    "read_aspen": "hepscale.jets.readers",
    "convert": "hepscale.jets.readers",
    "SourceError": "hepscale.jets.readers",
    "LABELS": "hepscale.jets.dataset",
    "LABEL_NAMES": "hepscale.jets.dataset",
    "JET_FIELDS": "hepscale.jets.dataset",
    "CONSTITUENT_FIELDS": "hepscale.jets.dataset",
    "DatasetError": "hepscale.jets.dataset",
    "build_jets": "hepscale.jets.dataset",
    "write_jets": "hepscale.jets.dataset",
    "read_jets": "hepscale.jets.dataset",
    "read_metadata": "hepscale.jets.dataset",
    "observable_matrix": "hepscale.jets.dataset",
    "OBSERVABLES": "hepscale.jets.observables",
    "jet_observables": "hepscale.jets.observables",
    "observables_from_arrays": "hepscale.jets.observables",
    "cluster_jets": "hepscale.jets.clustering",
    "truth_labels": "hepscale.jets.truth",
    "JetProcessorConfig": "hepscale.jets.config",
    "local_cluster": "hepscale.jets.cluster",
    "process_files": "hepscale.jets.processing",
    "ProcessingError": "hepscale.jets.processing",
    "read_histograms": "hepscale.jets.histograms",
    "write_histograms": "hepscale.jets.histograms",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
