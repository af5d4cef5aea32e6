"""Scaling studies: a YAML grid -> runs -> data, training, evaluation, runs table and fits.

::

    hepscale study plan    STUDY.yaml                      # the runs, their N, D, U, epochs, steps, C
    hepscale study run     STUDY.yaml --local [-j N]       # everything, here, resumable
    hepscale study condor  STUDY.yaml [--site S] [--submit] [--test]   # the same jobs as an HTCondor DAG
    hepscale study prepare STUDY.yaml                      # data only (generate -> process -> tokenize/split)
    hepscale study collect STUDY_DIR                       # runs table (parquet + CSV)

A study YAML (:class:`StudyConfig`, see ``configs/studies/``) expands into runs, and the same
expanded list drives the local executor and the HTCondor DAG. A study has a ``task``: jet
generation (GPT models on tokenized jets, evaluated with the SWD) or jet tagging (particle
transformers on the classes of ``data.tagging``, evaluated on their test split); the modules
switch on it where the two differ (:mod:`~hepscale.study.tagging`). The modules, along the way a
study goes:

- :mod:`~hepscale.study.config`: :class:`StudyConfig`, :func:`load_study` (validated, errors
  name the field);
- :mod:`~hepscale.study.data`: settings hashes of the data steps and :func:`data_paths`;
- :mod:`~hepscale.study.grid`: :class:`Run`, :func:`expand_runs`;
- :mod:`~hepscale.study.plan`: :func:`plan_rows`, :func:`format_plan` (the trainer's
  accounting, no torch);
- :mod:`~hepscale.study.folder`: the study folder's files (``study.yaml``, ``train.yaml``,
  ``plan.json``);
- :mod:`~hepscale.study.commands`: :func:`job_commands`, the one source of the job commands;
- :mod:`~hepscale.study.prepare`: :func:`prepare` (generate -> process -> tokenize, cached;
  the SWD reference; tagging: the class splits instead);
- :mod:`~hepscale.study.tagging`: the checks of a tagging study (classes, feature sets against
  the data source) and the experiment label of its figures;
- :mod:`~hepscale.study.tagging_results`: the summary table and figures of a tagging study;
- :mod:`~hepscale.study.generation_results`: the figures of a generation study against D and
  its search-space planes;
- :mod:`~hepscale.study.executor`: :func:`run_study`, the local executor (resumable, retries);
- :mod:`~hepscale.study.dag`: :func:`write_condor`, the HTCondor DAG;
- :mod:`~hepscale.study.collect`: :func:`collect` (runs table), :func:`summary_table`,
  :func:`plot_swd_vs_n`;
- :mod:`~hepscale.study.cli`: ``hepscale study`` (:func:`main`, :func:`print_summary`).

Nothing here imports torch (training, sampling and evaluation run as subprocesses), so
planning a study needs no GPU stack.
"""

from __future__ import annotations

from hepscale.study.cli import main, print_summary
from hepscale.study.collect import collect, plot_swd_vs_n, study_outputs, summary_table
from hepscale.study.commands import JOB_KINDS, job_commands
from hepscale.study.config import (
    TASKS,
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
    TaggingSection,
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
    "TASKS",
    "StudyConfig",
    "StudyError",
    "DataSection",
    "TaggingSection",
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
    "summary_table",
    "plot_swd_vs_n",
    "study_outputs",
    "print_summary",
    "main",
]
