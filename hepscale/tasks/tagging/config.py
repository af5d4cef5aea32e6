"""The configuration of one tagger training run (the tagging task), without torch.

A training YAML with ``task: tagging`` (see ``configs/train/tagger_*.yaml``; ``classification``,
the name of earlier versions, reads the same) resolves to
:class:`TaggerTrainConfig`; one without a ``task`` key (or ``task: generation``) to
:class:`hepscale.train.config.TrainConfig`. :func:`hepscale.train.config.load_run_config`
chooses. The optimizer, checkpoint and runtime settings are the generator's; the model, data,
budget and evaluation sections are the tagger's own:

- ``model``: a size of ``configs/taggers.yaml`` (or ``custom`` with ``d_model``, ``n_head``,
  ``n_layer``), ``pairwise`` interaction features (ParT) on or off, ``dropout``;
- ``data``: the prepared tagging dataset (``hepscale.tasks.tagging.data.prepare_tagging_data``: its
  ``train/val/test`` splits and ``info.json``), the input ``features`` (``kin``, ``kinpid``,
  ``full``: :mod:`hepscale.tasks.tagging.features`), ``max_particles`` P, the batch, and the unique-jet
  budget U (``unique_jets``: a class-stratified random subset of the shuffled training split);
- ``budget``: exactly one of ``steps``, ``jets`` (D, jets seen) or ``flops`` (C with the tagger's
  own FLOP count per jet, :func:`hepscale.models.tagger_sizes.train_flops_per_jet`);
- ``eval``: validation every ``every`` steps on the first ``jets`` validation jets; the final
  evaluation also scores the whole test split (AUC, background rejection at fixed signal
  efficiency with ``bootstraps`` resamples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from hepscale.config import ConfigError
from hepscale.train.config import CheckpointSection, OptimSection, check_run_fields

__all__ = ["TaggerTrainConfig", "TaggerModelSection", "TaggerDataSection", "TaggerBudgetSection",
           "TaggerEvalSection"]


@dataclass
class TaggerModelSection:
    """``size``: a name of ``configs/taggers.yaml`` or ``"custom"`` (then ``d_model``, ``n_head``,
    ``n_layer`` are required; ``n_class_layer`` defaults to the table's)."""

    size: str = "Pico"
    d_model: int | None = None
    n_head: int | None = None
    n_layer: int | None = None
    n_class_layer: int | None = None
    pairwise: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout!r}")


@dataclass
class TaggerDataSection:
    """``dataset``: folder of a prepared tagging dataset; ``features``: input feature set;
    ``max_particles``: P, particles per jet (highest pT first, the rest dropped, padding masked);
    ``batch_size``: jets per optimizer step over all processes; ``unique_jets``: U (None: the
    whole training split)."""

    dataset: str = ""
    features: Literal["kin", "kinpid", "full"] = "kin"
    max_particles: int = 128
    batch_size: int = 256
    grad_accum: int = 1
    unique_jets: int | None = None


@dataclass
class TaggerBudgetSection:
    """Exactly one of ``steps``, ``jets`` (D) or ``flops`` (C, the tagger's own count);
    ``flops_params``: that count with all layers (``total``, the default) or without the input
    embedding (``non_embedding``)."""

    steps: int | None = None
    jets: int | None = None
    flops: float | None = None
    flops_params: Literal["total", "non_embedding"] = "total"

    @property
    def tokens(self) -> int | None:
        """The data budget in data units (jets), as the trainer's budget accounting reads it."""
        return self.jets


@dataclass
class TaggerEvalSection:
    """Validation every ``every`` steps on the first ``jets`` validation jets, ``batch_size`` at a
    time; ``bootstraps`` resamples for the uncertainties of the test-split metrics."""

    every: int = 200
    jets: int = 20000
    batch_size: int = 512
    bootstraps: int = 50


@dataclass
class TaggerTrainConfig:
    """Resolved configuration of one tagger run (``hepscale train CONFIG key=value ...`` with
    ``task: tagging``)."""

    task: Literal["tagging"] = "tagging"
    model: TaggerModelSection = field(default_factory=TaggerModelSection)
    data: TaggerDataSection = field(default_factory=TaggerDataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    budget: TaggerBudgetSection = field(default_factory=TaggerBudgetSection)
    eval: TaggerEvalSection = field(default_factory=TaggerEvalSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    compile: bool = False
    seed: int = 1337
    #: test and debugging hook: checkpoint and exit 85 after this many steps, as on SIGTERM
    stop_after_steps: int | None = None

    def __post_init__(self) -> None:
        check_run_fields(self, data_budget="jets", counts=(
            ("data.max_particles", self.data.max_particles), ("data.batch_size", self.data.batch_size),
            ("data.grad_accum", self.data.grad_accum), ("eval.every", self.eval.every),
            ("eval.jets", self.eval.jets), ("eval.batch_size", self.eval.batch_size),
            ("checkpoint.every", self.checkpoint.every),
        ))
        if self.eval.bootstraps < 0:
            raise ConfigError(f"eval.bootstraps must be >= 0, got {self.eval.bootstraps}")
        if self.data.unique_jets is not None and self.data.unique_jets < 1:
            raise ConfigError(f"data.unique_jets must be at least 1, got {self.data.unique_jets}")
        for key in ("steps", "jets"):
            value = getattr(self.budget, key)
            if value is not None and value < 1:
                raise ConfigError(f"budget.{key} must be at least 1, got {value}")
        if self.budget.flops is not None and not (math.isfinite(self.budget.flops) and self.budget.flops > 0):
            raise ConfigError(f"budget.flops must be a finite number > 0, got {self.budget.flops!r}")
