"""The job commands of a study: one source for the local executor and the HTCondor DAG.

:func:`job_commands` gives the ``hepscale`` arguments of every job; the local executor
(:mod:`hepscale.study.executor`) runs them as ``python -m hepscale ARGS`` subprocesses in the
study folder and the HTCondor DAG (:mod:`hepscale.study.dag`) runs them through
``condor/hepscale_job.sh``, so a study runs identically on a laptop and on the grid.

A run has the job train, then the jobs its task runs after training
(:meth:`hepscale.tasks.spec.TaskSpec.job_commands`: a generation run sample -> evaluate, the SWD
against the reference; a tagging run evaluate, its ROC figure, only with ``evaluation.figures``).
"""

from __future__ import annotations

from collections.abc import Sequence

from hepscale.study.config import StudyConfig
from hepscale.study.fits import fit_command
from hepscale.study.folder import STUDY_YAML, TRAIN_YAML
from hepscale.study.grid import Run

__all__ = ["JOB_KINDS", "job_commands"]

#: kinds of jobs, in the order they run; ``finish`` runs the ``fit`` commands
JOB_KINDS = ("prepare", "train", "sample", "evaluate", "finish", "fit")


def job_commands(study: StudyConfig, runs: Sequence[Run]) -> dict[str, list[tuple[str, list[str]]]]:
    """The ``hepscale`` arguments of every job, by kind, as ``(job id, args)``.

    Arguments are relative to the study folder. Kinds (:data:`JOB_KINDS`): ``prepare``,
    ``train``, the task's kinds after training (e.g. ``sample``, ``evaluate``), ``finish`` (collect the runs table, run the fits, write the
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
    out.update(study.spec.job_commands(study, runs, label))
    out["finish"] = [("finish", ["study", "finish", "."])]
    # a fit of metrics that only the evaluation writes (a generation study's SWD) needs it enabled
    out["fit"] = [(f.name, fit_command(study, f)) for f in study.fit.fits or []
                  if e.enabled or not study.spec.fit_needs_evaluation(f)]
    return out
