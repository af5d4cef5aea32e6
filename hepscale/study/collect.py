"""The end products of a study folder: the runs table, and its task's summary and figures.

- ``runs.parquet``, ``runs.csv``: the runs table (:func:`hepscale.runs.table.gather_runs`),
  restricted to the runs of ``plan.json``; a run counts when it is finished;
- ``summary.txt`` and ``figures/``: what the study's task draws and tabulates
  (:meth:`hepscale.tasks.spec.TaskSpec.summary_table`, :meth:`~hepscale.tasks.spec.TaskSpec.figures`);
- ``fits/<name>.json`` (+ figures): ``python -m hepscale.fit`` outputs (run by the executor
  or the DAG, see :func:`hepscale.study.commands.job_commands`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hepscale.runs.folder import RUNS_DIR, RunFolder
from hepscale.study.config import StudyError
from hepscale.study.folder import (
    PLAN_JSON,
    RUNS_CSV,
    RUNS_PARQUET,
    SUMMARY_TXT,
    planned_run_ids,
)

__all__ = ["collect", "study_outputs"]


def collect(study_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the runs table of a study folder as ``runs.parquet`` and ``runs.csv`` (atomically).

    Only runs of the folder's ``plan.json`` are collected (all runs under ``runs/`` without
    one); a run counts when its ``result.json`` exists.

    Returns
    -------
    dict
        ``parquet`` and ``csv`` (paths) and ``rows`` (count).

    Raises
    ------
    StudyError
        When the folder has no runs, or none of its plan has finished.
    """
    from hepscale._io import atomic_path
    from hepscale.runs.table import gather_runs

    root = Path(study_dir)
    if not (root / RUNS_DIR).is_dir():
        raise StudyError(f"study folder {root} has no {RUNS_DIR}/ folder (nothing has run yet)")
    table = gather_runs(root, pattern=f"{RUNS_DIR}/*/{RunFolder.RESULT}")
    ids = planned_run_ids(root)
    if ids is not None:
        table = table[table["run_id"].isin(ids)].reset_index(drop=True)
        if table.empty:
            raise StudyError(f"no finished run of {root / PLAN_JSON} under {root}/{RUNS_DIR}")
    with atomic_path(root / RUNS_PARQUET, suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(root / RUNS_CSV, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    return {"parquet": str(root / RUNS_PARQUET), "csv": str(root / RUNS_CSV), "rows": len(table)}


def study_outputs(study_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Summary table (``summary.txt``) and figures of a collected study, as its task's spec says
    (:meth:`~hepscale.tasks.spec.TaskSpec.summary_table`, :meth:`~hepscale.tasks.spec.TaskSpec.figures`).

    Returns
    -------
    dict
        ``summary`` (text), ``summary_file`` (path) and ``figures`` (paths; empty when there is
        nothing to draw).
    """
    import pandas as pd

    from hepscale._io import atomic_write_text
    from hepscale.study.data import folder_label, folder_task

    root = Path(study_dir)
    table = pd.read_parquet(root / RUNS_PARQUET)
    spec = folder_task(root)
    text = spec.summary_table(table)
    atomic_write_text(root / SUMMARY_TXT, text + "\n")
    figures = spec.figures(table, root, label=folder_label(root))
    return {"summary": text, "summary_file": str(root / SUMMARY_TXT), "figures": [str(f) for f in figures]}
