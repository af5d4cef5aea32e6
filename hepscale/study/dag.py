"""``study condor``: the jobs of :func:`hepscale.study.commands.job_commands` as an HTCondor DAG for
a pool without a shared filesystem.

Written into the study folder: ``study.dag``, ``KIND.sub``, ``KIND.queue.sub`` +
``KIND.queue.items``, ``finish.sub`` with its scripts ``finish_pre.sh`` and ``finish_post.sh``
and their ``finish.inputs``, ``hepscale_job.sh``, ``logs/``, ``inputs/`` (links to the study's inputs
from outside its folder, :mod:`hepscale.study.inputs`), ``software/`` (a shipped wheel or
packed environment of the site profile) and an empty run folder per training run. Every path in
the DAG and the submit files is relative to the study folder; the DAG is submitted from it
(:func:`hepscale.condor.dag_submit_description`).

What each job transfers (``preserve_relative_paths``, see :mod:`hepscale.condor.submit`):

==========  ==================================================  =====================================
job         in                                                  out
==========  ==================================================  =====================================
prepare     ``study.yaml``, ``train.yaml``, ``inputs/*``        ``data`` (on success)
train       ``train.yaml``, the prepared data, its run folder   its run folder (checkpoint + output)
(task)      what its task says (``TaskSpec.job_inputs``;        ``TaskSpec.job_outputs``: a sample
            generation ``sample``: its run folder; ``evaluate``: job ``samples.parquet``, an evaluate
            samples, ``result.json``, ``config.yaml``,          job ``result.json`` (+ ``evaluation``)
            tokenizer, the reference; tagging ``evaluate``:
            run folder + tagging data)
finish      ``study.yaml``, ``train.yaml``, ``plan.json``,       ``runs.parquet``, ``runs.csv``,
            the ``result.json`` of every run that finished      ``summary.txt``, ``finish.json``,
                                                                ``fits/``, ``figures/``
==========  ==================================================  =====================================

The end of the study (collect the runs table, run the fits, write the summary and the figures:
:func:`hepscale.study.finish.finish_study`) is the DAG's FINAL node ``finish``, a vanilla job
like the others that runs whatever happened to them: one run that failed for good does not stop
the others from being collected and fitted. Its PRE script (``finish_pre.sh``, on the access
point) lists the runs that finished in ``finish.inputs``, which ``finish.sub`` includes as the
job's transfer list (a missing input would put the job on hold), and fails the node when none
did. The job exits 0 once it has written the runs table, also when a fit failed, so that the
table and the other fits come back; its POST script (``finish_post.sh``) then fails the node
from ``finish.json``. The observables figure needs the samples and the reference, which the
finish job does not transfer: run ``hepscale study finish .`` in the study folder for it. The
FINAL node is not retried (it fails the same way again; run the same command by hand after a
fix, or resubmit the DAG: its rescue DAG reruns the FINAL node).

Checkpoints and retries. The trainer checkpoints every ``checkpoint.every`` steps and, every
``checkpoint_exit_minutes`` of the site profile, checkpoints and exits with 85: HTCondor spools
the run folder (``transfer_checkpoint_files``) and restarts the job from it, also after an
eviction (from the last spooled checkpoint). A DAG ``RETRY`` is a new job that has no spool:
its checkpoint comes from the study folder instead. The run folder is created here, so that it
always exists and is always an input of its training job (a missing input would put the job
on hold), and the training job transfers it back whenever it exits, with the last checkpoint
of a failed attempt; the retry transfers it in and ``--resume`` continues from it. A node that
exits with 2 (a configuration or data error) is not retried.

GPUs: training jobs request the site's training GPUs with ``gpus_minimum_memory`` estimated per
run (:func:`hepscale.condor.gpu_memory_mb`, a ``VARS`` value) and the site's
``gpus_minimum_capability``; with ``gpu.inference`` sampling (and a tagger's evaluation, which
scores the test split) requests one GPU and runs with ``--device cuda``. A fit whose law needs
more runs than have finished is skipped with a warning (and already when the DAG is written, if
it needs more runs than the DAG trains).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hepscale.runs.folder import RunFolder
from hepscale.study.commands import job_commands
from hepscale.study.config import StudyConfig
from hepscale.study.data import data_paths
from hepscale.study.finish import FINISH_OUTPUTS
from hepscale.study.folder import (
    PLAN_JSON,
    STUDY_YAML,
    TRAIN_YAML,
    study_lock,
    write_study_files,
)
from hepscale.study.grid import Run, expand_runs

__all__ = ["DAG_FILE", "FINISH_INPUTS", "write_condor"]

logger = logging.getLogger(__name__)

DAG_FILE = "study.dag"
#: the run folder of a node, in HTCondor's macro syntax
_RUN = RunFolder.relative("$(job_id)")
#: the transfer list of the FINAL node's job (``finish_inputs = ...``), written by its PRE script
FINISH_INPUTS = "finish.inputs"
_FINISH_PRE = "finish_pre.sh"
_FINISH_POST = "finish_post.sh"


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

    Written: ``study.dag`` (prepare -> train -> the task's jobs after training, e.g. sample ->
    evaluate, one node per job with ``RETRY``, and the FINAL node ``finish``), the node
    descriptions ``KIND.sub``, for each kind but ``finish`` a standalone ``KIND.queue.sub`` with
    ``queue job_id, args from KIND.queue.items``, the FINAL node's scripts, the wrapper
    ``hepscale_job.sh``, ``logs/``, ``inputs/``, ``software/`` and the run folders; see the
    module docstring for what each job transfers.

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


def _warn_infeasible_fits(commands: dict[str, list[tuple[str, list[str]]]], n_runs: int) -> None:
    """Warn of the fits whose law needs more runs than the DAG trains (the finish job skips them)."""
    from hepscale.study.fits import min_runs

    for name, args in commands.get("fit", []):
        need = min_runs(args.options)  # type: ignore[attr-defined]  # a FitCommand
        if n_runs < need:
            logger.warning("fit %s will be skipped: the DAG trains %d run(s), its law needs at least %d",
                           name, n_runs, need)


def _finish_scripts(root: Path, runs: Sequence[Run]) -> None:
    """The FINAL node's PRE and POST scripts, and its first transfer list (see the module docstring)."""
    from hepscale._io import atomic_write_text

    results = [f"{r.folder}/{RunFolder.RESULT}" for r in runs]
    pre = rf"""#!/bin/sh
# PRE script of the FINAL node 'finish' of {DAG_FILE}: DAGMan runs it on the access point, in the
# study folder, before it submits the finish job (whatever happened to the other nodes). It lists
# the result of every run of the DAG that finished in {FINISH_INPUTS}, the finish job's transfer
# list (finish.sub includes it): a run that failed for good is left out instead of putting the job
# on hold for a missing input. When no run finished there is nothing to collect: the node fails.
inputs={PLAN_JSON}
n=0
for result in {" ".join(shlex.quote(r) for r in results)}; do
    if [ -f "$result" ]; then
        inputs="$inputs, $result"
        n=$((n + 1))
    fi
done
echo "finish: $n of {len(results)} runs finished"
if [ "$n" -eq 0 ]; then
    echo "finish: no run of the DAG finished, nothing to collect" >&2
    exit 1
fi
printf 'finish_inputs = %s\n' "$inputs" > {FINISH_INPUTS}.tmp && mv -f {FINISH_INPUTS}.tmp {FINISH_INPUTS}
"""
    post = rf"""#!/bin/sh
# POST script of the FINAL node 'finish' of {DAG_FILE}: DAGMan runs it on the access point, in the
# study folder, with the finish job's exit status. The job exits 0 once it has written the runs
# table, also when a fit failed (so that the table and the other fits come back): the node fails
# then, as finish.json says.
case "${{1:-}}" in
    0) ;;
    2) exit 2 ;;
    *) echo "finish: the job failed (exit status ${{1:-unknown}}); see logs/finish-finish.*.err" >&2; exit 1 ;;
esac
if grep -q '"fits_failed": \[\]' finish.json; then
    exit 0
fi
echo "finish: a fit failed; see finish.json and fits/*.log" >&2
exit 1
"""
    atomic_write_text(root / _FINISH_PRE, pre)
    atomic_write_text(root / _FINISH_POST, post)
    existing = [r for r in results if (root / r).is_file()]  # the PRE script rewrites it
    atomic_write_text(root / FINISH_INPUTS, f"finish_inputs = {', '.join([PLAN_JSON, *existing])}\n")


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

    spec = study.spec
    lit = {key: condor_literal(name, what=key) for key, name in external.items()}
    inputs = {"prepare": [STUDY_YAML, TRAIN_YAML, *lit.values()]}
    for kind, files in spec.job_inputs(study, data_paths(study), _RUN, lit).items():
        inputs[kind] = [TRAIN_YAML, *files] if kind == "train" else list(files)
    outputs = {"prepare": ["data"], **spec.job_outputs(_RUN, figures=study.evaluation.figures),
               "finish": list(FINISH_OUTPUTS)}
    return inputs, outputs


