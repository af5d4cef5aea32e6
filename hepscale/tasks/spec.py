"""The task spec: everything the study, the plan, the executors, the DAG writer, the runs table
and the command layer need to know about one training task, without torch.

A task is a folder ``hepscale/tasks/<name>/`` (or a module of another package, registered
through an entry point or ``HEPSCALE_TASKS``, see :mod:`hepscale.tasks`) whose spec subclasses
:class:`TaskSpec`. What a new task supplies:

================================  ===============================================================
member                            supplies
================================  ===============================================================
``name``, ``unit``, ``keys``      its name; its data unit (``tokens``, ``jets``); the grid keys of
                                  D, U and the D cap and the training config fields of U and of
                                  the prepared data (:class:`TaskKeys`)
``train_config_class()``          the dataclass of its training YAML (sections ``model``, ``data``,
                                  ``optim``, ``budget``, ...; :mod:`hepscale.train.config`)
``trainer_task(cfg)``             the :class:`hepscale.train.task.Task` the one trainer runs
                                  (model, batches, loss, evaluation; imports torch)
``study_class()``                 its study dataclass: :class:`hepscale.study.config.StudyConfig`
                                  with its own ``grid`` and ``data`` sections (the tagged union
                                  on ``task:``)
``size_table()``                  its model sizes (name -> shape)
``data_keys()``, ``data_paths()`` the settings hashes and folders of the data it prepares from
                                  the jets, and ``prepare()`` that writes them
``plan_rows()``                   N, D, U, epochs, steps and C of its runs, before any run
``job_commands()``                the jobs after training (sampling, evaluation) and their
                                  inputs on a pool (``job_inputs()``), and ``job_done()``: when
                                  such a job is already done
``model_shape()``, ``seq_len()``  layers, heads, width and positions per item (GPU memory)
``summary_table()``, ``figures()``  the end of a study
================================  ===============================================================

and may override the checks (``check_study``, ``check_train``), ``default_fits``,
``grid_inputs`` (more grid axes), ``fit_axes``, ``check_fit``, ``external_inputs`` and
``evaluate_command``; the defaults do what a task without those needs.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hepscale.runs.folder import RunFolder
    from hepscale.study.config import FitSpec, StudyConfig
    from hepscale.study.grid import Run
    from hepscale.study.plan import PlanRow
    from hepscale.train.task import Task

__all__ = ["TaskKeys", "TaskSpec", "Checker", "ExternalFile"]

#: ``bad(field, message)``: the error of one field of a study file
Checker = Callable[[str, str], Exception]


@dataclass(frozen=True)
class TaskKeys:
    """The keys in which tasks differ: ``data`` the grid key of D (and the training config's
    budget key), ``unique`` the grid key of U, ``largest`` the grid key that caps D,
    ``unique_field`` and ``dataset_field`` the training config's fields of U and of the prepared
    data, ``table`` the size table's file."""

    data: str
    unique: str
    largest: str
    unique_field: str
    dataset_field: str
    table: str


@dataclass(frozen=True)
class ExternalFile:
    """An input of the jobs after training from outside the study folder: its study key (e.g.
    ``data.reference``), its path and a short slug for its transferred name."""

    key: str
    path: str
    slug: str


