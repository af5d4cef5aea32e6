"""The tagging task: jet classification with particle transformers, everything specific to it.

- :mod:`~hepscale.tasks.tagging.spec`: :data:`SPEC`, the task's spec (what the study, the plan,
  the executors and the runs table ask);
- :mod:`~hepscale.tasks.tagging.config`: the training config (``task: tagging``);
- :mod:`~hepscale.tasks.tagging.trainer`: the trainer's task (model, batches, loss, evaluation);
- :mod:`~hepscale.tasks.tagging.study`, :mod:`~hepscale.tasks.tagging.plan`: the study's sections
  and checks, and its plan;
- :mod:`~hepscale.tasks.tagging.data`: labelled jets of chosen classes, balanced and split by jet into
  train/val/test (``prepare_tagging_data``, ``load_split``, ``read_info``) and the unique-jet
  subsets of runs (``unique_subset``);
- :mod:`~hepscale.tasks.tagging.features`: the input feature sets ``kin``, ``kinpid``, ``full`` and
  ``build_inputs`` (numpy arrays, no torch);
- :mod:`~hepscale.tasks.tagging.score`, :mod:`~hepscale.tasks.tagging.evaluate`: per-jet class
  probabilities of a trained tagger run, and its ROC evaluation;
- :mod:`~hepscale.tasks.tagging.results`, :mod:`~hepscale.tasks.tagging.cli`: the summary and
  figures of a study, and what ``hepscale evaluate`` prints.

The public names below are imported from their module when first used, so that
``import hepscale.tasks.tagging`` loads neither awkward nor torch.
"""

from __future__ import annotations

from hepscale._lazy import lazy_exports
from hepscale.tasks.tagging.spec import SPEC

_EXPORTS = {
    "FEATURE_SETS": "hepscale.tasks.tagging.features",
    "FeatureError": "hepscale.tasks.tagging.features",
    "TaggerInputs": "hepscale.tasks.tagging.features",
    "build_inputs": "hepscale.tasks.tagging.features",
    "check_features": "hepscale.tasks.tagging.features",
    "required_fields": "hepscale.tasks.tagging.features",
    "SPLITS": "hepscale.tasks.tagging.data",
    "ClassSpec": "hepscale.tasks.tagging.data",
    "TaggingDataError": "hepscale.tasks.tagging.data",
    "class_map": "hepscale.tasks.tagging.data",
    "load_split": "hepscale.tasks.tagging.data",
    "prepare_tagging_data": "hepscale.tasks.tagging.data",
    "read_info": "hepscale.tasks.tagging.data",
    "unique_subset": "hepscale.tasks.tagging.data",
}

__all__ = ["SPEC", *sorted(_EXPORTS)]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
