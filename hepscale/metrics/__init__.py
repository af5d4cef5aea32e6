"""Physics metrics of generated and tagged jets.

- :mod:`~hepscale.metrics.swd`: the sliced Wasserstein distance between jet samples, with
  bootstrap resamples and the SWD floor (exact 1D distances, numba kernels);
- :mod:`~hepscale.metrics.jetnet`: the JetNet metrics (W1 of mass, particle features and EFPs,
  FPD, KPD);
- :mod:`~hepscale.metrics.tagging`: ROC curves, AUC and background rejection of taggers;

Pure metrics only: evaluating a run folder (reading its files, drawing its figures) belongs to
its task (:mod:`hepscale.tasks.generation.evaluate`, :mod:`hepscale.tasks.tagging.evaluate`).

The public names below are imported from their module when first used, so that
``import hepscale.metrics`` loads neither numba nor the jet dataset readers.
"""

from __future__ import annotations

from hepscale._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_N_BOOTSTRAPS": "hepscale.metrics.swd",
    "DEFAULT_N_JETS": "hepscale.metrics.swd",
    "DEFAULT_N_PROJECTIONS": "hepscale.metrics.swd",
    "DEFAULT_OBSERVABLES": "hepscale.metrics.swd",
    "DEFAULT_P": "hepscale.metrics.swd",
    "SWDResult": "hepscale.metrics.swd",
    "bootstrap_swd": "hepscale.metrics.swd",
    "check_sample": "hepscale.metrics.swd",
    "per_observable_wasserstein": "hepscale.metrics.swd",
    "random_projections": "hepscale.metrics.swd",
    "sliced_wasserstein": "hepscale.metrics.swd",
    "wasserstein_1d": "hepscale.metrics.swd",
    "evaluate_datasets": "hepscale.metrics.jetnet",
    "fpd": "hepscale.metrics.jetnet",
    "fpd_kpd_features": "hepscale.metrics.jetnet",
    "frechet_distance": "hepscale.metrics.jetnet",
    "jet_masses": "hepscale.metrics.jetnet",
    "kpd": "hepscale.metrics.jetnet",
    "particle_arrays": "hepscale.metrics.jetnet",
    "prime_efps_n4_d4": "hepscale.metrics.jetnet",
    "w1efp": "hepscale.metrics.jetnet",
    "w1m": "hepscale.metrics.jetnet",
    "w1p": "hepscale.metrics.jetnet",
    "DEFAULT_SIGNAL_EFFICIENCIES": "hepscale.metrics.tagging",
    "auc": "hepscale.metrics.tagging",
    "background_rejection": "hepscale.metrics.tagging",
    "binary_metrics": "hepscale.metrics.tagging",
    "one_vs_qcd_metrics": "hepscale.metrics.tagging",
    "roc_curve": "hepscale.metrics.tagging",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
