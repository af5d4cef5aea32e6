"""The local executor: ``study run --local`` runs every job of :func:`job_commands` here.

Data preparation runs in-process (the same :func:`hepscale.study.prepare.prepare` that the
``study prepare`` job calls); each run's pipeline (train, then its task's jobs: a generation run
sample -> evaluate, a tagging run evaluate) runs its jobs as ``python -m hepscale ARGS`` subprocesses in the study folder
(:mod:`hepscale.study._jobs`), ``jobs`` runs at once; then the runs table is collected, the
fits run and the summary and figures written. A fit whose law needs more runs than the table
holds is skipped with a warning.

A step is skipped when it is done, as its run folder (:class:`hepscale.runs.folder.RunFolder`)
says: trained when the run is finished (``result.json`` exists, written last and atomically
by the trainer); a job after training when its task says so
(:meth:`hepscale.tasks.spec.TaskSpec.job_done`: sampled when the samples have the study's size
and seed, evaluated when the result holds an SWD with the study's settings, or a tagger's ROC
record with its resamples and seed), unless a step before it just ran again. So an
interrupted study re-run continues where it stopped and never collects a half-written run. A
step that fails is retried up to ``retries`` times and reported with its log path.

One ``study run`` at a time holds a study folder (an advisory lock, taken before anything is
written), and one trainer a run folder (:meth:`RunFolder.lock`): a run whose folder another
trainer holds (one of a study killed a moment ago, checkpointing on its way out) is waited for
up to :data:`BUSY_WAIT_S` seconds, then reported as interrupted, never retried as a failure.
Job subprocesses die with the study, even when it is killed with SIGKILL.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hepscale.errors import EXIT_BAD_INPUT, EXIT_CHECKPOINT, EXIT_INTERRUPTED
from hepscale.runs.folder import RunFolder, RunLockedError
from hepscale.study._jobs import JobRunner, Task
from hepscale.study.commands import job_commands
from hepscale.study.config import StudyConfig, load_study
from hepscale.study.finish import finish_study
from hepscale.study.folder import study_lock, write_study_files
from hepscale.study.grid import Run, expand_runs
from hepscale.study.prepare import prepare

__all__ = ["BUSY_WAIT_S", "run_study"]

logger = logging.getLogger(__name__)

#: exit statuses of a step stopped from outside: checkpointed on SIGTERM, or ended by SIGINT/SIGTERM
#: (a Ctrl-C on the terminal reaches the whole process group before the study stops it)
_INTERRUPTED = (EXIT_CHECKPOINT, -signal.SIGINT, -signal.SIGTERM, EXIT_INTERRUPTED, 128 + signal.SIGTERM)

#: seconds a training step waits for a run folder that another trainer holds
BUSY_WAIT_S = 180.0

#: what a trainer says when another process holds its run folder (:class:`RunLockedError`)
_BUSY_MESSAGE = "another process is working on run"


def _busy(run: RunFolder) -> bool:
    """True when another process holds the run folder's lock (a trainer is working on it)."""
    if not run.path.is_dir():
        return False
    try:
        with run.lock():
            return False
    except RunLockedError:
        return True


def _refused_as_busy(run: RunFolder, log: Path) -> bool:
    """True when the trainer that just exited refused the run because another process held it."""
    if _busy(run):
        return True
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    last = text[text.rfind("# attempt"):]
    return _BUSY_MESSAGE in last


def _wait_while_busy(ex: JobRunner, run: RunFolder, deadline: float) -> bool:
    """Wait until no other process holds the run folder; False when still held at ``deadline``
    (or the study is stopping)."""
    warned = False
    while _busy(run):
        if ex.stopping.is_set() or time.monotonic() >= deadline:
            return False
        if not warned:
            logger.warning("run %s: another process holds %s (a trainer of an earlier study run, checkpointing?); "
                           "waiting up to %.0f s", run.path.name, run.path / run.LOCK, deadline - time.monotonic())
            warned = True
        time.sleep(0.25)
    return True


