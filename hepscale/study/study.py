"""Scaling studies: a YAML grid -> runs -> data, training, evaluation, runs table and fits.

::

    hepscale study plan    STUDY.yaml                      # the runs, their N, D, U, epochs, steps, C
    hepscale study run     STUDY.yaml --local [-j N]       # everything, here, resumable
    hepscale study condor  STUDY.yaml [--site S] [--submit] [--test]   # the same jobs as an HTCondor DAG
    hepscale study prepare STUDY.yaml                      # data only (generate -> process -> tokenize)
    hepscale study collect STUDY_DIR                       # runs table (parquet + CSV)

A study YAML (:class:`StudyConfig`, see ``configs/studies/``) names the data (the embedded
generator, existing ROOT files, or an existing jet dataset), a base training config with
shared overrides, a grid (model sizes with a learning rate per size; step, token, epoch or
compute budgets; unique-token budgets; seeds), and the evaluation and fit settings. Relative
paths in it are relative to the working directory.

The study folder (``output``)
-----------------------------
- ``study.yaml``: the resolved study (``output: .``, external paths made absolute),
  ``train.yaml``: a copy of the base training config, ``plan.json``: the expanded runs with
  their commands; every job command runs in this folder with paths relative to it;
- ``data/``: ``events/*.root`` (generated), ``jets/`` (processed), ``tokens-<hash>/`` and
  ``reference-<hash>.parquet`` (the held-out validation jets of the token split, the
  reference of the SWD). Each step is cached: it is skipped when its output exists and its
  stamp (``.hepscale-stamp.json``) records the same settings. The hash of the token folder
  comes from every setting upstream (generator, processor, tokenizer), so a run whose data
  changes gets a new run id;
- ``runs/<run_id>/``: one run each (``hepscale train``'s folder; ``run_id`` is
  :func:`hepscale.train.trainer.run_id` of its resolved config), with ``train.log``, ``sample.log``,
  ``evaluate.log`` and, after evaluation, ``samples.parquet`` and ``evaluation/``;
- ``runs.parquet``, ``runs.csv``: the runs table (:mod:`hepscale.runs.table`), restricted to the
  runs of ``plan.json``; ``summary.txt`` (one line per run: N, D, C, loss, SWD and floor);
  ``figures/swd_vs_N.{pdf,png}`` (SWD against N with the floor band);
  ``fits/<name>.json`` (+ figures): ``python -m hepscale.fit`` outputs;
- HTCondor files (``study condor``): ``study.dag``, ``KIND.sub``, ``KIND.queue.sub`` +
  ``KIND.queue.items``, ``hepscale_job.sh``, ``logs/``.

Inputs outside the study folder (``data.events``, ``data.jets``, ``data.reference``) are
referenced by absolute path in ``study.yaml``; HTCondor jobs reach them only on a shared
filesystem; or prepare the data on the access point (``hepscale study prepare``) and write
the DAG with ``study condor --no-prepare``.

One function, :func:`job_commands`, gives the ``hepscale`` arguments of every job; the local
executor runs them as ``python -m hepscale ARGS`` subprocesses in the study folder and the
HTCondor DAG runs them through ``condor/hepscale_job.sh``. Data preparation runs in-process
locally (the same :func:`prepare` that the ``study prepare`` job calls).

Finished means ``result.json`` exists (written last and atomically by the trainer), so an
interrupted study re-run continues where it stopped and never collects a half-written run.
A run that fails is retried up to ``retries`` times and reported with its log path.

Compute: ``C = 6 N B S n_steps`` with ``N`` non-embedding (as in ``result.json``'s
``flops``); the GPU-hour estimate of ``plan`` uses ``N`` including embeddings (the output
head is real work) and the assumed sustained throughput ``plan.sustained_flops``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepscale.config import ConfigError, load_config, to_dict
from hepscale.errors import HepscaleError

__all__ = [
    "StudyConfig",
    "StudyError",
    "Run",
    "PlanRow",
    "load_study",
    "expand_runs",
    "plan_rows",
    "format_plan",
    "job_commands",
    "prepare",
    "run_study",
    "collect",
    "summary_table",
    "plot_swd_vs_n",
    "write_condor",
    "main",
]

logger = logging.getLogger(__name__)

STAMP = ".hepscale-stamp.json"
#: trainer exit code after a checkpoint on request (SIGTERM): the run is interrupted, not failed
CHECKPOINT_EXIT_CODE = 85
#: columns that differ between two executions of the same run (wall-clock time)
TIMING_COLUMNS = ("elapsed_s",)


class StudyError(HepscaleError, RuntimeError):
    """A study cannot be planned, prepared, run or collected; the message says why."""


# ---------------------------------------------------------------------------- config
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
    process) or ``jets`` (an existing jet dataset). ``tokenizer``: fields of
    :class:`hepscale.tokens.tokenizer.TokenizerConfig`. ``reference``: jet dataset for the SWD
    (None: the validation jets of the token split)."""

    generate: GenerateSection | None = None
    events: list[str] = field(default_factory=list)
    jets: str | None = None
    process: ProcessSection = field(default_factory=ProcessSection)
    tokenizer: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None


@dataclass
class TrainSection:
    """Base training config (``configs/train/``) and ``key=value`` overrides shared by all runs."""

    config: str = "configs/train/quick_cpu.yaml"
    overrides: list[str] = field(default_factory=list)


