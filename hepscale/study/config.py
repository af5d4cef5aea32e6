"""The study YAML: :class:`StudyConfig`, its sections, and :func:`load_study` with validation.

A study YAML (see ``configs/studies/``) has a ``task`` (``generation``, the default, or
``tagging``), names the data (the embedded generator, existing ROOT files, or an existing jet
dataset), a base training config with shared overrides, a grid (model sizes with a learning
rate per size; step, data, epoch or compute budgets; unique-data budgets; seeds; for tagging
also input feature sets and particle multiplicities), and the evaluation and fit settings.
Relative paths in it are relative to the working directory.

The two tasks differ in a few keys (:data:`TASK_KEYS`): a generation study tokenizes its jets
(``data.tokenizer``), counts tokens (``grid.tokens``, ``grid.unique_tokens``,
``grid.max_tokens``) and names GPT sizes of ``configs/models.yaml``; a tagging study splits its
jets into classes (``data.tagging``), counts jets (``grid.jets``, ``grid.unique_jets``,
``grid.max_jets``), has the axes ``grid.features`` and ``grid.max_particles``, and names tagger
sizes of ``configs/taggers.yaml`` (see :mod:`hepscale.study.tagging`).

:func:`load_study` checks everything it can before a run starts, and every error names the
file and the field: the data source, the tokenizer section (as
:class:`hepscale.tokens.tokenizer.TokenizerConfig`) or the tagging section, the processor
config YAML (as :class:`hepscale.jets.config.JetProcessorConfig`), the base training config
with the shared and per-size overrides (as :class:`hepscale.train.config.TrainConfig`, or
:class:`hepscale.train.tagger_config.TaggerTrainConfig` for tagging), the grid, the input
feature sets against what the data source has, the evaluation and the fit specs.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepscale.config import ConfigError, from_dict, load_config
from hepscale.errors import HepscaleError

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
    "TaggingSection",
    "TaskKeys",
    "TASKS",
    "TASK_KEYS",
    "BUDGET_KEYS",
    "budget_keys",
    "default_fits",
    "load_study",
]

logger = logging.getLogger(__name__)

#: the tasks of a study (``task`` key)
TASKS = ("generation", "tagging")


@dataclass(frozen=True)
class TaskKeys:
    """The keys in which the tasks differ: ``data`` the grid key of D (and the training config's
    budget key), ``unique`` the grid key of U, ``largest`` the grid key that caps D, ``unique_field``
    and ``dataset_field`` the training config's fields of U and of the prepared data, ``table``
    the size table, ``task`` the training config's ``task``."""

    data: str
    unique: str
    largest: str
    unique_field: str
    dataset_field: str
    table: str
    task: str


#: the keys of each study task
TASK_KEYS = {
    "generation": TaskKeys("tokens", "unique_tokens", "max_tokens", "data.unique_tokens", "data.tokens",
                           "models.yaml", "generation"),
    "tagging": TaskKeys("jets", "unique_jets", "max_jets", "data.unique_jets", "data.dataset", "taggers.yaml",
                        "classification"),
}

#: budget keys of ``grid`` of a generation study, in the order they are looked up (:func:`budget_keys`)
BUDGET_KEYS = ("steps", "tokens", "epochs", "flops")


def budget_keys(task: str) -> tuple[str, str, str, str]:
    """The budget keys of ``grid`` for ``task``, in the order they are looked up: ``steps``, D
    (``tokens`` or ``jets``), ``epochs``, ``flops``."""
    return ("steps", TASK_KEYS[task].data, "epochs", "flops")

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
class TaggingSection:
    """The tagging dataset of a tagging study (:func:`hepscale.tagging.data.prepare_tagging_data`):
    ``classes`` (truth-label names of :data:`hepscale.jets.dataset.LABELS`, the background class
    first, e.g. ``[QCD, Tbqq]``), the train/validation/test ``fractions``, the split ``seed`` and
    ``balance`` (as many jets of each class)."""

    classes: list[str] = field(default_factory=lambda: ["QCD", "Tbqq"])
    fractions: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    seed: int = 1
    balance: bool = True


@dataclass
class DataSection:
    """Exactly one source: ``generate`` (embedded generator), ``events`` (ROOT files to
    process) or ``jets`` (an existing jet dataset). Generation: ``tokenizer``, fields of
    :class:`hepscale.tokens.tokenizer.TokenizerConfig` (None: the defaults), and ``reference``,
    the jet dataset of the SWD (None: the validation jets of the token split). Tagging:
    ``tagging`` (:class:`TaggingSection`, None: its defaults)."""

    generate: GenerateSection | None = None
    events: list[str] = field(default_factory=list)
    jets: str | None = None
    process: ProcessSection = field(default_factory=ProcessSection)
    tokenizer: dict[str, Any] | None = None
    reference: str | None = None
    tagging: TaggingSection | None = None


@dataclass
class TrainSection:
    """Base training config (``configs/train/``) and ``key=value`` overrides shared by all runs."""

    config: str = "configs/train/quick_cpu.yaml"
    overrides: list[str] = field(default_factory=list)


