"""The study YAML: :class:`StudyConfig`, its sections, and :func:`load_study` with validation.

A study YAML (see ``configs/studies/``) has a ``task`` (a registered task, :mod:`hepscale.tasks`:
``generation``, the default, or ``tagging``), names the data (the embedded generator, existing
ROOT files, or an existing jet dataset), a base training config with shared overrides, a grid
(model sizes with a learning rate per size; step, data, epoch or compute budgets; unique-data
budgets; seeds; and the task's own axes), and the evaluation and fit settings. Relative paths in
it are relative to the working directory.

The study is a tagged union on ``task``: each task's spec
(:meth:`hepscale.tasks.spec.TaskSpec.study_class`) gives a :class:`StudyConfig` whose ``grid``
and ``data`` sections are its own (:class:`GridSection` and :class:`DataSection` with the task's
keys: a generation study counts tokens, ``grid.tokens``, and tokenizes its jets,
``data.tokenizer``; a tagging study counts jets, ``grid.jets``, and splits them into classes,
``data.tagging``). A key of another task's sections is refused, naming the key to use instead.

:func:`load_study` checks everything it can before a run starts, and every error names the
file and the field: the data source, the task's sections, the processor config YAML (as
:class:`hepscale.jets.config.JetProcessorConfig`), the base training config with the shared and
per-size overrides (as the task's training config), the grid, the evaluation and the fit specs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepscale.config import ConfigError, load_config
from hepscale.errors import HepscaleError
from hepscale.tasks import DEFAULT_TASK

if TYPE_CHECKING:
    from hepscale.tasks.spec import TaskSpec

__all__ = [
    "StudyError",
    "StudyConfig",
    "GenerateSection",
    "ProcessSection",
    "DataSection",
    "TrainSection",
    "GridSection",
    "EvaluationSection",
    "FitSpec",
    "FitSection",
    "PlanSection",
    "study_task",
    "load_study",
]

logger = logging.getLogger(__name__)

_NAME = r"[A-Za-z0-9_.+-]+"


class StudyError(HepscaleError, RuntimeError):
    """A study cannot be planned, prepared, run or collected; the message says why."""


@dataclass
class GenerateSection:
    """Embedded Pythia 8 generator: ``events`` per process; process ``i`` uses ``seed + i``."""

    processes: list[str] = field(default_factory=lambda: ["ttbar", "qcd"])
    events: int = 2000
    seed: int = 1
    pthat_min: float | None = None


@dataclass
class ProcessSection:
    """Jet processing: ``config`` a :class:`hepscale.jets.config.JetProcessorConfig` YAML (None:
    defaults); dask on a LocalCluster of ``workers`` processes, an existing ``scheduler``
    address, or ``dask_jobs`` HTCondor workers from the site profile ``site``."""

    config: str | None = None
    chunksize: int = 5000
    workers: int = 2
    scheduler: str | None = None
    site: str | None = None
    dask_jobs: int = 0


@dataclass
class DataSection:
    """Exactly one source: ``generate`` (embedded generator), ``events`` (ROOT files to
    process) or ``jets`` (an existing jet dataset); each task's data section adds the settings of
    the data it prepares from the jets."""

    generate: GenerateSection | None = None
    events: list[str] = field(default_factory=list)
    jets: str | None = None
    process: ProcessSection = field(default_factory=ProcessSection)


@dataclass
class TrainSection:
    """Base training config (``configs/train/``) and ``key=value`` overrides shared by all runs."""

    config: str = "configs/train/quick_cpu.yaml"
    overrides: list[str] = field(default_factory=list)


@dataclass
class GridSection:
    """The runs: every combination of ``models`` x the task's axes x budgets x unique-data
    budgets x ``seeds``; each task's grid section adds its D, U and D-cap keys and its axes.

    Budgets, exactly one of: ``steps``; D (the task's key, e.g. ``tokens``); ``epochs`` (D =
    epochs x U, needs explicit U); ``flops`` (C, isoFLOP: every model at every budget). The D cap
    (e.g. ``max_tokens``): grid points whose data budget D exceeds it are left out (e.g. many
    epochs only on the small sets). ``lr``: learning rate per model size (sizes not listed keep
    the base config's). ``model_overrides``: further ``key=value`` overrides per size (e.g. a
    batch size). Both may list sizes outside ``models`` (a table shared by studies, narrowed with
    ``grid.models=[Pico]``): those entries are ignored, as long as every size of ``models`` has
    its own learning rate when ``lr`` lists such sizes.
    """

    models: list[str] = field(default_factory=lambda: ["Pico"])
    lr: dict[str, float] = field(default_factory=dict)
    steps: list[int] | None = None
    epochs: list[float] | None = None
    flops: list[float] | None = None
    seeds: list[int] = field(default_factory=list)
    model_overrides: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class EvaluationSection:
    """Per run: sample ``samples`` jets, SWD with ``bootstraps`` resamples of ``n`` jets
    (the floor needs 2 n reference jets), ``projections`` directions. Tagging: the trainer
    scores the test split itself; with ``figures`` the evaluation draws each run's ROC
    (``bootstraps`` resamples, ``seed``; ``samples``, ``n``, ``projections``, ``floor`` and
    ``batch`` are not used)."""

    enabled: bool = True
    samples: int = 2000
    n: int = 1000
    bootstraps: int = 20
    projections: int = 1000
    floor: bool = True
    seed: int = 0
    batch: int = 256
    figures: bool = True


@dataclass
class FitSpec:
    """One fit ``fits/NAME.json`` of ``law`` in ``x`` with ``options``, fields of :class:`hepscale.fit.FitOptions`,
    repeated ``per`` grid axes (:func:`~hepscale.study.fits.expand_per`); ``args``: flags of older files."""

    name: str = ""
    law: str = "log"
    x: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    per: list[str] = field(default_factory=list)


@dataclass
class FitSection:
    """Fits run after collection (``n_bootstrap`` resamples, ``seed``); ``fits`` None: the
    task's default fits (:meth:`hepscale.tasks.spec.TaskSpec.default_fits`)."""

    n_bootstrap: int = 200
    seed: int = 0
    fits: list[FitSpec] | None = None