@dataclass
class GridSection:
    """The runs: every combination of ``models`` x budgets x ``unique_tokens`` x ``seeds``.

    Budgets, exactly one of: ``steps``; ``tokens`` (D); ``epochs`` (D = epochs x U, needs
    ``unique_tokens``); ``flops`` (C, isoFLOP: every model at every budget). ``max_tokens``:
    grid points whose token budget D exceeds it are left out (e.g. many epochs only on the
    small sets). ``lr``: learning rate per model size (sizes not listed keep the base
    config's). ``model_overrides``: further ``key=value`` overrides per size (e.g. a batch size).
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


@dataclass
class EvaluationSection:
    """Per run: sample ``samples`` jets, SWD with ``bootstraps`` resamples of ``n`` jets
    (the floor needs 2 n reference jets), ``projections`` directions."""

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
    """One fit: ``python -m hepscale.fit runs.parquet --law LAW [--x X] ARGS`` -> ``fits/NAME.json``."""

    name: str = ""
    law: str = "log"
    x: str | None = None
    args: list[str] = field(default_factory=list)


@dataclass
class FitSection:
    """Fits run after collection (``n_bootstrap`` resamples, ``seed``)."""

    n_bootstrap: int = 200
    seed: int = 0
    fits: list[FitSpec] = field(default_factory=lambda: [
        FitSpec(name="loss_vs_N", law="log", x="N"),
        FitSpec(name="swd_vs_loss", law="proxy"),
    ])


@dataclass
class PlanSection:
    """Assumptions of ``study plan``: ``sustained_flops`` (FLOP/s per GPU actually reached) and
    ``mean_jet_tokens`` (tokens per jet, used until the token dataset exists)."""

    sustained_flops: float = 1.0e14
    mean_jet_tokens: float = 60.0


@dataclass
class StudyConfig:
    """A scaling study (YAML keys); see the module docstring and ``configs/studies/``."""

    name: str = ""
    description: str = ""
    output: str = ""
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    grid: GridSection = field(default_factory=GridSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    fit: FitSection = field(default_factory=FitSection)
    plan: PlanSection = field(default_factory=PlanSection)
    retries: int = 2

    @property
    def folder(self) -> Path:
        """The study folder (``output``, default ``hepscale-output/studies/<name>``)."""
        return Path(self.output or f"hepscale-output/studies/{self.name}")


def _validate(study: StudyConfig, source: str) -> None:
    import re

    from hepscale.events.pythia import PROCESSES
    from hepscale.models.sizes import model_sizes
    from hepscale.tokens.tokenizer import TokenizerConfig, TokenizerError

    def bad(where: str, what: str) -> ConfigError:
        return ConfigError(f"{source}: {where}: {what}")

    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", study.name):
        raise bad("name", f"expected a non-empty name of letters, digits and _.+-, got {study.name!r}")
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
    try:
        TokenizerConfig(**d.tokenizer)
    except (TypeError, TokenizerError) as err:
        raise bad("data.tokenizer", str(err)) from err
    if d.process.workers < 1 or d.process.chunksize < 1 or d.process.dask_jobs < 0:
        raise bad("data.process", "workers and chunksize must be >= 1, dask_jobs >= 0")
    g = study.grid
    sizes = model_sizes()
    if not g.models:
        raise bad("grid.models", "expected at least one model size")
    for i, m in enumerate(g.models):
        if m not in sizes:
            raise bad(f"grid.models[{i}]", f"{m!r} is not a size of models.yaml ({', '.join(sizes)})")
    for m, lr in g.lr.items():
        if m not in g.models:
            raise bad(f"grid.lr.{m}", f"{m!r} is not one of grid.models {g.models}")
        if not lr > 0:
            raise bad(f"grid.lr.{m}", f"expected a positive learning rate, got {lr}")
    for m in g.model_overrides:
        if m not in g.models:
            raise bad(f"grid.model_overrides.{m}", f"{m!r} is not one of grid.models {g.models}")
    budgets = [k for k in ("steps", "tokens", "epochs", "flops") if getattr(g, k) is not None]
    if len(budgets) != 1:
        raise bad("grid", "set exactly one of grid.steps, grid.tokens, grid.epochs, grid.flops; "
                  f"got {budgets or 'none'}")
    values = getattr(g, budgets[0])
    if not values or any(not v > 0 for v in values):
        raise bad(f"grid.{budgets[0]}", f"expected a non-empty list of positive values, got {values}")
    if not g.unique_tokens:
        raise bad("grid.unique_tokens", "expected a list (use [null] for all of train.bin)")
    if any(u is not None and u < 1 for u in g.unique_tokens):
        raise bad("grid.unique_tokens", f"expected positive token counts or null, got {g.unique_tokens}")
    if g.epochs is not None and None in g.unique_tokens:
        raise bad("grid.epochs", "epoch budgets need explicit grid.unique_tokens (D = epochs x U)")
    e = study.evaluation
    for name in ("samples", "n", "bootstraps", "projections", "batch"):
        if getattr(e, name) < 1:
            raise bad(f"evaluation.{name}", f"expected at least 1, got {getattr(e, name)}")
    if e.enabled and e.samples < e.n:
        raise bad("evaluation.samples", f"must be >= evaluation.n ({e.n}) for the SWD resamples, got {e.samples}")
    from hepscale.fit.analysis import ANALYSES

    names = set()
    for i, f in enumerate(study.fit.fits):
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", f.name) or f.name in names:
            raise bad(f"fit.fits[{i}].name", f"expected a unique name of letters, digits and _.+-, got {f.name!r}")
        names.add(f.name)
        if f.law not in ANALYSES:
            raise bad(f"fit.fits[{i}].law", f"expected one of {list(ANALYSES)}, got {f.law!r}")
        if f.x is not None and f.x not in ("N", "D", "C"):
            raise bad(f"fit.fits[{i}].x", f"expected N, D or C, got {f.x!r}")
    if study.retries < 0:
        raise bad("retries", f"expected >= 0, got {study.retries}")
    if not study.plan.sustained_flops > 0 or not study.plan.mean_jet_tokens > 0:
        raise bad("plan", "sustained_flops and mean_jet_tokens must be positive")


def load_study(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> StudyConfig:
    """Load and validate a study YAML (``key=value`` overrides applied last).

    Raises
    ------
    ConfigError
        Naming the file and the field that is wrong.
    """
    study = load_config(StudyConfig, path, overrides=list(overrides))
    _validate(study, str(path))
    return study


# ---------------------------------------------------------------------------- data identity
def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _file_identity(path: str) -> dict[str, Any]:
    # external inputs are identified by their path (a study can be planned before they exist);
    # use a new path or output folder when their contents change
    return {"path": str(Path(path).resolve())}


def _process_config(study: StudyConfig) -> dict[str, Any]:
    from hepscale.jets.config import JetProcessorConfig

    cfg = load_config(JetProcessorConfig, study.data.process.config)
    return to_dict(cfg)


def _generator_configs(study: StudyConfig) -> list[Any]:
    from hepscale.events.pythia import GeneratorConfig

    g = study.data.generate
    assert g is not None
    return [GeneratorConfig(process=p, events=g.events, seed=g.seed + i, pthat_min=g.pthat_min)
            for i, p in enumerate(g.processes)]


def _data_keys(study: StudyConfig) -> dict[str, str]:
    """Settings hashes of the data steps: ``jets`` (source + processing) and ``tokens``."""
    d = study.data
    if d.jets:
        jets_key = _hash({"jets": _file_identity(d.jets)})
    else:
        if d.generate is not None:
            source: Any = [dataclasses.asdict(c) for c in _generator_configs(study)]
        else:
            source = [_file_identity(f) for f in d.events]
        jets_key = _hash({"source": source, "process": _process_config(study), "chunksize": d.process.chunksize})
    from hepscale.tokens.tokenizer import TokenizerConfig

    tokens_key = _hash({"jets": jets_key, "tokenizer": to_dict(TokenizerConfig(**d.tokenizer))})
    return {"jets": jets_key, "tokens": tokens_key}


def data_paths(study: StudyConfig) -> dict[str, str]:
    """Paths (relative to the study folder, or absolute for external inputs) of the data."""
    keys = _data_keys(study)
    d = study.data
    return {
        "jets": str(Path(d.jets).resolve()) if d.jets else "data/jets/jets.parquet",
        "tokens": f"data/tokens-{keys['tokens']}",
        "reference": str(Path(d.reference).resolve()) if d.reference else f"data/reference-{keys['tokens']}.parquet",
    }


# ---------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Run:
    """One run of the grid: its id, model size and the ``key=value`` overrides of the base config."""

    run_id: str
    model: str
    overrides: tuple[str, ...]
    config: Any = field(compare=False, repr=False)

    @property
    def folder(self) -> str:
        """Run folder relative to the study folder."""
        return f"runs/{self.run_id}"


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def expand_runs(study: StudyConfig, *, train_config: str | os.PathLike[str] | None = None) -> list[Run]:
    """The runs of the grid, in grid order (models outermost), duplicates removed.

    Parameters
    ----------
    train_config
        Path of the base training config (default ``study.train.config``).

    Raises
    ------
    ConfigError
        When an override does not fit the training config (the message names the run).
    """
    from hepscale.train.config import load_run_config, run_id

    g = study.grid
    base = train_config if train_config is not None else study.train.config
    tokens = data_paths(study)["tokens"]
    budget_key, budgets = next((k, getattr(g, k)) for k in ("steps", "tokens", "epochs", "flops")
                               if getattr(g, k) is not None)
    seeds: list[int | None] = list(g.seeds) or [None]
    runs: list[Run] = []
    seen: set[str] = set()
    for model in g.models:
        for budget in budgets:
            for unique in g.unique_tokens:
                for seed in seeds:
                    ov = [*study.train.overrides, f"model.size={model}", f"data.tokens={tokens}"]
                    if model in g.lr:
                        ov.append(f"optim.lr={_fmt(float(g.lr[model]))}")
                    ov += list(g.model_overrides.get(model, []))
                    ov.append(f"data.unique_tokens={'null' if unique is None else int(unique)}")
                    if budget_key == "epochs":
                        assert unique is not None
                        key, value = "tokens", str(int(round(budget * unique)))
                    elif budget_key == "flops":
                        key, value = "flops", _fmt(float(budget))
                    else:
                        key, value = budget_key, str(int(budget))
                    if g.max_tokens is not None and key == "tokens" and int(value) > g.max_tokens:
                        continue
                    ov += [f"budget.{k}=null" for k in ("steps", "tokens", "flops") if k != key]
                    ov.append(f"budget.{key}={value}")
                    if seed is not None:
                        ov.append(f"seed={int(seed)}")
                    try:
                        cfg = load_run_config(base, ov)
                    except ConfigError as err:
                        raise ConfigError(f"study {study.name}, run {model} / {budget_key}={budget}: {err}") from err
                    rid = run_id(cfg)
                    if rid in seen:
                        logger.warning("grid point %s / %s=%s repeats run %s; kept once", model, budget_key, budget,
                                       rid)
                        continue
                    seen.add(rid)
                    runs.append(Run(rid, model, tuple(ov), cfg))
    if not runs:
        raise ConfigError(f"study {study.name}: grid.max_tokens={g.max_tokens} leaves no run of the grid")
    return runs


# ---------------------------------------------------------------------------- commands
def job_commands(study: StudyConfig, runs: Sequence[Run]) -> dict[str, list[tuple[str, list[str]]]]:
    """The ``hepscale`` arguments of every job, by kind, as ``(job id, args)``.

    Arguments are relative to the study folder. Kinds: ``prepare``, ``train``, ``sample``,
    ``evaluate`` (with evaluation enabled), ``collect`` and ``fit``. The local executor and the
    HTCondor DAG both run exactly these.
    """
    paths = data_paths(study)
    e = study.evaluation
    out: dict[str, list[tuple[str, list[str]]]] = {
        "prepare": [("prepare", ["study", "prepare", "study.yaml"])],
        "train": [(r.run_id, ["train", "train.yaml", *r.overrides, "--output", r.folder, "--resume"]) for r in runs],
    }
    if e.enabled:
        out["sample"] = [(r.run_id, ["sample", r.folder, "--n", str(e.samples), "--output",
                                     f"{r.folder}/samples.parquet", "--seed", str(e.seed), "--batch", str(e.batch)])
                         for r in runs]
        out["evaluate"] = [(r.run_id, ["evaluate", r.folder, "--reference", paths["reference"], "--n", str(e.n),
                                       "--bootstraps", str(e.bootstraps), "--projections", str(e.projections),
                                       "--seed", str(e.seed)] + ([] if e.floor else ["--no-floor"])
                            + ([] if e.figures else ["--no-figures"])) for r in runs]
    out["collect"] = [("collect", ["study", "collect", "."])]
    out["fit"] = [(f.name, ["fit", "runs.parquet", "--law", f.law, *(["--x", f.x] if f.x else []),
                            "--n-bootstrap", str(study.fit.n_bootstrap), "--seed", str(study.fit.seed),
                            "--output", f"fits/{f.name}.json", "--format", "none", "--no-progress", *f.args])
                  for f in study.fit.fits if e.enabled or f.law != "proxy"]
    return out


# ---------------------------------------------------------------------------- plan
@dataclass
class PlanRow:
    """One run in the plan: N (non-embedding and total), D, U (None: all of train.bin, unknown
    before the data exists), epochs, steps, C = 6 N_ne B S steps."""

    run_id: str
    model: str
    n_params: int
    n_params_total: int
    tokens: float
    unique_tokens: float | None
    epochs: float | None
    steps: int
    flops: float
    flops_total: float
    lr: float
    seed: int


def _token_lengths(folder: Path, seq_len: int) -> Any:
    import numpy as np

    offsets = folder / "train_offsets.npy"
    if not offsets.is_file():
        return None
    return np.minimum(np.diff(np.load(offsets, allow_pickle=False)), seq_len + 1)


def plan_rows(
    study: StudyConfig, runs: Sequence[Run], *, study_dir: str | os.PathLike[str] | None = None
) -> list[PlanRow]:
    """N, D, U, epochs, steps and C of every run, from the token dataset when it exists in
    ``study_dir`` (else with ``plan.mean_jet_tokens`` tokens per jet)."""
    import numpy as np

    from hepscale.models.sizes import (
        n_params_non_embedding,
        n_params_total,
        size_config,
    )
    from hepscale.tokens.tokenizer import Tokenizer, TokenizerConfig

    vocab = Tokenizer(TokenizerConfig(**study.data.tokenizer)).vocab_size
    folder = Path(study_dir if study_dir is not None else study.folder) / data_paths(study)["tokens"]
    rows = []
    for run in runs:
        cfg = run.config
        S, B = cfg.data.seq_len, cfg.data.batch_size
        m = size_config(cfg.model.size, vocab_size=vocab, block_size=S, pos_emb=cfg.model.pos_emb,
                        bias=cfg.model.bias, tie_embeddings=cfg.model.tie_embeddings)
        n_ne, n_tot = n_params_non_embedding(m), n_params_total(m)
        lengths = _token_lengths(folder, S)
        unique: float | None
        if lengths is not None and len(lengths):
            n_sub = len(lengths) if cfg.data.unique_tokens is None else max(
                1, int(np.searchsorted(np.cumsum(lengths), cfg.data.unique_tokens, side="right")))
            mean_len = float(lengths[:n_sub].mean())
            unique = float(lengths[:n_sub].sum())
        else:
            mean_len = study.plan.mean_jet_tokens
            unique = None if cfg.data.unique_tokens is None else float(cfg.data.unique_tokens)
        b = cfg.budget
        if b.steps is not None:
            steps = int(b.steps)
        elif b.tokens is not None:
            steps = math.ceil(b.tokens / (B * mean_len))
        else:
            steps = math.ceil(b.flops / (6.0 * n_ne * B * S))
        tokens = float(b.tokens) if b.tokens is not None else steps * B * mean_len
        rows.append(PlanRow(run.run_id, run.model, n_ne, n_tot, tokens, unique, tokens / unique if unique else None,
                            steps, 6.0 * n_ne * B * S * steps, 6.0 * n_tot * B * S * steps, cfg.optim.lr, cfg.seed))
    return rows


def _num(x: float | None) -> str:
    return "all" if x is None else f"{x:.3g}"


def _epochs(x: float | None) -> str:
    return "?" if x is None else f"{x:.3g}"


def format_plan(study: StudyConfig, rows: Sequence[PlanRow]) -> str:
    """The plan table with total compute and a GPU-hour estimate."""
    header = (f"{'run_id':<16}  {'model':<5} {'N':>9} {'D':>9} {'U':>9} {'epochs':>7} {'steps':>8} {'C':>9} "
              f"{'lr':>8} seed")
    lines = [f"study {study.name}: {len(rows)} runs -> {study.folder}", header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.run_id:<16}  {r.model:<5} {r.n_params:>9.3g} {r.tokens:>9.3g} {_num(r.unique_tokens):>9} "
                     f"{_epochs(r.epochs):>7} {r.steps:>8d} {r.flops:>9.3g} {r.lr:>8.2g} {r.seed}")
    total = sum(r.flops for r in rows)
    total_incl = sum(r.flops_total for r in rows)
    hours = total_incl / study.plan.sustained_flops / 3600.0
    lines += [
        "-" * len(header),
        "N: non-embedding parameters; D: tokens seen; U: unique tokens ('all': all of train.bin); "
        "C = 6 N B S steps (FLOPs, N non-embedding)",
        f"total compute {total:.3g} FLOPs (N non-embedding), {total_incl:.3g} FLOPs with embeddings and output head",
        f"estimate {hours:.3g} GPU-hours at an assumed sustained {study.plan.sustained_flops:.3g} FLOP/s "
        "(plan.sustained_flops), from the compute with embeddings",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- study folder
def _write_if_changed(path: Path, text: str) -> None:
    from hepscale._io import atomic_write_text

    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def write_study_files(study: StudyConfig, study_dir: Path, runs: Sequence[Run]) -> None:
    """``study.yaml`` (resolved, ``output: .``), ``train.yaml`` and ``plan.json`` in the study folder."""
    import yaml

    from hepscale._io import atomic_write_json
    from hepscale._version import code_version

    study_dir.mkdir(parents=True, exist_ok=True)
    src = Path(study.train.config)
    if not src.is_file():
        raise ConfigError(f"study {study.name}: train.config: {src} does not exist")
    _write_if_changed(study_dir / "train.yaml", src.read_text(encoding="utf-8"))
    copy = to_dict(study)
    copy["output"] = "."
    copy["train"]["config"] = "train.yaml"
    d = copy["data"]
    d["events"] = [str(Path(p).resolve()) for p in d["events"]]
    for key in ("jets", "reference"):
        if d[key]:
            d[key] = str(Path(d[key]).resolve())
    if d["process"]["config"]:
        d["process"]["config"] = str(Path(d["process"]["config"]).resolve())
    if d["process"]["site"] and Path(d["process"]["site"]).suffix:
        d["process"]["site"] = str(Path(d["process"]["site"]).resolve())
    header = f"# resolved copy of study {study.name}; jobs run in this folder (written by hepscale study)\n"
    _write_if_changed(study_dir / "study.yaml", header + yaml.safe_dump(copy, sort_keys=False))
    plan = {
        "study": study.name,
        "code_version": dict(code_version()),
        "data": data_paths(study),
        "runs": [{"run_id": r.run_id, "model": r.model, "overrides": list(r.overrides), "folder": r.folder}
                 for r in runs],
    }
    old = json.loads((study_dir / "plan.json").read_text()) if (study_dir / "plan.json").is_file() else None
    if old != plan:
        atomic_write_json(study_dir / "plan.json", plan)


# ---------------------------------------------------------------------------- prepare
def _stamp_ok(folder: Path, key: str, output: Path) -> bool:
    stamp = folder / STAMP
    if not output.exists() or not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text(encoding="utf-8")).get("key") == key
    except json.JSONDecodeError:
        return False


def _write_stamp(folder: Path, key: str, settings: Mapping[str, Any]) -> None:
    from hepscale._io import atomic_write_json
    from hepscale._version import code_version

    atomic_write_json(folder / STAMP, {"key": key, "settings": dict(settings), "code_version": dict(code_version())})


def _generated_ok(path: Path, config: Any) -> bool:
    from hepscale.events.pythia import already_generated

    return already_generated(path, config)


def _dask_client(study: StudyConfig) -> Any:
    """A context manager yielding a dask client as ``data.process`` asks (local, address, HTCondor)."""
    from hepscale.jets.cluster import dask_client

    p = study.data.process
    return dask_client(workers=p.workers, scheduler=p.scheduler, site=p.site, jobs=p.dask_jobs)


def _validation_jets(jets_path: str, tokens_dir: Path) -> Any:
    """The jets of the validation split of ``tokens_dir``, checked token by token against ``val.bin``."""
    import numpy as np

    from hepscale.jets.dataset import read_jets
    from hepscale.tokens.tokenizer import Tokenizer, load_tokens

    val, tok = load_tokens(tokens_dir, "val")
    info = json.loads((tokens_dir / "tokenizer.json").read_text(encoding="utf-8"))
    cfg = tok.config
    jets = read_jets(jets_path)
    n = len(jets)
    if n != info["n_train_jets"] + info["n_val_jets"]:
        raise StudyError(f"{jets_path} holds {n} jets, the token split of {tokens_dir} "
                         f"{info['n_train_jets']} + {info['n_val_jets']}; re-run the preparation")
    rng = np.random.default_rng(cfg.split_seed)
    is_val = np.zeros(n, dtype=bool)
    is_val[rng.permutation(n)[: int(round(cfg.val_fraction * n))]] = True
    ref = jets[is_val]
    tokens, offsets = Tokenizer(cfg).encode_jets(ref)
    if not (np.array_equal(offsets, val.offsets) and np.array_equal(np.asarray(tokens), np.asarray(val.tokens))):
        raise StudyError(f"the validation jets of {jets_path} do not reproduce {tokens_dir}/val.bin")
    return ref


def prepare(study: StudyConfig, study_dir: str | os.PathLike[str], *, jobs: int = 2, client: Any = None,
            progress: bool = False, processor_factory: Any = None) -> dict[str, str]:
    """Generate, process and tokenize the data of a study (each step cached), and write the reference.

    Parameters
    ----------
    study_dir
        The study folder; outputs go to its ``data/``.
    jobs
        Generator processes.
    client
        An existing ``dask.distributed.Client`` for the processing (else from ``data.process``).
    processor_factory
        Makes the coffea processor from a :class:`hepscale.jets.config.JetProcessorConfig`
        (``processors.jets.JetProcessor``; the command layer passes it). Needed when events
        are processed.

    Returns
    -------
    dict
        ``jets``, ``tokens`` and ``reference`` paths (relative to ``study_dir`` or absolute).
    """
    from hepscale.events.pythia import generate
    from hepscale.jets.config import JetProcessorConfig
    from hepscale.jets.dataset import write_jets
    from hepscale.jets.processing import process_files
    from hepscale.tokens.tokenizer import TokenizerConfig, tokenize_dataset

    root = Path(study_dir)
    paths = data_paths(study)
    keys = _data_keys(study)
    d = study.data
    if not d.jets:
        jets_dir = root / "data" / "jets"
        if _stamp_ok(jets_dir, keys["jets"], jets_dir / "jets.parquet"):
            logger.info("jets: up to date (%s)", jets_dir)
        else:
            if d.generate is not None:
                inputs = []
                for cfg in _generator_configs(study):
                    path = root / "data" / "events" / f"{cfg.process}.root"
                    if _generated_ok(path, cfg):
                        logger.info("events: reusing %s", path)
                    else:
                        generate(cfg, path, jobs=jobs, progress=progress)
                    inputs.append(path)
            else:
                inputs = [Path(p) for p in d.events]
                missing = [str(p) for p in inputs if not p.is_file()]
                if missing:
                    raise StudyError(f"study {study.name}: data.events: file(s) {', '.join(missing)} do not exist")
            if processor_factory is None:
                raise StudyError(f"study {study.name}: processing the events needs a processor (processor_factory)")
            pcfg = load_config(JetProcessorConfig, d.process.config)
            ctx = contextlib.nullcontext(client) if client is not None else _dask_client(study)
            with ctx as cl:
                process_files(inputs, jets_dir, processor=processor_factory(pcfg), client=cl, chunksize=d.process.chunksize,
                              progress=progress)
            _write_stamp(jets_dir, keys["jets"], {"inputs": [str(p) for p in inputs], "process": to_dict(pcfg)})
    jets_path = paths["jets"] if d.jets else str(root / paths["jets"])
    if not Path(jets_path).exists():
        raise StudyError(f"study {study.name}: data.jets: {jets_path} does not exist")
    tokens_dir = root / paths["tokens"]
    if _stamp_ok(tokens_dir, keys["tokens"], tokens_dir / "tokenizer.json"):
        logger.info("tokens: up to date (%s)", tokens_dir)
    else:
        tokenize_dataset(jets_path, tokens_dir, config=TokenizerConfig(**d.tokenizer))
        _write_stamp(tokens_dir, keys["tokens"], {"jets": jets_path, "tokenizer": dict(d.tokenizer)})
    if not d.reference:
        ref_path = root / paths["reference"]
        if not ref_path.is_file():
            ref = _validation_jets(jets_path, tokens_dir)
            write_jets(ref_path, ref, metadata={"kind": "reference", "source": jets_path,
                                                "tokens": paths["tokens"], "split": "val"})
            logger.info("reference: %d validation jets -> %s", len(ref), ref_path)
    return paths


# ---------------------------------------------------------------------------- local executor
@dataclass
class _Task:
    kind: str
    job_id: str
    args: list[str]
    log: str


class _Executor:
    """Runs ``python -m hepscale ARGS`` subprocesses in the study folder; SIGTERM to all on interrupt."""

    def __init__(self, root: Path, *, threads: int | None) -> None:
        self.root = root
        self.threads = threads
        self.live: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self, task: _Task, attempt: int) -> int:
        if self.stopping.is_set():
            return CHECKPOINT_EXIT_CODE
        log = self.root / task.log
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.threads:
            env.setdefault("OMP_NUM_THREADS", str(self.threads))
        with open(log, "a", encoding="utf-8") as handle:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            handle.write(f"# attempt {attempt} at {stamp}: hepscale {' '.join(task.args)}\n")
            handle.flush()
            proc = subprocess.Popen([sys.executable, "-m", "hepscale", *task.args], cwd=self.root, stdout=handle,
                                    stderr=subprocess.STDOUT, env=env)
            with self.lock:
                self.live.add(proc)
            try:
                rc = proc.wait()
            finally:
                with self.lock:
                    self.live.discard(proc)
            handle.write(f"# exit status {rc}\n")
        return rc

    def terminate(self) -> None:
        self.stopping.set()
        with self.lock:
            procs = list(self.live)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()


def _sampled(run_dir: Path, study: StudyConfig) -> bool:
    from hepscale.jets.dataset import DatasetError, read_metadata

    path = run_dir / "samples.parquet"
    if not path.is_file():
        return False
    try:
        meta = read_metadata(path)
    except (DatasetError, OSError, ValueError):
        return False
    return meta.get("n") == study.evaluation.samples and meta.get("seed") == study.evaluation.seed


def _evaluated(run_dir: Path, study: StudyConfig) -> bool:
    try:
        result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    swd = result.get("evaluation", {}).get("swd", {})
    e = study.evaluation
    return swd.get("n_jets") == e.n and swd.get("n_bootstraps") == e.bootstraps


#: exit statuses of a step stopped from outside: checkpointed on SIGTERM, or ended by SIGINT/SIGTERM
#: (a Ctrl-C on the terminal reaches the whole process group before the study stops it)
_INTERRUPTED = (CHECKPOINT_EXIT_CODE, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM)


def _run_pipeline(ex: _Executor, study: StudyConfig, tasks: Sequence[_Task], retries: int) -> dict[str, Any]:
    """Train, sample and evaluate one run, each step skipped when done and retried on failure."""
    root = ex.root
    resampled = False
    for task in tasks:
        run_dir = root / "runs" / task.job_id
        if task.kind == "train" and (run_dir / "result.json").is_file():
            continue
        if task.kind == "sample" and _sampled(run_dir, study):
            continue
        if task.kind == "evaluate" and not resampled and _evaluated(run_dir, study):
            continue
        resampled = resampled or task.kind == "sample"
        for attempt in range(1, retries + 2):
            rc = ex.run(task, attempt)
            if rc == 0:
                break
            if rc in _INTERRUPTED or ex.stopping.is_set():
                return {"status": "interrupted", "kind": task.kind, "log": str(root / task.log)}
            logger.warning("%s %s failed (exit status %d, attempt %d of %d); log: %s", task.kind, task.job_id, rc,
                           attempt, retries + 1, root / task.log)
        else:
            return {"status": "failed", "kind": task.kind, "exit": rc, "log": str(root / task.log)}
    return {"status": "done"}


def collect(study_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the runs table of a study folder as ``runs.parquet`` and ``runs.csv`` (atomically).

    Only runs of the folder's ``plan.json`` are collected (all runs under ``runs/`` without
    one); a run counts when its ``result.json`` exists. Returns the paths and the row count.
    """
    from hepscale._io import atomic_path
    from hepscale.runs.table import gather_runs

    root = Path(study_dir)
    if not (root / "runs").is_dir():
        raise StudyError(f"study folder {root} has no runs/ folder (nothing has run yet)")
    table = gather_runs(root, pattern="runs/*/result.json")
    plan = root / "plan.json"
    if plan.is_file():
        ids = [r["run_id"] for r in json.loads(plan.read_text(encoding="utf-8"))["runs"]]
        table = table[table["run_id"].isin(ids)].reset_index(drop=True)
        if table.empty:
            raise StudyError(f"no finished run of {plan} under {root}/runs")
    with atomic_path(root / "runs.parquet", suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(root / "runs.csv", suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    return {"parquet": str(root / "runs.parquet"), "csv": str(root / "runs.csv"), "rows": len(table)}


def summary_table(table: Any) -> str:
    """One line per run: model, N, D, epochs, C, final validation loss and SWD (with floor) when evaluated."""
    has_swd = "evaluation.swd.mean" in table.columns
    header = f"{'model':<5} {'N':>9} {'D':>9} {'epochs':>7} {'C':>9} {'val loss':>9}"
    if has_swd:
        header += f" {'SWD':>19} {'SWD floor':>19}"
    lines = [header, "-" * len(header)]
    for _, row in table.sort_values(["n_params_non_embedding", "tokens_seen"]).iterrows():
        line = (f"{row['model']:<5} {row['n_params_non_embedding']:>9.3g} {row['tokens_seen']:>9.3g} "
                f"{row['epochs']:>7.3g} {row['flops']:>9.3g} {row['final_val_loss']:>9.4f}")
        if has_swd:
            mean, std = row.get("evaluation.swd.mean"), row.get("evaluation.swd.std")
            fmean, fstd = row.get("evaluation.swd.floor_mean"), row.get("evaluation.swd.floor_std")
            line += f" {_pm(mean, std):>19} {_pm(fmean, fstd):>19}"
        lines.append(line)
    lines.append("N: non-embedding parameters; D: tokens seen; C: FLOPs (6 N B S steps); SWD: bootstrap mean +- std")
    return "\n".join(lines)


def _pm(mean: Any, std: Any) -> str:
    try:
        if mean is None or not math.isfinite(float(mean)):
            return "-"
        return f"{float(mean):.4g} +- {float(std):.2g}"
    except (TypeError, ValueError):
        return "-"


def plot_swd_vs_n(table: Any, path: str | os.PathLike[str], *, label: str = "Simulation") -> list[Path]:
    """SWD (bootstrap mean +- std) against non-embedding parameters N, with the SWD floor as a band.

    Returns the files written (PDF and PNG).
    """
    import numpy as np

    from hepscale.plotting.style import cms_label, cms_style, save_figure

    if "evaluation.swd.mean" not in table.columns:
        raise StudyError("the runs table has no evaluation.swd.mean column (no run was evaluated)")
    t = table.dropna(subset=["evaluation.swd.mean"]).sort_values("n_params_non_embedding")
    n = t["n_params_non_embedding"].to_numpy(dtype=float)
    with cms_style():
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 8))
        ax.errorbar(n, t["evaluation.swd.mean"], yerr=t["evaluation.swd.std"], fmt="o", color="black",
                    label="generated vs real")
        if "evaluation.swd.floor_mean" in t.columns and t["evaluation.swd.floor_mean"].notna().any():
            fm = float(np.nanmean(t["evaluation.swd.floor_mean"].to_numpy(dtype=float)))
            fs = float(np.nanmean(t["evaluation.swd.floor_std"].to_numpy(dtype=float)))
            lo, hi = n.min() / 1.5, n.max() * 1.5
            ax.fill_between([lo, hi], fm - fs, fm + fs, color="tab:blue", alpha=0.3, label="SWD floor (real vs real)")
            ax.axhline(fm, color="tab:blue", lw=1)
            ax.set_xlim(lo, hi)
        ax.set_xscale("log")
        ax.set_xlabel("Non-embedding parameters N")
        ax.set_ylabel("Sliced Wasserstein distance")
        ax.legend()
        cms_label(ax, label=label)
        return save_figure(fig, path)