@dataclass
class GridSection:
    """The runs: every combination of ``models`` x budgets x ``unique_tokens`` x ``seeds``
    (tagging: ``models`` x ``features`` x ``max_particles`` x budgets x ``unique_jets`` x ``seeds``).

    Budgets, exactly one of: ``steps``; ``tokens`` (D; tagging: ``jets``); ``epochs`` (D =
    epochs x U, needs ``unique_tokens``, tagging ``unique_jets``); ``flops`` (C, isoFLOP: every
    model at every budget). ``max_tokens`` (tagging: ``max_jets``): grid points whose data budget
    D exceeds it are left out (e.g. many epochs only on the small sets). ``lr``: learning rate per
    model size (sizes not listed keep the base config's). ``model_overrides``: further
    ``key=value`` overrides per size (e.g. a batch size). Both may list sizes outside ``models``
    (a table shared by studies, narrowed with ``grid.models=[Pico]``): those entries are ignored,
    as long as every size of ``models`` has its own learning rate when ``lr`` lists such sizes.
    Tagging only: ``features`` (input feature sets, None: the base config's) and
    ``max_particles`` (particles per jet P, None: the base config's).
    """

    models: list[str] = field(default_factory=lambda: ["Pico"])
    lr: dict[str, float] = field(default_factory=dict)
    steps: list[int] | None = None
    tokens: list[int] | None = None
    epochs: list[float] | None = None
    flops: list[float] | None = None
    unique_tokens: list[int | None] = field(default_factory=lambda: [None])
    seeds: list[int] = field(default_factory=list)
    max_tokens: int | None = None
    model_overrides: dict[str, list[str]] = field(default_factory=dict)
    jets: list[int] | None = None
    unique_jets: list[int | None] = field(default_factory=lambda: [None])
    max_jets: int | None = None
    features: list[str] | None = None
    max_particles: list[int] | None = None


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


def default_fits(task: str) -> list[FitSpec]:
    """The fits of a study that lists none (``fit.fits`` left out): generation, loss vs N and SWD vs
    loss; tagging, background rejection at 50% signal efficiency vs loss."""
    if task == "tagging":
        return [FitSpec(name="rejection_vs_loss", law="proxy",
                        options={"columns": {"metric": "rejection_50", "metric_err": "rejection_50_std"}})]
    return [FitSpec(name="loss_vs_N", law="log", x="N"), FitSpec(name="swd_vs_loss", law="proxy")]


@dataclass
class FitSection:
    """Fits run after collection (``n_bootstrap`` resamples, ``seed``); ``fits`` None: those of
    :func:`default_fits` for the study's task."""

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
    task: str = "generation"
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


def load_study(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> StudyConfig:
    """Load and validate a study YAML (``key=value`` overrides applied last).

    Raises
    ------
    ConfigError
        Naming the file and the field that is wrong.
    """
    study = load_config(StudyConfig, path, overrides=list(overrides))
    bad = _Checker(str(path))
    if study.task not in TASKS:
        raise bad("task", f"expected one of {list(TASKS)}, got {study.task!r}")
    if study.task == "tagging":
        from hepscale.study.tagging import check_tagging_sections

        check_tagging_sections(study, bad)  # before the defaults fill the sections in
    elif study.data.tagging is not None:
        raise bad("data.tagging", "only a tagging study (task: tagging) splits its jets into classes; "
                  "a generation study tokenizes them (data.tokenizer)")
    # the task's defaults of the sections left out
    if study.fit.fits is None:
        study.fit.fits = default_fits(study.task)
    if study.task == "tagging" and study.data.tagging is None:
        study.data.tagging = TaggingSection()
    if study.task == "generation" and study.data.tokenizer is None:
        study.data.tokenizer = {}
    _validate(study, bad)
    return study


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
    from hepscale.tokens.tokenizer import TokenizerConfig

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
    if study.task == "generation":  # fields, types and ranges of the binning; an unknown key lists the valid ones
        from_dict(TokenizerConfig, d.tokenizer or {}, where=f"{bad.source}: data.tokenizer")
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
    ``task`` must be the study's (classification for a tagging study)."""
    from hepscale.train.config import load_run_config, run_task

    keys = TASK_KEYS[study.task]
    base = bad.find(study.train.config, "train.config")
    # a base config not found here is checked where it is used; until then, the task's defaults
    task_default = ["task=classification"] if base is None and study.task == "tagging" else []
    no_budget = [f"budget.{k}=null" for k in ("steps", keys.data, "flops")]
    try:
        task = run_task(base, [*task_default, *study.train.overrides])
    except ConfigError as err:
        raise bad("train", str(err)) from err
    if task != keys.task:
        example = "tagger_cpu.yaml" if study.task == "tagging" else "quick_cpu.yaml"
        raise bad("train.config", f"{study.train.config} is a training config of task {task!r}; a {study.task} "
                  f"study needs one with task: {keys.task} (e.g. configs/train/{example})")
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
    if study.task == "tagging":
        from hepscale.study.tagging import check_tagging_inputs

        check_tagging_inputs(study, bad, cfg)


def _size_table(task: str) -> dict[str, Any]:
    """The size table of the task's models: GPT sizes (``models.yaml``) or tagger sizes (``taggers.yaml``)."""
    if task == "tagging":
        from hepscale.models.tagger_sizes import tagger_sizes

        return dict(tagger_sizes())
    from hepscale.models.sizes import model_sizes

    return dict(model_sizes())


def _validate_grid(study: StudyConfig, bad: _Checker) -> None:
    g = study.grid
    keys = TASK_KEYS[study.task]
    sizes = _size_table(study.task)
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
    from hepscale.study.tagging import check_grid_keys

    check_grid_keys(study, bad)
    budgets = [k for k in budget_keys(study.task) if getattr(g, k) is not None]
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
    if study.task == "generation" and e.enabled and e.samples < e.n:
        raise bad("evaluation.samples", f"must be >= evaluation.n ({e.n}) for the SWD resamples, got {e.samples}")
    if study.fit.fits:  # scipy and pandas: only for a study with fits
        from hepscale.study.fits import check_fits, expand_per, typed_fits

        study.fit.fits = typed_fits(study, bad)  # as written (args -> options), then expanded
        study.fit.fits = expand_per(study, bad)
        check_fits(study, bad, name_pattern=_NAME)
