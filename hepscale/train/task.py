"""What a training task supplies to the one trainer (:func:`hepscale.train.loop.train`).

The trainer owns everything that is the same for every task: devices and DDP, the optimizer
and learning-rate schedule, budgets (steps, D, C), gradient accumulation, checkpoints and exact
resume, the stop flag (exit 85), divergence checks (exit 3), the run folder (``config.yaml``,
``metrics.jsonl``, ``result.json``) and the lock on it. A task supplies the model, the data, the
loss and the evaluation:

============================  ==================================================================
method                        supplies
============================  ==================================================================
``load(runtime)``             reads and checks the data; returns the training :class:`TrainData`
                              (items drawn by index, data units per item, ``state()`` /
                              ``load_state()`` for exact resume). Called first, once; the task
                              keeps ``runtime`` (device, processes, autocast) for what follows.
``seq_len``                   S, positions per item: ``positions = steps B S`` and
                              ``C = 6 N B S steps``
``model_config()``            the model's configuration as a dict (checkpoint and result.json)
``param_counts()``            ``(N non-embedding, N total)``
``build_model()``             a new model (the trainer seeds torch just before and moves it)
``loss(model, ids)``          mean loss of the micro-batch of training items ``ids`` (a scalar
                              tensor with grad); the task moves the batch to the device and
                              runs the forward pass under ``runtime.autocast``
``evaluate(model, final=)``   :class:`Evaluation` on the validation data: ``loss``, scalar
                              ``metrics`` for ``metrics.jsonl``, and with ``final=True`` (the
                              last evaluation) the ``result`` keys of result.json. Runs in eval
                              mode under ``torch.no_grad()``; the task sums over processes
                              with ``runtime.dist.all_reduce``.
============================  ==================================================================

and may override (defaults do nothing):

============================  ==================================================================
``final_metric_keys``         the keys of ``Evaluation.result`` that result.json always has
                              (null when the final evaluation ran in an earlier process)
``write_files(folder)``       files written into the run folder at the first start
``checkpoint_keys()``         extra keys stored in every checkpoint
``check_checkpoint(ckpt, p)`` raise :class:`~hepscale.train.checkpoint.CheckpointError` when a
                              checkpoint does not belong to this task's inputs (on resume)
``result_keys()``             extra keys of result.json describing the task's inputs
``train_flops_per_item()``    the task's own training FLOPs per item ``(with N non-embedding,
                              with N total)`` and :attr:`flops_formula`; default None: the
                              trainer's ``C = 6 N B S steps``
============================  ==================================================================

The generation task (:class:`hepscale.tasks.generation.trainer.GenerationTask`) implements all of them:
batches of padded jets from the token dataset, next-token loss, per-position validation loss as
its final metric, the ``tokenizer.json`` copy, the tokenizer fingerprint in checkpoints and the
``tokenizer`` key of result.json.

A classification task (a jet tagger) implements ``load`` (its jet tensors and labels; an
:class:`~hepscale.train.data.EpochSampler` over the training jets, one data unit per jet or its
constituents), ``seq_len`` (constituents per jet the tagger sees), ``model_config``,
``param_counts``, ``build_model``, ``loss`` (cross entropy of the micro-batch) and ``evaluate``
(validation cross entropy; ``metrics`` such as accuracy; with ``final=True`` the ``result`` keys,
e.g. AUC and background rejection at fixed signal efficiency, named in ``final_metric_keys``);
``result_keys`` when it should record its inputs (feature set, dataset).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch

    from hepscale.runs.folder import RunFolder
    from hepscale.train.distributed import Runtime

__all__ = ["Task", "TrainData", "Evaluation"]


class TrainData(Protocol):
    """The training data of a task as the trainer sees it: items drawn by index.

    :class:`hepscale.train.data.EpochSampler` implements it (a fixed subset visited in one seeded
    permutation per epoch).
    """

    @property
    def unique_units(self) -> int:
        """U: data units of the items that training draws from."""

    @property
    def mean_units(self) -> float:
        """Mean data units per item (converts a D budget into steps)."""

    def next_ids(self, n: int) -> np.ndarray:
        """The next ``n`` item indices (advancing the position)."""

    def units(self, ids: np.ndarray) -> int:
        """Data units of the items ``ids`` (what D counts)."""

    def state(self) -> dict[str, int]:
        """The position in the data (stored in checkpoints)."""

    def load_state(self, state: Mapping[str, int]) -> None:
        """Go back to a position returned by :meth:`state`."""


@dataclass
class Evaluation:
    """One evaluation of the model on the validation data.

    Attributes
    ----------
    loss
        Mean validation loss (nats per predicted unit).
    metrics
        Scalars written to the ``metrics.jsonl`` line after ``val_loss``.
    result
        Final evaluation only: keys of ``result.json`` (after ``final_train_loss``).
    """

    loss: float
    metrics: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)


class Task(abc.ABC):
    """A training task: model, data, loss and evaluation (see the module docstring)."""

    #: keys of :attr:`Evaluation.result` that ``result.json`` always has
    final_metric_keys: tuple[str, ...] = ()
    #: how ``flops`` is counted, for ``result.json`` (None: :data:`hepscale.train.budget.FLOPS_FORMULA`)
    flops_formula: str | None = None

    @abc.abstractmethod
    def load(self, runtime: Runtime) -> TrainData:
        """Read and check the data; keep ``runtime``; return the training data."""

    @property
    @abc.abstractmethod
    def seq_len(self) -> int:
        """S: positions per item (for positions and FLOPs)."""

    @abc.abstractmethod
    def model_config(self) -> dict[str, Any]:
        """The model's configuration (JSON-able dict)."""

    @abc.abstractmethod
    def param_counts(self) -> tuple[int, int]:
        """``(N non-embedding, N total)`` of the model."""

    @abc.abstractmethod
    def build_model(self) -> torch.nn.Module:
        """A freshly initialised model (on the CPU; the trainer moves it to the device)."""

    @abc.abstractmethod
    def loss(self, model: torch.nn.Module, ids: np.ndarray) -> torch.Tensor:
        """Mean training loss (scalar tensor with grad) of the micro-batch of items ``ids``."""

    @abc.abstractmethod
    def evaluate(self, model: torch.nn.Module, *, final: bool) -> Evaluation:
        """Validation loss and metrics, summed over every process (``final``: the last evaluation)."""

    def write_files(self, folder: RunFolder) -> None:
        """Write the task's files into the run folder at the first start (main process)."""

    def checkpoint_keys(self) -> dict[str, Any]:
        """Extra keys stored in every checkpoint."""
        return {}

    def check_checkpoint(self, ckpt: Mapping[str, Any], path: Path) -> None:
        """Raise :class:`~hepscale.train.checkpoint.CheckpointError` when ``ckpt`` (read from ``path``)
        does not fit the task's inputs."""

    def result_keys(self) -> dict[str, Any]:
        """Extra keys of ``result.json`` describing the task's inputs (after ``elapsed_s``)."""
        return {}

    def train_flops_per_item(self) -> tuple[float, float] | None:
        """Training FLOPs (forward and backward) of one item, ``(non-embedding, total)``; None
        (the default) for the trainer's ``6 N S`` per item."""
        return None