def _study_outputs(root: Path) -> dict[str, Any]:
    """Summary table (``summary.txt``) and ``figures/swd_vs_N`` of a collected study."""
    import pandas as pd

    from hepscale._io import atomic_write_text

    table = pd.read_parquet(root / "runs.parquet")
    text = summary_table(table)
    atomic_write_text(root / "summary.txt", text + "\n")
    out: dict[str, Any] = {"summary": text, "summary_file": str(root / "summary.txt"), "figures": []}
    if "evaluation.swd.mean" in table.columns:
        out["figures"] = [str(f) for f in plot_swd_vs_n(table, root / "figures" / "swd_vs_N")]
    return out


def run_study(
    study_path_or_config: str | os.PathLike[str] | StudyConfig,
    *,
    jobs: int = 1,
    progress: bool = True,
    output: str | os.PathLike[str] | None = None,
    retries: int | None = None,
    client: Any = None,
    fits: bool = True,
    processor_factory: Any = None,
) -> dict[str, Any]:
    """Run a study here: prepare, train/sample/evaluate every pending run, collect, fit.

    Parameters
    ----------
    study_path_or_config
        Study YAML or a loaded :class:`StudyConfig`.
    jobs
        Runs at once; each subprocess gets ``OMP_NUM_THREADS = cpu_count // jobs`` unless the
        variable is set (the thread count can change the last bits of a CPU run).
    progress
        Show progress bars.
    output
        Study folder (default: the study's ``output``).
    retries
        Retries of a failed step (default: the study's ``retries``).
    client
        A dask client for the processing step.
    fits
        Run the fits after collection.
    processor_factory
        Makes the coffea processor (see :func:`prepare`).

    Returns
    -------
    dict
        ``study_dir``, ``runs`` (count), ``done``, ``failed`` (list of ``{run_id, kind, log}``),
        ``interrupted``, ``table`` (paths, or None), ``fits`` (name -> JSON path or error),
        ``summary`` (text of ``summary.txt``), ``figures`` (``figures/swd_vs_N``), ``seconds``.
    """
    t0 = time.perf_counter()
    study = study_path_or_config if isinstance(study_path_or_config, StudyConfig) else load_study(study_path_or_config)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    root = Path(output) if output is not None else study.folder
    runs = expand_runs(study)
    write_study_files(study, root, runs)
    with _folder_lock(root):
        return _run_locked(study, root, runs, jobs=jobs, progress=progress, retries=retries, client=client,
                           processor_factory=processor_factory,
                           fits=fits, t0=t0)


