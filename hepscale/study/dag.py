"""``study condor``: the jobs of :func:`hepscale.study.commands.job_commands` as an HTCondor DAG.

Written into the study folder: ``study.dag``, ``KIND.sub``, ``KIND.queue.sub`` +
``KIND.queue.items``, ``hepscale_job.sh`` and ``logs/`` (:mod:`hepscale.condor`). Inputs
outside the study folder (``data.events``, ``data.jets``, the processor config) are
referenced by absolute path; HTCondor jobs reach them only on a shared filesystem; or prepare
the data on the access point (``hepscale study prepare``) and write the DAG with
``study condor --no-prepare``. A ``$`` in such a path or in a job argument is written as
HTCondor's literal dollar (:func:`hepscale.condor.condor_literal`); a path with a comma is
refused. A fit whose law needs more runs than the DAG trains is left out with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hepscale.runs.folder import RunFolder
from hepscale.study.commands import job_commands
from hepscale.study.config import StudyConfig
from hepscale.study.data import TAGGING_INFO, TOKENS_INFO, data_paths
from hepscale.study.folder import STUDY_YAML, TRAIN_YAML, study_lock, write_study_files
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
    per job with ``RETRY``; a tagging study has no sample nodes and transfers its tagging
    dataset instead of tokens), the node descriptions ``KIND.sub``, for each kind a standalone
    ``KIND.queue.sub`` with ``queue job_id, args from KIND.queue.items``, the wrapper
    ``hepscale_job.sh`` and ``logs/``. Training jobs declare ``checkpoint_exit_code`` and
    transfer their run folder on eviction; resources, container image and accounting group
    come from the site profile. Files keep their paths relative to the study folder
    (``preserve_relative_paths``), so the jobs run the commands of :func:`job_commands`.
    Collection and fits read only small files of the study folder and run in the local
    universe (on the access point, in the study folder).

    Parameters
    ----------
    site
        Site profile: ``configs/sites/NAME.yaml`` or NAME (default: generic).
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
        ``dag`` (path), ``submit`` (kind -> queue submit file), ``jobs`` (kind -> count).

    Raises
    ------
    StudyError
        When a ``study run`` holds the study folder (nothing is written).
    CondorError
        When an input path holds a comma, or a ``$`` form HTCondor cannot pass literally.
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


def _write_condor(study: StudyConfig, root: Path, runs: list[Run], *, site: str | os.PathLike[str] | None,
                  test: bool, prepare_node: bool) -> dict[str, Any]:
    from hepscale.condor import (
        Job,
        condor_literal,
        load_site,
        submit_description,
        write_dag,
        write_queue_file,
    )

    profile = load_site(site)
    write_study_files(study, root, runs)
    if test:
        runs = runs[:2]
    commands = job_commands(study, runs)
    _feasible_fits(commands, len(runs))
    paths = data_paths(study)
    d = study.data
    external = [*d.events, *([d.jets] if d.jets else []), *([d.process.config] if d.process.config else [])]
    inputs: dict[str, list[str]] = {  # paths from outside: a '$' in them is written as HTCondor's literal dollar
        "prepare": [STUDY_YAML, TRAIN_YAML, *[condor_literal(Path(p).resolve(), what="input file") for p in external]],
    }
    if study.task == "tagging":  # the tagging splits instead of tokens; the ROC needs the run and the test split
        prepared = paths["tagging"], TAGGING_INFO
        inputs.update({"train": [TRAIN_YAML, paths["tagging"]], "evaluate": [_RUN, paths["tagging"]]})
    else:
        prepared = paths["tokens"], TOKENS_INFO
        reference = paths["reference"]
        inputs.update({
            "train": [TRAIN_YAML, paths["tokens"]],
            "sample": [_RUN],
            "evaluate": [f"{_RUN}/{RunFolder.SAMPLES}", f"{_RUN}/{RunFolder.RESULT}",
                         condor_literal(reference, what="data.reference") if Path(reference).is_absolute()
                         else reference],
        })
    outputs = {"prepare": "data", "sample": f"{_RUN}/{RunFolder.SAMPLES}",
               "evaluate": f"{_RUN}/{RunFolder.RESULT}" + (f", {_RUN}/{RunFolder.EVALUATION}"
                                                          if study.evaluation.figures else "")}
    stages = []
    submit_files = {}
    previous = None
    for kind, items in commands.items():
        desc = submit_description(kind, profile, training=kind == "train", transfer_input=inputs.get(kind, ()),
                                  checkpoint_dir=_RUN if kind == "train" else None)
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
    if not prepare_node and not (root / prepared[0] / prepared[1]).is_file():
        logger.warning("no prepare node, and %s does not exist yet: run 'hepscale study prepare' first",
                       root / prepared[0])
    dag = write_dag(root, stages, dag_name=DAG_FILE)
    return {"dag": str(dag), "submit": submit_files, "jobs": {k: len(j) for k, _, j, _ in stages}}
