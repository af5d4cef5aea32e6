"""The local executor: ``study run --local`` runs every job of :func:`job_commands` here.

Data preparation runs in-process (the same :func:`hepscale.study.prepare.prepare` that the
``study prepare`` job calls); each run's pipeline (train -> sample -> evaluate) runs its jobs
as ``python -m hepscale ARGS`` subprocesses in the study folder, ``jobs`` runs at once; then
the runs table is collected, the summary and figure written and the fits run.

A step is skipped when it is done, as its run folder (:class:`hepscale.runs.folder.RunFolder`)
says: trained when the run is finished (``result.json`` exists, written last and atomically
by the trainer), sampled when its samples have the study's size and seed, evaluated when its
result holds an SWD with the study's settings (and the samples were not just redrawn). So an
interrupted study re-run continues where it stopped and never collects a half-written run. A
step that fails is retried up to ``retries`` times and reported with its log path. One
``study run`` at a time holds a study folder (an advisory lock).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepscale.errors import EXIT_CHECKPOINT, EXIT_INTERRUPTED
from hepscale.runs.folder import RunFolder
from hepscale.study.collect import collect, study_outputs
from hepscale.study.commands import job_commands
from hepscale.study.config import StudyConfig, StudyError, load_study
from hepscale.study.folder import LOCK_FILE, write_study_files
from hepscale.study.grid import Run, expand_runs
from hepscale.study.prepare import prepare

__all__ = ["run_study"]

logger = logging.getLogger(__name__)

#: exit statuses of a step stopped from outside: checkpointed on SIGTERM, or ended by SIGINT/SIGTERM
#: (a Ctrl-C on the terminal reaches the whole process group before the study stops it)
_INTERRUPTED = (EXIT_CHECKPOINT, -signal.SIGINT, -signal.SIGTERM, EXIT_INTERRUPTED, 128 + signal.SIGTERM)


@dataclass
class _Task:
    kind: str
    job_id: str
    args: list[str]
    log: str


class _Executor:
    """Runs ``python -m hepscale ARGS`` subprocesses in the study folder; SIGTERM to all on interrupt."""

    def __init__(self, root: Path, *, threads: int | None) -> None:
        self.root = root
        self.threads = threads
        self.live: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self, task: _Task, attempt: int) -> int:
        if self.stopping.is_set():
            return EXIT_CHECKPOINT
        log = self.root / task.log
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.threads:
            env.setdefault("OMP_NUM_THREADS", str(self.threads))
        with open(log, "a", encoding="utf-8") as handle:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            handle.write(f"# attempt {attempt} at {stamp}: hepscale {' '.join(task.args)}\n")
            handle.flush()
            proc = subprocess.Popen([sys.executable, "-m", "hepscale", *task.args], cwd=self.root, stdout=handle,
                                    stderr=subprocess.STDOUT, env=env)
            with self.lock:
                self.live.add(proc)
            try:
                rc = proc.wait()
            finally:
                with self.lock:
                    self.live.discard(proc)
            handle.write(f"# exit status {rc}\n")
        return rc

    def terminate(self) -> None:
        self.stopping.set()
        with self.lock:
            procs = list(self.live)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()


def _sampled(run: RunFolder, study: StudyConfig) -> bool:
    from hepscale.jets.dataset import DatasetError, read_metadata

    if not run.samples.is_file():
        return False
    try:
        meta = read_metadata(run.samples)
    except (DatasetError, OSError, ValueError):
        return False
    return meta.get("n") == study.evaluation.samples and meta.get("seed") == study.evaluation.seed


def _evaluated(run: RunFolder, study: StudyConfig) -> bool:
    from hepscale.errors import DataError

    try:
        result = run.read_result()
    except (OSError, DataError):
        return False
    swd = result.get("evaluation", {}).get("swd", {})
    e = study.evaluation
    return swd.get("n_jets") == e.n and swd.get("n_bootstraps") == e.bootstraps


def _run_pipeline(ex: _Executor, study: StudyConfig, tasks: Sequence[_Task], retries: int) -> dict[str, Any]:
    """Train, sample and evaluate one run, each step skipped when done and retried on failure."""
    root = ex.root
    resampled = False
    for task in tasks:
        run = RunFolder.in_study(root, task.job_id)
        if task.kind == "train" and run.finished:
            continue
        if task.kind == "sample" and _sampled(run, study):
            continue
        if task.kind == "evaluate" and not resampled and _evaluated(run, study):
            continue
        resampled = resampled or task.kind == "sample"
        for attempt in range(1, retries + 2):
            rc = ex.run(task, attempt)
            if rc == 0:
                break
            if rc in _INTERRUPTED or ex.stopping.is_set():
                return {"status": "interrupted", "kind": task.kind, "log": str(root / task.log)}
            logger.warning("%s %s failed (exit status %d, attempt %d of %d); log: %s", task.kind, task.job_id, rc,
                           attempt, retries + 1, root / task.log)
        else:
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
        ``interrupted``, ``table`` (paths, or None), ``fits`` (name -> JSON path or error),
        ``summary`` (text of ``summary.txt``), ``figures`` (``figures/swd_vs_N``), ``seconds``.

    Raises
    ------
    StudyError
        When another ``study run`` holds the study folder, or the data cannot be prepared.
    """
    t0 = time.perf_counter()
    study = study_path_or_config if isinstance(study_path_or_config, StudyConfig) else load_study(study_path_or_config)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    root = Path(output) if output is not None else study.folder
    runs = expand_runs(study)
    write_study_files(study, root, runs)
    with _folder_lock(root):
        return _run_locked(study, root, runs, jobs=jobs, progress=progress, retries=retries, client=client,
                           processor_factory=processor_factory, fits=fits, t0=t0)


