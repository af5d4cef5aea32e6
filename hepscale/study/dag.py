"""``study condor``: the jobs of :func:`hepscale.study.commands.job_commands` as an HTCondor DAG for
a pool without a shared filesystem.

Written into the study folder: ``study.dag``, ``KIND.sub``, ``KIND.queue.sub`` +
``KIND.queue.items``, ``hepscale_job.sh``, ``logs/``, ``inputs/`` (links to the study's inputs
from outside its folder, :mod:`hepscale.condor.inputs`), ``software/`` (a shipped wheel or
packed environment of the site profile) and an empty run folder per training run. Every path in
the DAG and the submit files is relative to the study folder; the DAG is submitted from it
(:func:`hepscale.condor.dag_submit_description`).

What each job transfers (``preserve_relative_paths``, see :mod:`hepscale.condor.submit`):

==========  ==================================================  =====================================
job         in                                                  out
==========  ==================================================  =====================================
prepare     ``study.yaml``, ``train.yaml``, ``inputs/*``        ``data`` (on success)
train       ``train.yaml``, the prepared data, its run folder   its run folder (checkpoint + output)
sample      its run folder                                      ``samples.parquet`` (on success)
evaluate    samples, ``result.json``, ``config.yaml``,          ``result.json`` (+ ``evaluation``)
            tokenizer, the reference (tagging: run folder +
            tagging data)
collect     ``plan.json``, every run's ``result.json``           ``runs.parquet``, ``runs.csv``
fit         ``runs.parquet``                                    ``fits/NAME.json``
==========  ==================================================  =====================================

Checkpoints and retries. The trainer checkpoints every ``checkpoint.every`` steps and, every
``checkpoint_exit_minutes`` of the site profile, checkpoints and exits with 85: HTCondor spools
the run folder (``transfer_checkpoint_files``) and restarts the job from it, also after an
eviction (from the last spooled checkpoint). A DAG ``RETRY`` is a new job that has no spool:
its checkpoint comes from the study folder instead. The run folder is created here, so that it
always exists and is always an input of its training job (a missing input would put the job
on hold), and the training job transfers it back whenever it exits, with the last checkpoint
of a failed attempt; the retry transfers it in and ``--resume`` continues from it. A node that
exits with 2 (a configuration or data error) is not retried. Collection and fits are vanilla
jobs too, with their small inputs transferred.

GPUs: training jobs request the site's training GPUs with ``gpus_minimum_memory`` estimated per
run (:func:`hepscale.condor.gpu_memory_mb`, a ``VARS`` value) and the site's
``gpus_minimum_capability``; with ``gpu.inference`` sampling (and a tagger's evaluation, which
scores the test split) requests one GPU and runs with ``--device cuda``. A fit whose law needs
more runs than the DAG trains is left out with a warning.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hepscale.runs.folder import RunFolder
from hepscale.study.commands import job_commands
from hepscale.study.config import StudyConfig
from hepscale.study.data import TAGGING_INFO, TOKENS_INFO, data_paths
from hepscale.study.folder import (
    PLAN_JSON,
    RUNS_PARQUET,
    STUDY_YAML,
    TRAIN_YAML,
    study_lock,
    write_study_files,
)
from hepscale.study.grid import Run, expand_runs

__all__ = ["DAG_FILE", "write_condor"]

logger = logging.getLogger(__name__)

DAG_FILE = "study.dag"
#: the run folder of a node, in HTCondor's macro syntax
_RUN = RunFolder.relative("$(job_id)")


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
    per job with ``RETRY``; a tagging study has no sample nodes), the node descriptions
    ``KIND.sub``, for each kind a standalone ``KIND.queue.sub`` with ``queue job_id, args from
    KIND.queue.items``, the wrapper ``hepscale_job.sh``, ``logs/``, ``inputs/``, ``software/``
    and the run folders; see the module docstring for what each job transfers.

    Parameters
    ----------
    site
        Site profile: ``configs/sites/NAME.yaml`` or NAME (default:
        :data:`hepscale.condor.DEFAULT_SITE`).
    test
        Only two training runs (and their evaluation).
    prepare_node
        Start the DAG with the data preparation job (False: the data is in the study folder
        already, e.g. from ``hepscale study prepare`` on the access point).
    runs
        The runs (default: :func:`expand_runs` of the study).

    Returns
    -------
    dict
        ``dag`` (path), ``submit`` (kind -> queue submit file), ``jobs`` (kind -> count),
        ``batch_name``.

    Raises
    ------
    StudyError
        When a ``study run`` holds the study folder (nothing is written).
    CondorError
        When an input path holds a comma, or a ``$`` form HTCondor cannot pass literally.
    ConfigError
        When an input from outside the study folder, or the site's software file, is missing.
    """
    root = Path(study_dir)
    runs = list(runs) if runs is not None else expand_runs(study)
    with study_lock(root):  # not while a 'study run' uses the folder; nothing written when refused
        return _write_condor(study, root, runs, site=site, test=test, prepare_node=prepare_node)