def _write_condor(study: StudyConfig, root: Path, runs: list[Run], *, site: str | os.PathLike[str] | None,
                  test: bool, prepare_node: bool) -> dict[str, Any]:
    from hepscale.condor import (
        DEFAULT_SITE,
        FinalJob,
        Job,
        gpu_memory_mb,
        load_site,
        submit_description,
        write_dag,
        write_queue_file,
    )
    from hepscale.study.inputs import external_inputs, link_inputs

    profile = load_site(site if site is not None else DEFAULT_SITE)
    if not (profile.has_image or profile.software.setup or profile.software.wheel or profile.software.tarball
            or profile.software.python != "python3"):
        logger.warning("site profile %s says nothing about the software: the jobs expect python3 with hepscale "
                       "on the workers (set container_image, or software.setup, .wheel or .tarball)", profile.name)
    write_study_files(study, root, runs)
    if test:
        runs = runs[:2]
    commands = job_commands(study, runs)
    _warn_infeasible_fits(commands, len(runs))
    linked = external_inputs(study, prepare=prepare_node)
    link_inputs(root, linked)
    _ship_software(profile, root)
    external = {i.key: i.name for i in linked}
    inputs, outputs = _inputs(study, external)
    gpu_inference = profile.gpu.inference
    gpu_kinds = study.spec.gpu_inference_kinds
    if "data.reference" in external:  # the evaluation reads the transferred copy
        source = str(Path(study.data.reference or "").resolve())
        commands["evaluate"] = [(j, [external["data.reference"] if a == source else a for a in args])
                                for j, args in commands.get("evaluate", [])]
    inputs["finish"] = [STUDY_YAML, TRAIN_YAML, "$(finish_inputs)"]  # plan.json and results: FINISH_INPUTS
    for r in runs:  # always an input of its training job (see the module docstring)
        (root / r.folder).mkdir(parents=True, exist_ok=True)
    memory = {r.run_id: gpu_memory_mb(r.config, minimum=profile.gpu.min_memory_mb) for r in runs}
    stages = []
    submit_files = {}
    previous = None
    for kind, items in commands.items():
        jobs = [Job(job_id, tuple(args)) for job_id, args in items]
        if not jobs or (kind == "prepare" and not prepare_node) or kind in ("finish", "fit"):
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
        # a run's jobs after training follow its own training job (and each other), one to one
        edge = "one-to-one" if kind != "train" and previous is not None and previous != "prepare" else "all"
        stages.append((kind, desc, jobs, edge, node_vars))
        queue_desc = dict(desc)
        if "gpus_minimum_memory" in queue_desc:  # no VARS there: the largest run's
            queue_desc["gpus_minimum_memory"] = str(max(memory.values()))
        submit_files[kind] = str(write_queue_file(root, f"{kind}.queue", queue_desc, jobs))
        previous = kind
    prepared = root / data_paths(study)[study.spec.dataset_key]
    if not prepare_node and not (prepared / study.spec.prepared_info).is_file():
        logger.warning("no prepare node, and %s does not exist yet: run 'hepscale study prepare' first", prepared)
    (finish_id, finish_args), = commands["finish"]
    final = FinalJob("finish", submit_description("finish", profile, transfer_input=inputs["finish"],
                                                  outputs=outputs["finish"], batch_name=study.name),
                     Job(finish_id, (*finish_args, "--fit-failures-ok")), pre=("/bin/sh", _FINISH_PRE),
                     post=("/bin/sh", _FINISH_POST, "$RETURN"), include=FINISH_INPUTS)
    _finish_scripts(root, runs)
    dag = write_dag(root, stages, dag_name=DAG_FILE, final=final)
    return {"dag": str(dag), "submit": submit_files, "jobs": {**{s[0]: len(s[2]) for s in stages}, "finish": 1},
            "batch_name": profile.batch_name or study.name}