@dataclass
class PlanSection:
    """Assumptions of ``study plan``: ``sustained_flops`` (FLOP/s per GPU actually reached) and
    ``mean_jet_tokens`` (tokens per jet, used until the token dataset exists)."""

    sustained_flops: float = 1.0e14
    mean_jet_tokens: float = 60.0


@dataclass
class StudyConfig:
    """A scaling study (YAML keys); see :mod:`hepscale.study` and ``configs/studies/``."""

    name: str = ""
    description: str = ""
    output: str = ""
    task: str = DEFAULT_TASK
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    grid: GridSection = field(default_factory=GridSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    fit: FitSection = field(default_factory=FitSection)
    plan: PlanSection = field(default_factory=PlanSection)
    retries: int = 2
    #: experiment label of the figures; None: following the data (:func:`hepscale.study.data.figure_label`)
    label: str | None = None

    @property
    def folder(self) -> Path:
        """The study folder (``output``, default ``hepscale-output/studies/<name>``)."""
        return Path(self.output or f"hepscale-output/studies/{self.name}")

    @property
    def spec(self) -> TaskSpec:
        """The spec of the study's task (:func:`hepscale.tasks.task_spec`)."""
        from hepscale.tasks import task_spec

        return task_spec(self.task)


def study_task(path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> str:
    """The task of a study YAML and its overrides (:func:`hepscale.tasks.config_task`), as its registered name.

    Raises
    ------
    ConfigError
        On a task that is not registered, naming the file.
    """
    from hepscale.tasks import config_task

    return config_task(path, overrides)


def load_study(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> StudyConfig:
    """Load and validate a study YAML (``key=value`` overrides applied last) as the study class
    of its task.

    Raises
    ------
    ConfigError
        Naming the file and the field that is wrong.
    """
    from hepscale.tasks import task_spec

    spec = task_spec(study_task(path, overrides))
    bad = _Checker(str(path))
    _refuse_other_tasks_keys(spec, path, overrides, bad)
    study = load_config(spec.study_class(), path, overrides=[*overrides, f"task={spec.name}"])
    spec.fill_defaults(study)
    _validate(study, bad)
    return study


def _refuse_other_tasks_keys(spec: TaskSpec, path: str | os.PathLike[str], overrides: Sequence[str],
                             bad: _Checker) -> None:
    """A key of another task's ``grid`` or ``data`` section is refused, naming the key to use."""
    from hepscale.config import read_yaml
    from hepscale.tasks import all_specs

    raw = read_yaml(path)
    given = [f"{s}.{k}" for s in ("grid", "data") if isinstance(raw.get(s), dict) for k in raw[s]]
    given += [o.partition("=")[0].strip() for o in overrides if "=" in o]
    mine = _section_keys(spec)
    for key in given:
        section, _, name = key.partition(".")
        name = name.split(".")[0]
        if section not in ("grid", "data") or name in mine[section]:
            continue
        for other in all_specs().values():
            if other is spec or name not in _section_keys(other)[section]:
                continue
            where = f"{section}.{name}"
            if where in spec.refused_keys:
                raise bad(where, spec.refused_keys[where])
            roles = {other.keys.data: spec.keys.data, other.keys.unique: spec.keys.unique,
                     other.keys.largest: spec.keys.largest}
            if section == "grid" and name in roles:
                raise bad(where, f"a {spec.name} study counts {spec.unit}: use grid.{roles[name]}")
            what = "axis" if section == "grid" else "section"
            raise bad(where, f"only a {other.name} study (task: {other.name}) has this {what}")


def _section_keys(spec: TaskSpec) -> dict[str, set[str]]:
    import typing

    hints = typing.get_type_hints(spec.study_class())
    return {s: {f.name for f in dataclasses.fields(hints[s])} for s in ("grid", "data")}


# ---------------------------------------------------------------------------- validation
class _Checker:
    """Builds the errors of one study file: ``<file>: <field>: <what>``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {what}")

    def find(self, path: str, where: str) -> Path | None:
        """The file ``path`` names: relative to the working directory, else beside the study
        file (a resolved ``study.yaml``); None when a relative path is found in neither (it is
        checked again where it is used). A missing absolute path is an error."""
        p = Path(path)
        if p.is_file():
            return p
        if p.is_absolute():
            raise self(where, f"{p} does not exist")
        beside = Path(self.source).parent / p
        if beside.is_file():
            return beside
        logger.debug("%s: %s: %s not found from %s; checked when it is used", self.source, where, p, Path.cwd())
        return None


def _validate(study: StudyConfig, bad: _Checker) -> None:
    if not re.fullmatch(_NAME, study.name):
        raise bad("name", f"expected a non-empty name of letters, digits and _.+-, got {study.name!r}")
    _validate_data(study, bad)
    study.spec.check_study(study, bad)
    _validate_grid(study, bad)
    _validate_evaluation_and_fits(study, bad)
    if study.retries < 0:
        raise bad("retries", f"expected >= 0, got {study.retries}")
    if not study.plan.sustained_flops > 0 or not study.plan.mean_jet_tokens > 0:
        raise bad("plan", "sustained_flops and mean_jet_tokens must be positive")
    _validate_process_config(study, bad)
    _validate_train(study, bad)


def _validate_data(study: StudyConfig, bad: _Checker) -> None:
    from hepscale.events.pythia import PROCESSES

    d = study.data
    sources = [k for k, v in (("generate", d.generate), ("events", d.events), ("jets", d.jets)) if v]
    if len(sources) != 1:
        raise bad("data", f"set exactly one of data.generate, data.events, data.jets; got {sources or 'none'}")
    if d.generate is not None:
        if not d.generate.processes:
            raise bad("data.generate.processes", "expected at least one process")
        for i, p in enumerate(d.generate.processes):
            if p not in PROCESSES:
                raise bad(f"data.generate.processes[{i}]", f"expected one of {sorted(PROCESSES)}, got {p!r}")
        if d.generate.events < 1:
            raise bad("data.generate.events", f"expected at least 1, got {d.generate.events}")
    if d.process.workers < 1 or d.process.chunksize < 1 or d.process.dask_jobs < 0:
        raise bad("data.process", "workers and chunksize must be >= 1, dask_jobs >= 0")


def _validate_process_config(study: StudyConfig, bad: _Checker) -> None:
    """The processor config YAML, used (and hashed) only when events are processed."""
    from hepscale.jets.config import JetProcessorConfig

    d = study.data
    if not d.process.config or d.jets:
        return
    found = bad.find(d.process.config, "data.process.config")
    if found is not None:
        try:
            load_config(JetProcessorConfig, found)
        except ConfigError as err:
            raise bad("data.process.config", str(err)) from err


def _validate_train(study: StudyConfig, bad: _Checker) -> None:
    """The base training config with the shared (and per-size) overrides, as the runs will
    resolve it; the grid sets the budget of each run, so the base's budget is left out. Its
    ``task`` must be the study's."""
    from hepscale.train.config import load_run_config, run_task

    spec = study.spec
    keys = spec.keys
    base = bad.find(study.train.config, "train.config")
    # a base config not found here is checked where it is used; until then, the task's defaults
    task_default = [f"task={spec.name}"] if base is None else []
    no_budget = [f"budget.{k}=null" for k in ("steps", keys.data, "flops")]
    try:
        task = run_task(base, [*task_default, *study.train.overrides])
    except ConfigError as err:
        raise bad("train", str(err)) from err
    if task != spec.name:
        raise bad("train.config", f"{study.train.config} is a training config of task {task!r}; a {study.task} "
                  f"study needs one with task: {spec.name} (e.g. configs/train/{spec.train_example})")
    try:
        cfg = load_run_config(base, [*task_default, *study.train.overrides, *no_budget])
    except ConfigError as err:
        where = "train" if base is not None else "train.overrides"
        raise bad(where, str(err)) from err
    for model, extra in study.grid.model_overrides.items():
        try:
            load_run_config(base, [*task_default, *study.train.overrides, *extra, *no_budget])
        except ConfigError as err:
            raise bad(f"grid.model_overrides.{model}", str(err)) from err
    spec.check_train(study, bad, cfg)


def _validate_grid(study: StudyConfig, bad: _Checker) -> None:
    g = study.grid
    spec = study.spec
    keys = spec.keys
    sizes = spec.size_table()
    table = f"a size of {keys.table} ({', '.join(sizes)})"
    if not g.models:
        raise bad("grid.models", "expected at least one model size")
    for i, m in enumerate(g.models):
        if m not in sizes:
            raise bad(f"grid.models[{i}]", f"{m!r} is not {table}")
    for m, lr in g.lr.items():
        if m not in sizes:
            raise bad(f"grid.lr.{m}", f"{m!r} is not {table}")
        if not lr > 0:
            raise bad(f"grid.lr.{m}", f"expected a positive learning rate, got {lr}")
    # a table of learning rates may list more sizes than the grid (e.g. after grid.models=[Pico]),
    # as long as every size of the grid has its own; else the extra entry is most likely a mistake
    outside = [m for m in g.lr if m not in g.models]
    without = [m for m in g.models if m not in g.lr]
    if outside and without:
        raise bad(f"grid.lr.{outside[0]}", f"{outside[0]!r} is not one of grid.models {g.models}, and "
                  f"{', '.join(without)} of grid.models have no learning rate in grid.lr (sizes outside "
                  "grid.models are ignored only when every size of grid.models has its own)")
    for m in g.model_overrides:
        if m not in sizes:
            raise bad(f"grid.model_overrides.{m}", f"{m!r} is not {table}")
    ignored = sorted({*outside, *(m for m in g.model_overrides if m not in g.models)})
    if ignored:
        logger.debug("%s: grid.lr / grid.model_overrides of %s ignored (not in grid.models)", bad.source, ignored)
    budgets = [k for k in spec.budget_keys if getattr(g, k) is not None]
    if len(budgets) != 1:
        raise bad("grid", f"set exactly one of grid.steps, grid.{keys.data}, grid.epochs, grid.flops; "
                  f"got {budgets or 'none'}")
    values = getattr(g, budgets[0])
    if not values or any(not v > 0 for v in values):
        raise bad(f"grid.{budgets[0]}", f"expected a non-empty list of positive values, got {values}")
    unique = getattr(g, keys.unique)
    if not unique:
        raise bad(f"grid.{keys.unique}", "expected a list (use [null] for the whole training split)")
    if any(u is not None and u < 1 for u in unique):
        raise bad(f"grid.{keys.unique}", f"expected positive {keys.data} counts or null, got {unique}")
    if g.epochs is not None and None in unique:
        raise bad("grid.epochs", f"epoch budgets need explicit grid.{keys.unique} (D = epochs x U)")


def _validate_evaluation_and_fits(study: StudyConfig, bad: _Checker) -> None:
    e = study.evaluation
    for name in ("samples", "n", "bootstraps", "projections", "batch"):
        if getattr(e, name) < 1:
            raise bad(f"evaluation.{name}", f"expected at least 1, got {getattr(e, name)}")
    if study.fit.fits:  # scipy and pandas: only for a study with fits
        from hepscale.study.fits import check_fits, expand_per, typed_fits

        study.fit.fits = typed_fits(study, bad)  # as written (args -> options), then expanded
        study.fit.fits = expand_per(study, bad)
        check_fits(study, bad, name_pattern=_NAME)