def _feasible_fits(commands: dict[str, list[tuple[str, list[str]]]], n_runs: int) -> None:
    """Drop (with a warning) the fits whose law needs more runs than the DAG trains."""
    from hepscale.study.fits import min_runs, parse_fit_args

    kept = []
    for name, args in commands.get("fit", []):
        need = min_runs(parse_fit_args(args[1:]))
        if n_runs < need:
            logger.warning("fit %s left out of the DAG: %d run(s), its law needs at least %d", name, n_runs, need)
            continue
        kept.append((name, args))
    commands["fit"] = kept


def _ship_software(profile: Any, root: Path) -> None:
    """Copy the site's wheel or packed environment into the study folder's ``software/``."""
    from hepscale.condor.submit import SOFTWARE_DIR
    from hepscale.config import ConfigError

    for what, value in (("software.wheel", profile.software.wheel), ("software.tarball", profile.software.tarball)):
        if not value:
            continue
        source = Path(value).expanduser().resolve()
        if not source.is_file():
            raise ConfigError(f"site profile {profile.name}: {what}: {source} does not exist")
        target = root / SOFTWARE_DIR / source.name
        target.parent.mkdir(exist_ok=True)
        if not target.is_file() or target.stat().st_size != source.stat().st_size or (
                target.stat().st_mtime < source.stat().st_mtime):
            shutil.copy2(source, target)