def _run_step(ex: JobRunner, task: Task, run: RunFolder, retries: int) -> tuple[str, int]:
    """Run one step with its retries: ``("done" | "interrupted" | "busy" | "failed", exit status)``.

    A trainer refused because another one holds the run folder is not a failure: the step waits
    for the folder (:data:`BUSY_WAIT_S` in all) and starts again without using up an attempt.
    """
    root = ex.root
    deadline = None
    attempt = 0
    rc = 0
    while attempt <= retries:
        if task.kind == "train" and _busy(run):
            deadline = deadline or time.monotonic() + BUSY_WAIT_S
            if not _wait_while_busy(ex, run, deadline):
                return ("interrupted" if ex.stopping.is_set() else "busy"), EXIT_BAD_INPUT
        attempt += 1
        rc = ex.run(task, attempt)
        if rc == 0:
            return "done", rc
        if rc in _INTERRUPTED or ex.stopping.is_set():
            return "interrupted", rc
        if task.kind == "train" and rc == EXIT_BAD_INPUT and _refused_as_busy(run, root / task.log):
            deadline = deadline or time.monotonic() + BUSY_WAIT_S
            attempt -= 1  # not a failure of the run: wait for the folder and try again
            if time.monotonic() >= deadline:
                return "busy", rc
            time.sleep(0.25)
            continue
        logger.warning("%s %s failed (exit status %d, attempt %d of %d); log: %s", task.kind, task.job_id, rc,
                       attempt, retries + 1, root / task.log)
    return "failed", rc


def _run_pipeline(ex: JobRunner, study: StudyConfig, tasks: Sequence[Task], retries: int) -> dict[str, Any]:
    """Train one run and run its task's jobs after training (e.g. sample, evaluate), each step
    skipped when done (:meth:`hepscale.tasks.spec.TaskSpec.job_done`; once a step after training
    runs again, the ones after it run too) and retried on failure."""
    root = ex.root
    redone = False
    for task in tasks:
        run = RunFolder.in_study(root, task.job_id)
        if task.kind == "train" and run.finished:
            continue
        if task.kind != "train" and not redone and study.spec.job_done(task.kind, run, study):
            continue
        redone = redone or task.kind != "train"
        status, rc = _run_step(ex, task, run, retries)
        if status == "busy":
            logger.warning("run %s: another process still holds %s after %.0f s; not trained now, run the study "
                           "again when it has ended", task.job_id, run.path / run.LOCK, BUSY_WAIT_S)
            return {"status": "interrupted", "kind": task.kind, "log": str(root / task.log), "busy": True}
        if status == "interrupted":
            return {"status": "interrupted", "kind": task.kind, "log": str(root / task.log)}
        if status == "failed":
            return {"status": "failed", "kind": task.kind, "exit": rc, "log": str(root / task.log)}
    return {"status": "done"}


