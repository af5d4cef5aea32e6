"""The job commands of a study: one source for the local executor and the HTCondor DAG.

:func:`job_commands` gives the ``hepscale`` arguments of every job; the local executor
(:mod:`hepscale.study.executor`) runs them as ``python -m hepscale ARGS`` subprocesses in the
study folder and the HTCondor DAG (:mod:`hepscale.study.dag`) runs them through
``condor/hepscale_job.sh``, so a study runs identically on a laptop and on the grid.

A generation run has the jobs train -> sample -> evaluate (the SWD against the reference); a
tagging run train -> evaluate, where the trainer has already scored the test split (AUC,
background rejections in ``result.json``) and the evaluation draws the run's ROC, so it runs
only with ``evaluation.figures``.
"""

from __future__ import annotations

from collections.abc import Sequence

from hepscale.runs.folder import RunFolder
from hepscale.study.config import StudyConfig
from hepscale.study.data import data_paths
from hepscale.study.fits import fit_command
from hepscale.study.folder import STUDY_YAML, TRAIN_YAML
from hepscale.study.grid import Run

__all__ = ["JOB_KINDS", "job_commands"]

#: kinds of jobs, in the order they run; ``finish`` runs the ``fit`` commands
JOB_KINDS = ("prepare", "train", "sample", "evaluate", "finish", "fit")


def job_commands(study: StudyConfig, runs: Sequence[Run]) -> dict[str, list[tuple[str, list[str]]]]:
    """The ``hepscale`` arguments of every job, by kind, as ``(job id, args)``.

    Arguments are relative to the study folder. Kinds (:data:`JOB_KINDS`): ``prepare``,
    ``train``, ``sample`` (generation, with evaluation enabled), ``evaluate`` (with evaluation
    enabled; tagging: and figures), ``finish`` (collect the runs table, run the fits, write the
    summary and figures: :func:`hepscale.study.finish.finish_study`) and ``fit`` (the fits that
    ``finish`` runs, each a :class:`~hepscale.study.fits.FitCommand` that holds its options). The job id of a run's jobs is its run id. The local executor and the
    HTCondor DAG both run exactly these.
    """
    from hepscale.study.data import figure_label

    e = study.evaluation
    label = figure_label(study)
    out: dict[str, list[tuple[str, list[str]]]] = {
        "prepare": [("prepare", ["study", "prepare", STUDY_YAML])],
        "train": [(r.run_id, ["train", TRAIN_YAML, *r.overrides, "--output", r.folder, "--resume"]) for r in runs],
    }
    if study.task == "tagging":
        if e.enabled and e.figures:
            out["evaluate"] = [(r.run_id, ["evaluate", r.folder, "--bootstraps", str(e.bootstraps), "--seed",
                                           str(e.seed), "--label", label]) for r in runs]
    elif e.enabled:
        reference = data_paths(study)["reference"]
        out["sample"] = [(r.run_id, ["sample", r.folder, "--n", str(e.samples), "--output",
                                     f"{r.folder}/{RunFolder.SAMPLES}", "--seed", str(e.seed), "--batch", str(e.batch)])
                         for r in runs]
        out["evaluate"] = [(r.run_id, ["evaluate", r.folder, "--reference", reference, "--n", str(e.n),
                                       "--bootstraps", str(e.bootstraps), "--projections", str(e.projections),
                                       "--seed", str(e.seed), "--label", label] + ([] if e.floor else ["--no-floor"])
                            + ([] if e.figures else ["--no-figures"])) for r in runs]
    out["finish"] = [("finish", ["study", "finish", "."])]
    # a proxy fit of a generation study needs the SWD of the evaluation; a tagger's metrics come with training
    out["fit"] = [(f.name, fit_command(study, f)) for f in study.fit.fits or []
                  if e.enabled or f.law != "proxy" or study.task == "tagging"]
    return out
