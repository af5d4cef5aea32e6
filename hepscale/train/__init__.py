"""Training: one trainer for every task, the generation task, configs, budgets and checkpoints.

- :mod:`~hepscale.train.config`: :class:`TrainConfig`, :func:`run_id`, :func:`load_run_config`,
  :func:`model_config_for` (without torch);
- :mod:`~hepscale.train.budget`: unique subset, steps of a budget, training FLOPs (without torch);
- :mod:`~hepscale.train.task`: the :class:`Task` interface a training task implements;
- :mod:`~hepscale.tasks.generation.trainer`: :class:`GenerationTask` (next-token prediction on token data)
  and its :class:`JetBatcher`;
- :mod:`~hepscale.tasks.tagging.config` and :mod:`~hepscale.tasks.tagging.trainer`:
  :class:`TaggerTrainConfig` (without torch) and :class:`ClassificationTask` (a jet tagger);
- :mod:`~hepscale.train.loop`: :func:`train`, the one training loop (budgets, checkpoints, exact
  resume, DDP, the run folder);
- :mod:`~hepscale.train.checkpoint`, :mod:`~hepscale.train.result`, :mod:`~hepscale.train.distributed`,
  :mod:`~hepscale.train.data`, :mod:`~hepscale.train.optim`: checkpoint format and resume checks,
  ``result.json`` of a run, devices and processes, item sampling, optimizers;
- :mod:`~hepscale.train.cli`: ``hepscale train`` / ``python -m hepscale.train``.

Names that need torch are imported when first used, so that ``import hepscale.train.config``
(the study planner) stays free of torch.
"""

from __future__ import annotations

from hepscale._lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "hepscale.train.config",
    "TrainError": "hepscale.train.config",
    "run_id": "hepscale.train.config",
    "load_run_config": "hepscale.train.config",
    "model_config_for": "hepscale.train.config",
    "Accounting": "hepscale.train.budget",
    "FLOPS_FORMULA": "hepscale.train.budget",
    "steps_for_budget": "hepscale.train.budget",
    "training_flops": "hepscale.train.budget",
    "unique_subset": "hepscale.train.budget",
    "Task": "hepscale.train.task",
    "TrainData": "hepscale.train.task",
    "Evaluation": "hepscale.train.task",
    "EpochSampler": "hepscale.train.data",
    "GenerationTask": "hepscale.tasks.generation.trainer",
    "JetBatcher": "hepscale.tasks.generation.trainer",
    "TaggerTrainConfig": "hepscale.tasks.tagging.config",
    "ClassificationTask": "hepscale.tasks.tagging.trainer",
    "train": "hepscale.train.loop",
    "TrainState": "hepscale.train.loop",
    "TrainingDiverged": "hepscale.train.loop",
    "TIMING_FIELDS": "hepscale.train.loop",
    "CheckpointError": "hepscale.train.checkpoint",
    "load_checkpoint": "hepscale.train.checkpoint",
    "main": "hepscale.train.cli",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
