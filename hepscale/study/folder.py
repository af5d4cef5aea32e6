"""The study folder (a study's ``output``): its file names and the files that describe the study.

- ``study.yaml``: the resolved study (``output: .``, external paths made absolute),
  ``train.yaml``: a copy of the base training config, ``plan.json``: the expanded runs with
  their overrides; every job command runs in this folder with paths relative to it;
- ``data/``: the data of :mod:`hepscale.study.data`;
- ``runs/<run_id>/``: one run each (a :class:`hepscale.runs.folder.RunFolder`), with the logs of
  its jobs and, after evaluation, its samples and ``evaluation/``;
- ``runs.parquet``, ``runs.csv``, ``summary.txt``, ``figures/``, ``fits/``: see
  :mod:`hepscale.study.collect`;
- HTCondor files (``study condor``): see :mod:`hepscale.study.dag`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hepscale.config import ConfigError, to_dict
from hepscale.study.config import StudyConfig, StudyError
from hepscale.study.data import data_paths

if TYPE_CHECKING:
    from hepscale.study.grid import Run

__all__ = [
    "STUDY_YAML",
    "TRAIN_YAML",
    "PLAN_JSON",
    "RUNS_PARQUET",
    "RUNS_CSV",
    "SUMMARY_TXT",
    "LOCK_FILE",
    "study_lock",
    "write_study_files",
    "planned_run_ids",
]

STUDY_YAML = "study.yaml"
TRAIN_YAML = "train.yaml"
PLAN_JSON = "plan.json"
RUNS_PARQUET = "runs.parquet"
RUNS_CSV = "runs.csv"
SUMMARY_TXT = "summary.txt"
#: advisory lock of the study folder: one ``study run`` (or ``prepare``, ``condor``) at a time
LOCK_FILE = ".hepscale-lock"


def study_lock(study_dir: str | Path) -> contextlib.AbstractContextManager[None]:
    """Hold the study folder's advisory lock (``.hepscale-lock``, the folder is created).

    Take it before writing anything into the folder: a refused command must leave the files of
    the study that holds it alone.

    Raises
    ------
    StudyError
        When another ``hepscale study`` command holds it.
    """
    from hepscale._io import exclusive_lock

    root = Path(study_dir)
    return exclusive_lock(root / LOCK_FILE, lambda lock: StudyError(
        f"another 'hepscale study run' is using {root} (lock {lock}); wait for it to end, or stop it"))


def _write_if_changed(path: Path, text: str) -> None:
    from hepscale._io import atomic_write_text

    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def write_study_files(study: StudyConfig, study_dir: Path, runs: Sequence[Run]) -> None:
    """``study.yaml`` (resolved, ``output: .``), ``train.yaml`` and ``plan.json`` in the study folder.

    Files are rewritten only when their contents change.

    Raises
    ------
    ConfigError
        When ``train.config`` does not exist.
    """
    import yaml

    from hepscale._io import atomic_write_json
    from hepscale._version import code_version
    from hepscale.jets.inputs import is_remote

    study_dir.mkdir(parents=True, exist_ok=True)
    src = Path(study.train.config)
    if not src.is_file():
        raise ConfigError(f"study {study.name}: train.config: {src} does not exist")
    _write_if_changed(study_dir / TRAIN_YAML, src.read_text(encoding="utf-8"))
    copy = to_dict(study)
    copy["output"] = "."
    copy["train"]["config"] = TRAIN_YAML
    d = copy["data"]
    d["events"] = [p if is_remote(p) else str(Path(p).resolve()) for p in d["events"]]  # URLs as given
    if d["jets"]:
        d["jets"] = str(Path(d["jets"]).resolve())
    for item in study.spec.external_inputs(study):  # the task's files from outside (data.reference)
        d[item.key.split(".", 1)[1]] = item.path
    if d["process"]["config"]:
        d["process"]["config"] = str(Path(d["process"]["config"]).resolve())
    if d["process"]["site"] and Path(d["process"]["site"]).suffix:
        d["process"]["site"] = str(Path(d["process"]["site"]).resolve())
    header = f"# resolved copy of study {study.name}; jobs run in this folder (written by hepscale study)\n"
    _write_if_changed(study_dir / STUDY_YAML, header + yaml.safe_dump(copy, sort_keys=False))
    plan = {
        "study": study.name,
        "code_version": dict(code_version()),
        "data": data_paths(study),
        "runs": [{"run_id": r.run_id, "model": r.model, "overrides": list(r.overrides), "folder": r.folder}
                 for r in runs],
    }
    path = study_dir / PLAN_JSON
    old = json.loads(path.read_text()) if path.is_file() else None
    if old != plan:
        atomic_write_json(path, plan)


def planned_run_ids(study_dir: str | Path) -> list[str] | None:
    """The run ids of the folder's ``plan.json`` (None without one)."""
    plan = Path(study_dir) / PLAN_JSON
    if not plan.is_file():
        return None
    return [r["run_id"] for r in json.loads(plan.read_text(encoding="utf-8"))["runs"]]
