"""The end of a study: collect the runs table, run the fits, write the summary and figures.

:func:`finish_study` is the one last step of both executors: the local executor
(:mod:`hepscale.study.executor`) calls it after its runs, and the HTCondor DAG
(:mod:`hepscale.study.dag`) runs it as its FINAL node, ``hepscale study finish .``, which runs
whatever happened to the other nodes, on the runs that finished. A fit whose law needs more runs
than the table holds is skipped with a warning; a fit that fails is reported with its log and
does not stop the others. What happened is recorded in ``finish.json`` (:data:`FINISH_JSON`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hepscale.study._jobs import JobRunner, Task
from hepscale.study.collect import collect, study_outputs
from hepscale.study.config import StudyError
from hepscale.study.fits import FitCommand, fit_shortfall
from hepscale.study.folder import RUNS_PARQUET, SUMMARY_TXT

__all__ = ["FINISH_JSON", "FINISH_OUTPUTS", "finish_study"]

logger = logging.getLogger(__name__)

#: the record of :func:`finish_study` in the study folder
FINISH_JSON = "finish.json"

#: what :func:`finish_study` leaves in the study folder whenever it returns (folders may be empty)
FINISH_OUTPUTS = (RUNS_PARQUET, "runs.csv", SUMMARY_TXT, FINISH_JSON, "fits", "figures")


def finish_study(root: str | os.PathLike[str], fit_commands: Sequence[tuple[str, FitCommand]], *,
                 runner: JobRunner | None = None, fits: bool = True) -> dict[str, Any]:
    """Collect the runs table of a study folder, run its fits, write its summary and figures.

    Parameters
    ----------
    fit_commands
        ``(name, hepscale arguments)`` of the fits (:func:`hepscale.study.commands.job_commands`);
        each holds its :class:`~hepscale.fit.FitOptions`, which decide whether it can run.
    runner
        Runs the fits as subprocesses in the study folder (default: a new one).
    fits
        Run the fits (False: collect, summary and figures only).

    Returns
    -------
    dict
        ``table`` (:func:`~hepscale.study.collect.collect`'s record), ``fits`` (name -> JSON path or
        what happened), ``fits_failed``, ``fits_skipped`` (names), ``summary`` (text or None),
        ``figures`` (paths); the same, less the summary's text, is written to ``finish.json``.

    Raises
    ------
    StudyError
        When no planned run has finished (nothing to collect).
    """
    from hepscale._io import atomic_write_json, atomic_write_text

    root = Path(root)
    table = collect(root)
    out: dict[str, Any] = {"table": table, "fits": {}, "fits_failed": [], "fits_skipped": []}
    (root / "fits").mkdir(exist_ok=True)
    (root / "figures").mkdir(exist_ok=True)
    if fits:
        out.update(_run_fits(runner or JobRunner(root, threads=None), root, fit_commands))
    try:  # after the fits: the figures draw them where they exist
        outputs = study_outputs(root)
    except (StudyError, ValueError, KeyError) as err:  # a figure is not worth failing the study for
        logger.warning("summary/figures of %s: %s", root, err)
        outputs = {}
        if not (root / SUMMARY_TXT).is_file():
            atomic_write_text(root / SUMMARY_TXT, f"no summary: {err}\n")
    out["summary"] = outputs.get("summary")
    out["figures"] = outputs.get("figures", [])
    atomic_write_json(root / FINISH_JSON, {k: v for k, v in out.items() if k != "summary"})
    return out


def _run_fits(ex: JobRunner, root: Path, fit_commands: Sequence[tuple[str, FitCommand]]) -> dict[str, Any]:
    """Run the fits on the collected runs table; a fit whose law needs more runs than the table
    holds is skipped with a warning. Returns ``fits`` (name -> JSON path or what happened),
    ``fits_failed`` and ``fits_skipped`` (names)."""
    import pandas as pd

    table = pd.read_parquet(root / RUNS_PARQUET)
    out: dict[str, Any] = {"fits": {}, "fits_failed": [], "fits_skipped": []}
    for name, args in fit_commands:
        short = fit_shortfall(args.options, table)
        if short is not None:
            logger.warning("fit %s skipped: %s", name, short)
            out["fits"][name] = f"skipped ({short})"
            out["fits_skipped"].append(name)
            continue
        log = f"fits/{name}.log"
        rc = ex.run(Task("fit", name, args, log), 1)
        if rc == 0:
            out["fits"][name] = str(root / "fits" / f"{name}.json")
            continue
        out["fits"][name] = f"failed (exit {rc}), log {root / log}"
        out["fits_failed"].append(name)
        logger.warning("fit %s failed (exit status %d); log: %s", name, rc, root / log)
    return out