@contextlib.contextmanager
def _folder_lock(root: Path) -> Iterator[None]:
    """One ``study run`` per study folder at a time (an advisory lock on ``.hepscale-lock``)."""
    import fcntl

    with open(root / ".hepscale-lock", "w", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise StudyError(f"another 'hepscale study run' is using {root} (lock {root / '.hepscale-lock'})") from err
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_locked(study: StudyConfig, root: Path, runs: Sequence[Run], *, jobs: int, progress: bool,
                retries: int | None, client: Any, fits: bool, t0: float, processor_factory: Any) -> dict[str, Any]:
    from tqdm.auto import tqdm

    logger.info("study %s: %d runs in %s", study.name, len(runs), root)
    prepare(study, root, jobs=max(jobs, 2), client=client, progress=progress, processor_factory=processor_factory)
    commands = job_commands(study, runs)
    per_run: dict[str, list[_Task]] = {r.run_id: [] for r in runs}
    for kind in ("train", "sample", "evaluate"):
        for job_id, args in commands.get(kind, []):
            per_run[job_id].append(_Task(kind, job_id, args, f"runs/{job_id}/{kind}.log"))
    ex = _Executor(root, threads=max(1, (os.cpu_count() or 1) // jobs))
    n_retry = study.retries if retries is None else retries
    outcome: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(runs), desc=f"study {study.name}", unit="run", disable=not progress)
    pool = cf.ThreadPoolExecutor(max_workers=jobs)
    futures = {pool.submit(_run_pipeline, ex, study, per_run[r.run_id], n_retry): r.run_id for r in runs}
    try:
        for fut in cf.as_completed(futures):
            outcome[futures[fut]] = fut.result()
            bar.update(1)
    except BaseException:
        ex.terminate()
        for f in futures:
            f.cancel()
        raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
    failed = [{"run_id": rid, "kind": o["kind"], "log": o["log"]} for rid, o in outcome.items()
              if o["status"] == "failed"]
    interrupted = [rid for rid, o in outcome.items() if o["status"] == "interrupted"]
    for f in failed:
        logger.error("run %s: %s failed after %d attempt(s); log: %s", f["run_id"], f["kind"], n_retry + 1, f["log"])
    table = None
    outputs: dict[str, Any] = {}
    fit_out: dict[str, str] = {}
    if any((root / r.folder / "result.json").is_file() for r in runs):
        table = collect(root)
        try:
            outputs = _study_outputs(root)
        except (StudyError, ValueError, KeyError) as err:  # a figure is not worth failing the study for
            logger.warning("summary/figures of %s: %s", root, err)
            outputs = {}
        if fits and not interrupted:
            for name, args in commands["fit"]:
                log = f"fits/{name}.log"
                rc = ex.run(_Task("fit", name, args, log), 1)
                fit_out[name] = str(root / "fits" / f"{name}.json") if rc == 0 else (
                    f"failed (exit {rc}), log {root / log}")
                if rc:
                    logger.warning("fit %s failed (exit status %d); log: %s", name, rc, root / log)
    return {"study_dir": str(root), "runs": len(runs), "done": sum(o["status"] == "done" for o in outcome.values()),
            "failed": failed, "interrupted": interrupted, "table": table, "fits": fit_out,
            "summary": outputs.get("summary"), "figures": outputs.get("figures", []),
            "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------- HTCondor
def write_condor(
    study: StudyConfig,
    study_dir: str | os.PathLike[str],
    *,
    site: str | os.PathLike[str] | None = None,
    test: bool = False,
    prepare_node: bool = True,
    runs: Sequence[Run] | None = None,
) -> dict[str, Any]:
    """Write the study's HTCondor files into the study folder, checked with ``htcondor2``.

    Written: ``study.dag`` (prepare -> train -> sample -> evaluate -> collect -> fit, one node
    per job with ``RETRY``), the node descriptions ``KIND.sub``, for each kind a standalone
    ``KIND.queue.sub`` with ``queue job_id, args from KIND.queue.items``, the wrapper
    ``hepscale_job.sh`` and ``logs/``. Training jobs declare ``checkpoint_exit_code`` and
    transfer their run folder on eviction; resources, container image and accounting group
    come from the site profile. Files keep their paths relative to the study folder
    (``preserve_relative_paths``), so the jobs run the commands of :func:`job_commands`.
    Collection and fits read only small files of the study folder and run in the local
    universe (on the access point, in the study folder).

    Parameters
    ----------
    test
        Only two training runs (and their evaluation).
    prepare_node
        Start the DAG with the data preparation job (False: the data is in the study folder
        already, e.g. from ``hepscale study prepare`` on the access point).

    Returns
    -------
    dict
        ``dag`` (path), ``submit`` (kind -> queue submit file), ``jobs`` (kind -> count).
    """
    from hepscale.condor import (
        Job,
        load_site,
        submit_description,
        write_dag,
        write_queue_file,
    )

    root = Path(study_dir)
    profile = load_site(site)
    runs = list(runs) if runs is not None else expand_runs(study)
    write_study_files(study, root, runs)
    if test:
        runs = runs[:2]
    commands = job_commands(study, runs)
    paths = data_paths(study)
    d = study.data
    external = [*d.events, *([d.jets] if d.jets else []), *([d.process.config] if d.process.config else [])]
    inputs: dict[str, list[str]] = {
        "prepare": ["study.yaml", "train.yaml", *[str(Path(p).resolve()) for p in external]],
        "train": ["train.yaml", paths["tokens"]],
        "sample": ["runs/$(job_id)"],
        "evaluate": ["runs/$(job_id)/samples.parquet", "runs/$(job_id)/result.json", paths["reference"]],
    }
    outputs = {"prepare": "data", "sample": "runs/$(job_id)/samples.parquet",
               "evaluate": "runs/$(job_id)/result.json" + (", runs/$(job_id)/evaluation"
                                                          if study.evaluation.figures else "")}
    stages = []
    submit_files = {}
    previous = None
    for kind, items in commands.items():
        desc = submit_description(kind, profile, training=kind == "train", transfer_input=inputs.get(kind, ()),
                                  checkpoint_dir="runs/$(job_id)" if kind == "train" else None)
        desc["preserve_relative_paths"] = "True"
        if kind in ("collect", "fit"):  # small inputs in the study folder: run on the access point
            desc["universe"] = "local"
            for key in ("should_transfer_files", "when_to_transfer_output", "request_gpus", "container_image"):
                desc.pop(key, None)
        if kind != "train":
            desc["max_retries"] = str(profile.light.max_retries)
        if kind in outputs:
            desc["transfer_output_files"] = outputs[kind]
        jobs = [Job(job_id, tuple(args)) for job_id, args in items]
        if not jobs or (kind == "prepare" and not prepare_node):
            continue
        edge = "one-to-one" if kind in ("sample", "evaluate") and previous in ("train", "sample") else "all"
        stages.append((kind, desc, jobs, edge))
        submit_files[kind] = str(write_queue_file(root, f"{kind}.queue", desc, jobs))
        previous = kind
    if not prepare_node and not (root / paths["tokens"] / "tokenizer.json").is_file():
        logger.warning("no prepare node, and %s does not exist yet: run 'hepscale study prepare' first",
                       root / paths["tokens"])
    dag = write_dag(root, stages, dag_name="study.dag")
    return {"dag": str(dag), "submit": submit_files, "jobs": {k: len(j) for k, _, j, _ in stages}}


# ---------------------------------------------------------------------------- command line
def _study_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="study YAML (see configs/studies/)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides of the study, e.g. grid.models=[Pico]")
    parser.add_argument("--output", type=Path, default=None, help="study folder (default: the study's output)")


COMMAND_HELP = {
    "plan": "expand the grid and print the runs with N, D, U, epochs, steps, C",
    "run": "run the study here (resumable)",
    "condor": "write (and with --submit, submit) the study as an HTCondor DAG",
    "prepare": "generate, process and tokenize the study's data (cached)",
    "collect": "write the runs table of a study folder (runs.parquet, runs.csv)",
}


def _parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"hepscale study {command}", description=COMMAND_HELP[command])
    if command == "collect":
        p.add_argument("study_dir", type=Path, help="study folder")
        return p
    _study_arg(p)
    if command == "plan":
        p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    elif command == "run":
        p.add_argument("--local", action="store_true", required=True, help="run here (use 'study condor' for HTCondor)")
        p.add_argument("-j", "--jobs", type=int, default=1, help="runs at once (default 1)")
        p.add_argument("--retries", type=int, default=None, help="retries of a failed step (default: the study's)")
        p.add_argument("--no-fits", action="store_true", help="stop after collecting the runs table")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    elif command == "condor":
        p.add_argument("--site", default=None, help="site profile: configs/sites/NAME.yaml or NAME (default: generic)")
        p.add_argument("--submit", action="store_true", help="submit the DAG to the local schedd (default: dry run)")
        p.add_argument("--test", action="store_true", help="only two training runs")
        p.add_argument("--no-prepare", action="store_true",
                       help="no data preparation job (the data was prepared here with 'hepscale study prepare')")
    elif command == "prepare":
        p.add_argument("-j", "--jobs", type=int, default=2, help="generator processes (default 2)")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _usage() -> str:
    lines = ["usage: hepscale study COMMAND ...", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, text in COMMAND_HELP.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale study plan|run|condor|prepare|collect``; see the module docstring."""
    from hepscale.cli import configure_logging as configure_cli_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] not in COMMAND_HELP:
        print(f"hepscale study: unknown command {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    args = _parser(argv[0]).parse_intermixed_args(argv[1:])
    args.command = argv[0]
    if args.command in ("run", "prepare"):
        import distributed  # noqa: F401  (distributed sets its log levels at import; ours must come after)
    configure_cli_logging(getattr(args, "verbose", False))
    logging.getLogger("hepscale.study.study").setLevel(logging.INFO)
    try:
        if args.command == "collect":
            info = collect(args.study_dir)
            print(f"{info['rows']} runs -> {info['parquet']}, {info['csv']}")
            return 0
        study = load_study(args.study, args.overrides)
        root = args.output if args.output is not None else study.folder
        if args.command == "plan":
            runs = expand_runs(study)
            rows = plan_rows(study, runs, study_dir=root)
            if args.format == "json":
                print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
            else:
                print(format_plan(study, rows))
            return 0
        if args.command == "prepare":
            write_study_files(study, Path(root), expand_runs(study))
            from processors.jets import JetProcessor

            paths = prepare(study, root, jobs=args.jobs, progress=not args.no_progress, processor_factory=JetProcessor)
            print(f"data ready in {root}: tokens {paths['tokens']}, reference {paths['reference']}")
            return 0
        if args.command == "condor":
            from hepscale.condor import CondorError, submit_dag

            info = write_condor(study, root, site=args.site, test=args.test, prepare_node=not args.no_prepare)
            print(f"wrote {info['dag']} ({', '.join(f'{n} {k}' for k, n in info['jobs'].items())} jobs)")
            print(f"queue-from submit files: {', '.join(info['submit'].values())}")
            if args.submit:
                try:
                    cluster = submit_dag(info["dag"])
                except CondorError as err:
                    print(f"hepscale study: error: {err}", file=sys.stderr)
                    return 2
                print(f"submitted DAG as cluster {cluster}")
            else:
                print(f"dry run: submit with 'hepscale study condor {args.study} --submit' "
                      f"or 'cd {root} && condor_submit_dag study.dag'")
            return 0
        # run --local
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            from processors.jets import JetProcessor

            out = run_study(study, jobs=args.jobs, progress=not args.no_progress, output=root, retries=args.retries,
                            processor_factory=JetProcessor,
                            fits=not args.no_fits)
        except KeyboardInterrupt:
            print(f"\nhepscale study: interrupted; run the same command again to continue ({root})", file=sys.stderr)
            return 130
        _print_summary(out)
        fit_failed = any(not v.endswith(".json") for v in out["fits"].values())
        return 1 if out["failed"] or out["interrupted"] or fit_failed else 0
    except (ConfigError, StudyError, FileNotFoundError, ValueError) as err:
        print(f"hepscale study: error: {err}", file=sys.stderr)
        return 2


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _print_summary(out: Mapping[str, Any]) -> None:
    print(f"\nstudy folder: {out['study_dir']}")
    print(f"runs: {out['done']} of {out['runs']} done, {len(out['failed'])} failed, "
          f"{len(out['interrupted'])} interrupted")
    for f in out["failed"]:
        print(f"  FAILED {f['run_id']} ({f['kind']}); log: {f['log']}")
    if out["table"]:
        print(f"runs table: {out['table']['parquet']} and {out['table']['csv']} ({out['table']['rows']} rows)")
    if out.get("summary"):
        print("\n" + out["summary"] + "\n")
    for name, path in out["fits"].items():
        print(f"fit {name}: {path}")
    for path in out.get("figures", []):
        print(f"figure: {path}")
    print(f"done in {out['seconds']:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