class TaskSpec(abc.ABC):
    """One training task as the rest of hepscale sees it (see the module docstring)."""

    #: the task's name: the ``task`` key of training configs, studies and ``result.json``
    name: str = ""
    #: other names that read as this task (names of earlier versions)
    aliases: tuple[str, ...] = ()
    #: the name under which run ids of this task were first hashed (None: ``name``)
    run_id_name: str | None = None
    #: the data unit that D and U count (plural noun)
    unit: str = ""
    #: the task's keys (:class:`TaskKeys`)
    keys: TaskKeys
    #: the key of :meth:`data_paths` that the runs train on
    dataset_key: str = ""
    #: the file of the prepared dataset folder written last (it exists: the data is ready)
    prepared_info: str = ""
    #: an example training config of the task, under ``configs/train/``
    train_example: str = ""
    #: the study config of ``hepscale quickstart --study NAME`` (None: no quickstart)
    quickstart: Path | None = None
    #: job kinds after training that run on a GPU where the site profile asks for GPU inference
    gpu_inference_kinds: frozenset[str] = frozenset()
    #: messages for keys of other tasks' sections in a study of this task (``"data.tokenizer"`` ->
    #: why this task has none); other such keys get a generic message
    refused_keys: Mapping[str, str] = MappingProxyType({})

    # ------------------------------------------------------------------ configs
    @abc.abstractmethod
    def train_config_class(self) -> type:
        """The dataclass of the task's training YAML."""

    @abc.abstractmethod
    def trainer_task(self, cfg: Any) -> Task:
        """The trainer's task for the run config ``cfg`` (imports torch)."""

    @abc.abstractmethod
    def study_class(self) -> type[StudyConfig]:
        """The study dataclass of the task: ``StudyConfig`` with its ``grid`` and ``data`` sections."""

    @abc.abstractmethod
    def size_table(self) -> dict[str, Any]:
        """The task's model sizes (name -> shape)."""

    @property
    def budget_keys(self) -> tuple[str, str, str, str]:
        """The budget keys of ``grid``, in the order they are looked up: ``steps``, D, ``epochs``, ``flops``."""
        return ("steps", self.keys.data, "epochs", "flops")

    def fill_defaults(self, study: StudyConfig) -> None:
        """Fill in the task's defaults of sections the study left out (before validation)."""
        if study.fit.fits is None:
            study.fit.fits = self.default_fits()

    def check_study(self, study: StudyConfig, bad: Checker) -> None:
        """The task's own study sections (data, evaluation), after the defaults."""

    def check_train(self, study: StudyConfig, bad: Checker, base: Any) -> None:
        """The task's inputs against the base training config ``base`` (with the shared overrides)."""

    def default_fits(self) -> list[FitSpec]:
        """The fits of a study that lists none."""
        return []

    def grid_axes(self, study: StudyConfig) -> dict[str, list[Any] | None]:
        """The task's grid axes besides ``model`` (name -> values, None: the base config's)."""
        return {}

    def axis_field(self, axis: str) -> str:
        """The training config field (``section.key``) that the grid axis ``axis`` sets."""
        raise KeyError(axis)

    def grid_inputs(self, study: StudyConfig) -> list[list[str]]:
        """The ``key=value`` overrides of each combination of the task's grid axes."""
        import itertools

        axes = [(a, v) for a, v in self.grid_axes(study).items() if v is not None]
        return [[f"{self.axis_field(a)}={value}" for (a, _), value in zip(axes, combo)]
                for combo in itertools.product(*(v for _, v in axes))]

    def fit_axes(self) -> dict[str, str]:
        """Grid axes a fit may be repeated over (``fit.fits[i].per``) -> runs-table column."""
        return {"model": "model", **{a: a for a in self.grid_axes_names}}

    #: names of the task's grid axes besides ``model`` (runs-table columns of the same name)
    grid_axes_names: tuple[str, ...] = ()

    def fit_needs_evaluation(self, fit: FitSpec) -> bool:
        """True when the fit reads metrics that only the evaluation jobs write."""
        return False

    def check_fit(self, index: int, options: Any, bad: Checker) -> None:
        """The task's check of one fit (``options``: its parsed fit options)."""

    # ------------------------------------------------------------------ data
    @abc.abstractmethod
    def data_keys(self, study: StudyConfig, jets_key: str, code_version: str) -> dict[str, str]:
        """Settings hashes of the task's prepared data, from the jets' key (``jets`` not included)."""

    @abc.abstractmethod
    def data_paths(self, study: StudyConfig, keys: dict[str, str]) -> dict[str, str]:
        """Paths of the task's prepared data (``jets`` not included), relative to the study folder."""

    @abc.abstractmethod
    def prepare(self, study: StudyConfig, jets: str, root: Path, paths: dict[str, str],
                keys: dict[str, str]) -> None:
        """Prepare the task's data from the jet dataset ``jets`` into ``root`` (each step cached)."""

    def external_inputs(self, study: StudyConfig) -> list[ExternalFile]:
        """Inputs of the jobs after training from outside the study folder."""
        return []

    # ------------------------------------------------------------------ plan and jobs
    @abc.abstractmethod
    def plan_rows(self, study: StudyConfig, runs: Sequence[Run], root: Path) -> list[PlanRow]:
        """N, D, U, epochs, steps and C of every run (no torch)."""

    def plan_legend(self, flops_kind: str) -> tuple[str, str]:
        """The plan's legend line and the words for the compute with embeddings."""
        return (f"N: non-embedding parameters; D: {self.unit} seen; U: unique {self.unit}; C: training FLOPs "
                f"({flops_kind})", "FLOPs with the embedding layers")

    def job_commands(self, study: StudyConfig, runs: Sequence[Run], label: str) -> dict[str, list[tuple[str, list[str]]]]:
        """The ``hepscale`` arguments of the jobs after training, by kind (``sample``, ``evaluate``)."""
        return {}

    def job_inputs(self, study: StudyConfig, paths: dict[str, str], run_dir: str,
                   external: dict[str, str]) -> dict[str, list[str]]:
        """Inputs of each job kind on a pool without a shared filesystem, relative to the study
        folder (``run_dir``: the run folder; ``external``: study key -> transferred name)."""
        return {"train": [paths[self.dataset_key], run_dir]}

    def job_outputs(self, run_dir: str, *, figures: bool) -> dict[str, list[str]]:
        """Outputs of each job kind after training on a pool, relative to the study folder
        (transferred back on success): an ``evaluate`` job's merged ``result.json`` and, with
        ``figures``, its ``evaluation/`` folder."""
        from hepscale.runs.folder import RunFolder

        return {"evaluate": [f"{run_dir}/{RunFolder.RESULT}", *([f"{run_dir}/{RunFolder.EVALUATION}"] if figures
                                                                else [])]}

    def plan_axes(self) -> dict[str, str]:
        """The task's grid axes in the plan table: axis -> column header."""
        return {}

    def job_done(self, kind: str, run: RunFolder, study: StudyConfig) -> bool:
        """True when the job ``kind`` (after training) of ``run`` is done with the study's settings."""
        return False

    # ------------------------------------------------------------------ models
    @abc.abstractmethod
    def model_shape(self, cfg: Any) -> tuple[int, int, int]:
        """``(n_layer, n_head, d_model)`` of a run config (all layers)."""

    @abc.abstractmethod
    def seq_len(self, cfg: Any) -> int:
        """Positions per item of a run config (tokens of a sequence, particles of a jet)."""

    # ------------------------------------------------------------------ results
    @abc.abstractmethod
    def summary_table(self, table: Any) -> str:
        """The summary table of a runs table (pandas DataFrame)."""

    def figures(self, table: Any, root: Path, *, label: str) -> list[Path]:
        """The figures of a collected study folder ``root``."""
        return []

    def evaluate_command(self, args: Any) -> int:
        """``hepscale evaluate RUN_DIR ...`` for a run of this task (the command layer's arguments)."""
        from hepscale.config import ConfigError

        raise ConfigError(f"{args.target}: runs of task {self.name!r} have no 'hepscale evaluate'")

    def __repr__(self) -> str:
        return f"<task spec {self.name!r}>"


def run_folder_task(path: str | os.PathLike[str]) -> TaskSpec | None:
    """The spec of the run folder ``path`` (from its ``config.yaml``), or None when it is not one."""
    from hepscale.runs.folder import RunFolder
    from hepscale.tasks import task_spec
    from hepscale.train.config import run_task

    run = RunFolder(path)
    if not Path(path).is_dir() or not run.config.is_file():
        return None
    return task_spec(run_task(run.config))
