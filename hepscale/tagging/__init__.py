"""Jet tagging: the tagging dataset, the tagger input features, scoring and evaluation of tagger runs.

- :mod:`~hepscale.tagging.data`: labelled jets of chosen classes, balanced and split by jet into
  train/val/test (``prepare_tagging_data``, ``load_split``, ``read_info``) and the unique-jet
  subsets of runs (``unique_subset``);
- :mod:`~hepscale.tagging.features`: the input feature sets ``kin``, ``kinpid``, ``full`` and
  ``build_inputs`` (numpy arrays, no torch);
- :mod:`~hepscale.tagging.score`, :mod:`~hepscale.tagging.evaluate`: per-jet class
  probabilities of a trained tagger run, and its ROC evaluation.

The public names below are imported from their module when first used, so that
``import hepscale.tagging`` loads neither awkward nor torch.
"""

from __future__ import annotations

from hepscale._lazy import lazy_exports

_EXPORTS = {
    "FEATURE_SETS": "hepscale.tagging.features",
    "FeatureError": "hepscale.tagging.features",
    "TaggerInputs": "hepscale.tagging.features",
    "build_inputs": "hepscale.tagging.features",
    "check_features": "hepscale.tagging.features",
    "required_fields": "hepscale.tagging.features",
    "SPLITS": "hepscale.tagging.data",
    "ClassSpec": "hepscale.tagging.data",
    "TaggingDataError": "hepscale.tagging.data",
    "class_map": "hepscale.tagging.data",
    "load_split": "hepscale.tagging.data",
    "prepare_tagging_data": "hepscale.tagging.data",
    "read_info": "hepscale.tagging.data",
    "unique_subset": "hepscale.tagging.data",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