def run_study(
    study_path_or_config: str | os.PathLike[str] | StudyConfig,
    *,
    jobs: int = 1,
    progress: bool = True,
    output: str | os.PathLike[str] | None = None,
    retries: int | None = None,
    client: Any = None,
    fits: bool = True,
    processor_factory: Callable[[Any], Any] | None = None,
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
        Makes the coffea processor (see :func:`hepscale.study.prepare.prepare`).

    Returns
    -------
    dict
        ``study_dir``, ``runs`` (count), ``done``, ``failed`` (list of ``{run_id, kind, log}``),
        ``interrupted`` (run ids: stopped, or their folder held by another trainer), ``table``
        (paths, or None), ``fits`` (name -> JSON path, or what happened), ``fits_failed`` and
        ``fits_skipped`` (names; skipped: too few runs for the law), ``summary`` (text of
        ``summary.txt``), ``figures`` (paths: ``figures/swd_vs_N``; tagging, see
        :func:`hepscale.study.collect.study_outputs`), ``seconds``.

    Raises
    ------
    StudyError
        When another ``study run`` holds the study folder (nothing is written then), or the
        data cannot be prepared.
    """
    t0 = time.perf_counter()
    study = study_path_or_config if isinstance(study_path_or_config, StudyConfig) else load_study(study_path_or_config)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    root = Path(output) if output is not None else study.folder
    runs = expand_runs(study)
    with _folder_lock(root):  # before anything is written: a refused run leaves the folder alone
        write_study_files(study, root, runs)
        return _run_locked(study, root, runs, jobs=jobs, progress=progress, retries=retries, client=client,
                           processor_factory=processor_factory, fits=fits, t0=t0)


def _folder_lock(root: Path) -> contextlib.AbstractContextManager[None]:
    """One ``study run`` per study folder at a time (:func:`hepscale.study.folder.study_lock`)."""
    return study_lock(root)


def _run_locked(study: StudyConfig, root: Path, runs: Sequence[Run], *, jobs: int, progress: bool,
                retries: int | None, client: Any, fits: bool, t0: float,
                processor_factory: Callable[[Any], Any] | None) -> dict[str, Any]:
    logger.info("study %s: %d runs in %s", study.name, len(runs), root)
    prepare(study, root, jobs=max(jobs, 2), client=client, progress=progress, processor_factory=processor_factory)
    commands = job_commands(study, runs)
    ex = JobRunner(root, threads=max(1, (os.cpu_count() or 1) // jobs))
    n_retry = study.retries if retries is None else retries
    try:  # whatever stops the study (SIGINT, SIGTERM, an error) stops its jobs, fits included
        outcome = _run_runs(ex, study, runs, commands, jobs=jobs, retries=n_retry, progress=progress)
        failed = [{"run_id": rid, "kind": o["kind"], "log": o["log"]} for rid, o in outcome.items()
                  if o["status"] == "failed"]
        interrupted = [rid for rid, o in outcome.items() if o["status"] == "interrupted"]
        for f in failed:
            logger.error("run %s: %s failed after %d attempt(s); log: %s", f["run_id"], f["kind"], n_retry + 1,
                         f["log"])
        end: dict[str, Any] = {"table": None, "fits": {}, "fits_failed": [], "fits_skipped": [], "summary": None,
                               "figures": []}
        if any(RunFolder.in_study(root, r.run_id).finished for r in runs):
            end = finish_study(root, commands["fit"], runner=ex, fits=fits and not interrupted)
    except BaseException:
        ex.terminate()
        raise
    return {"study_dir": str(root), "runs": len(runs), "done": sum(o["status"] == "done" for o in outcome.values()),
            "failed": failed, "interrupted": interrupted, "table": end["table"], "fits": end["fits"],
            "fits_failed": end["fits_failed"], "fits_skipped": end["fits_skipped"], "summary": end["summary"],
            "figures": end["figures"],
            "seconds": time.perf_counter() - t0}


def _run_runs(ex: JobRunner, study: StudyConfig, runs: Sequence[Run], commands: dict[str, list[tuple[str, list[str]]]],
              *, jobs: int, retries: int, progress: bool) -> dict[str, dict[str, Any]]:
    """The pipelines of every run, ``jobs`` at once: run id -> outcome of :func:`_run_pipeline`."""
    from tqdm.auto import tqdm

    per_run: dict[str, list[Task]] = {r.run_id: [] for r in runs}
    for kind, items in commands.items():
        if kind in ("prepare", "finish", "fit"):
            continue
        for job_id, args in items:
            log = str(RunFolder(RunFolder.relative(job_id)).log(kind))  # relative to the study folder
            per_run[job_id].append(Task(kind, job_id, args, log))
    outcome: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(runs), desc=f"study {study.name}", unit="run", disable=not progress)
    pool = cf.ThreadPoolExecutor(max_workers=jobs)
    futures = {pool.submit(_run_pipeline, ex, study, per_run[r.run_id], retries): r.run_id for r in runs}
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
    return outcome