def _inputs(study: StudyConfig, external: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Inputs and outputs of each job kind, relative to the study folder (see the module docstring)."""
    from hepscale.condor import condor_literal

    paths = data_paths(study)
    run = {k: f"{_RUN}/{getattr(RunFolder, k)}" for k in ("SAMPLES", "RESULT", "CONFIG", "TOKENIZER", "EVALUATION")}
    lit = {key: condor_literal(name, what=key) for key, name in external.items()}
    inputs = {"prepare": [STUDY_YAML, TRAIN_YAML, *lit.values()]}
    if study.task == "tagging":
        inputs.update({"train": [TRAIN_YAML, paths["tagging"], _RUN], "evaluate": [_RUN, paths["tagging"]]})
    else:
        reference = lit.get("data.reference", paths["reference"])
        inputs.update({"train": [TRAIN_YAML, paths["tokens"], _RUN], "sample": [_RUN],
                       "evaluate": [run["SAMPLES"], run["RESULT"], run["CONFIG"], run["TOKENIZER"], reference]})
    figures = [run["EVALUATION"]] if study.evaluation.figures else []
    outputs = {"prepare": ["data"], "sample": [run["SAMPLES"]], "evaluate": [run["RESULT"], *figures],
               "collect": ["runs.parquet", "runs.csv"], "fit": ["fits/$(job_id).json"]}
    return inputs, outputs


def _write_condor(study: StudyConfig, root: Path, runs: list[Run], *, site: str | os.PathLike[str] | None,
                  test: bool, prepare_node: bool) -> dict[str, Any]:
    from hepscale.condor import (
        DEFAULT_SITE,
        Job,
        gpu_memory_mb,
        load_site,
        submit_description,
        write_dag,
        write_queue_file,
    )
    from hepscale.condor.inputs import external_inputs, link_inputs

    profile = load_site(site if site is not None else DEFAULT_SITE)
    if not (profile.has_image or profile.software.setup or profile.software.wheel or profile.software.tarball
            or profile.software.python != "python3"):
        logger.warning("site profile %s says nothing about the software: the jobs expect python3 with hepscale "
                       "on the workers (set container_image, or software.setup, .wheel or .tarball)", profile.name)
    write_study_files(study, root, runs)
    if test:
        runs = runs[:2]
    commands = job_commands(study, runs)
    _feasible_fits(commands, len(runs))
    linked = external_inputs(study, prepare=prepare_node)
    link_inputs(root, linked)
    _ship_software(profile, root)
    external = {i.key: i.name for i in linked}
    inputs, outputs = _inputs(study, external)
    gpu_inference = profile.gpu.inference
    gpu_kinds = {"sample"} | ({"evaluate"} if study.task == "tagging" else set())
    if "data.reference" in external:  # the evaluation reads the transferred copy
        source = str(Path(study.data.reference or "").resolve())
        commands["evaluate"] = [(j, [external["data.reference"] if a == source else a for a in args])
                                for j, args in commands.get("evaluate", [])]
    inputs["collect"] = [PLAN_JSON, *[f"{r.folder}/{RunFolder.RESULT}" for r in runs]]
    inputs["fit"] = [RUNS_PARQUET]
    for r in runs:  # always an input of its training job (see the module docstring)
        (root / r.folder).mkdir(parents=True, exist_ok=True)
    memory = {r.run_id: gpu_memory_mb(r.config, minimum=profile.gpu.min_memory_mb) for r in runs}
    stages = []
    submit_files = {}
    previous = None
    for kind, items in commands.items():
        jobs = [Job(job_id, tuple(args)) for job_id, args in items]
        if not jobs or (kind == "prepare" and not prepare_node):
            continue
        gpus = 1 if (gpu_inference and kind in gpu_kinds) else None
        if gpus:
            jobs = [Job(j.id, (*j.args, "--device", "cuda")) for j in jobs]
        train = kind == "train"
        desc = submit_description(kind, profile, training=train, transfer_input=inputs.get(kind, ()),
                                  checkpoint_dir=_RUN if train else None, outputs=outputs.get(kind, ()),
                                  gpus=gpus if not train else None, batch_name=study.name,
                                  gpu_memory="$(gpu_memory)" if train else None)
        node_vars = [{"gpu_memory": str(memory[j.id])} if train else {} for j in jobs]
        edge = "one-to-one" if kind in ("sample", "evaluate") and previous in ("train", "sample") else "all"
        stages.append((kind, desc, jobs, edge, node_vars))
        queue_desc = dict(desc)
        if "gpus_minimum_memory" in queue_desc:  # no VARS there: the largest run's
            queue_desc["gpus_minimum_memory"] = str(max(memory.values()))
        submit_files[kind] = str(write_queue_file(root, f"{kind}.queue", queue_desc, jobs))
        previous = kind
    prepared = (data_paths(study)["tagging"], TAGGING_INFO) if study.task == "tagging" else (
        data_paths(study)["tokens"], TOKENS_INFO)
    if not prepare_node and not (root / prepared[0] / prepared[1]).is_file():
        logger.warning("no prepare node, and %s does not exist yet: run 'hepscale study prepare' first",
                       root / prepared[0])
    dag = write_dag(root, stages, dag_name=DAG_FILE)
    return {"dag": str(dag), "submit": submit_files, "jobs": {s[0]: len(s[2]) for s in stages},
            "batch_name": profile.batch_name or study.name}
