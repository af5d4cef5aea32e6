"""Scaling studies: a YAML grid -> runs -> data, training, evaluation, runs table and fits.

::

    hepscale study plan    STUDY.yaml                      # the runs, their N, D, U, epochs, steps, C
    hepscale study run     STUDY.yaml --local [-j N]       # everything, here, resumable
    hepscale study condor  STUDY.yaml [--site S] [--submit] [--test]   # the same jobs as an HTCondor DAG
    hepscale study prepare STUDY.yaml                      # data only (generate -> process -> the task's data)
    hepscale study collect STUDY_DIR                       # runs table (parquet + CSV)

A study YAML (:class:`StudyConfig`, see ``configs/studies/``) expands into runs, and the same
expanded list drives the local executor and the HTCondor DAG. A study has a ``task``
(:mod:`hepscale.tasks`: jet generation, GPT models on tokenized jets evaluated with the SWD, or
jet tagging, particle transformers on the classes of ``data.tagging`` evaluated on their test
split); where tasks differ, the modules here ask the task's spec
(:class:`hepscale.tasks.spec.TaskSpec`) and never its name. The modules, along the way a study
goes:

- :mod:`~hepscale.study.config`: :class:`StudyConfig`, :func:`load_study` (validated, errors
  name the field);
- :mod:`~hepscale.study.data`: settings hashes of the data steps and :func:`data_paths`;
- :mod:`~hepscale.study.grid`: :class:`Run`, :func:`expand_runs`;
- :mod:`~hepscale.study.plan`: :func:`plan_rows`, :func:`format_plan` (the trainer's
  accounting, no torch);
- :mod:`~hepscale.study.folder`: the study folder's files (``study.yaml``, ``train.yaml``,
  ``plan.json``);
- :mod:`~hepscale.study.commands`: :func:`job_commands`, the one source of the job commands;
- :mod:`~hepscale.study.prepare`: :func:`prepare` (generate -> process, cached; then the
  task's data: tokens and the SWD reference, or the class splits);
- :mod:`~hepscale.study.executor`: :func:`run_study`, the local executor (resumable, retries);
- :mod:`~hepscale.study.dag`: :func:`write_condor`, the HTCondor DAG;
- :mod:`~hepscale.study.collect`: :func:`collect` (runs table), :func:`study_outputs` (the
  task's summary and figures);
- :mod:`~hepscale.study.cli`: ``hepscale study`` (:func:`main`, :func:`print_summary`).

Nothing here imports torch (training, sampling and evaluation run as subprocesses), so
planning a study needs no GPU stack.
"""

from __future__ import annotations

from hepscale.study.cli import main, print_summary
from hepscale.study.collect import collect, study_outputs
from hepscale.study.commands import JOB_KINDS, job_commands
from hepscale.study.config import (
    DataSection,
    EvaluationSection,
    FitSection,
    FitSpec,
    GenerateSection,
    GridSection,
    PlanSection,
    ProcessSection,
    StudyConfig,
    StudyError,
    TrainSection,
    load_study,
)
from hepscale.study.dag import write_condor
from hepscale.study.data import data_keys, data_paths
from hepscale.study.executor import run_study
from hepscale.study.folder import write_study_files
from hepscale.study.grid import Run, expand_runs
from hepscale.study.plan import PlanRow, format_plan, plan_rows
from hepscale.study.prepare import prepare

__all__ = [
    "StudyConfig",
    "StudyError",
    "DataSection",
    "GenerateSection",
    "ProcessSection",
    "TrainSection",
    "GridSection",
    "EvaluationSection",
    "FitSpec",
    "FitSection",
    "PlanSection",
    "load_study",
    "data_keys",
    "data_paths",
    "Run",
    "expand_runs",
    "PlanRow",
    "plan_rows",
    "format_plan",
    "write_study_files",
    "JOB_KINDS",
    "job_commands",
    "prepare",
    "run_study",
    "write_condor",
    "collect",
    "study_outputs",
    "print_summary",
    "main",
]