def _folder_lock(root: Path) -> contextlib.AbstractContextManager[None]:
    """One ``study run`` per study folder at a time (an advisory lock on ``.hepscale-lock``)."""
    from hepscale._io import exclusive_lock

    return exclusive_lock(root / LOCK_FILE, lambda lock: StudyError(
        f"another 'hepscale study run' is using {root} (lock {lock})"))


def _run_locked(study: StudyConfig, root: Path, runs: Sequence[Run], *, jobs: int, progress: bool,
                retries: int | None, client: Any, fits: bool, t0: float,
                processor_factory: Callable[[Any], Any] | None) -> dict[str, Any]:
    from tqdm.auto import tqdm

    logger.info("study %s: %d runs in %s", study.name, len(runs), root)
    prepare(study, root, jobs=max(jobs, 2), client=client, progress=progress, processor_factory=processor_factory)
    commands = job_commands(study, runs)
    per_run: dict[str, list[_Task]] = {r.run_id: [] for r in runs}
    for kind in ("train", "sample", "evaluate"):
        for job_id, args in commands.get(kind, []):
            log = str(RunFolder(RunFolder.relative(job_id)).log(kind))  # relative to the study folder
            per_run[job_id].append(_Task(kind, job_id, args, log))
    ex = _Executor(root, threads=max(1, (os.cpu_count() or 1) // jobs))
    n_retry = study.retries if retries is None else retries
    outcome: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(runs), desc=f"study {study.name}", unit="run", disable=not progress)
    pool = cf.ThreadPoolExecutor(max_workers=jobs)
    futures = {pool.submit(_run_pipeline, ex, study, per_run[r.run_id], n_retry): r.run_id for r in runs}
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
    failed = [{"run_id": rid, "kind": o["kind"], "log": o["log"]} for rid, o in outcome.items()
              if o["status"] == "failed"]
    interrupted = [rid for rid, o in outcome.items() if o["status"] == "interrupted"]
    for f in failed:
        logger.error("run %s: %s failed after %d attempt(s); log: %s", f["run_id"], f["kind"], n_retry + 1, f["log"])
    table = None
    outputs: dict[str, Any] = {}
    fit_out: dict[str, str] = {}
    if any(RunFolder.in_study(root, r.run_id).finished for r in runs):
        table = collect(root)
        try:
            outputs = study_outputs(root)
        except (StudyError, ValueError, KeyError) as err:  # a figure is not worth failing the study for
            logger.warning("summary/figures of %s: %s", root, err)
            outputs = {}
        if fits and not interrupted:
            for name, args in commands["fit"]:
                log = f"fits/{name}.log"
                rc = ex.run(_Task("fit", name, args, log), 1)
                fit_out[name] = str(root / "fits" / f"{name}.json") if rc == 0 else (
                    f"failed (exit {rc}), log {root / log}")
                if rc:
                    logger.warning("fit %s failed (exit status %d); log: %s", name, rc, root / log)
    return {"study_dir": str(root), "runs": len(runs), "done": sum(o["status"] == "done" for o in outcome.values()),
            "failed": failed, "interrupted": interrupted, "table": table, "fits": fit_out,
            "summary": outputs.get("summary"), "figures": outputs.get("figures", []),
            "seconds": time.perf_counter() - t0}
