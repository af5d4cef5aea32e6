"""The identity of a study's data: settings hashes of the data steps and where the data lies.

The study folder's ``data/`` holds ``events/*.root`` (generated), ``jets/`` (processed) and
what the study's task prepares from the jets (:meth:`hepscale.tasks.spec.TaskSpec.data_paths`:
a generation study's ``tokens-<hash>/`` and ``reference-<hash>.parquet``, a tagging study's
``tagging-<hash>/``). The hash of each comes from every setting upstream (generator, processor,
the task's own section) and the version of the code that writes it, so a run whose data changes
gets a new run id.

Inputs outside the study folder (``data.events``, ``data.jets``, ``data.reference``) are
identified by their absolute path (a study can be planned before they exist): use a new path
or output folder when their contents change. ``data.events`` may also name ``root://`` and
``https://`` URLs (identified by the URL) and coffea fileset JSONs (identified by the files,
trees, datasets and metadata they list, so a copy of the fileset elsewhere is the same data).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepscale.config import load_config, to_dict
from hepscale.study.config import StudyConfig

if TYPE_CHECKING:
    from hepscale.tasks.spec import TaskSpec

__all__ = ["JETS_FILE", "data_keys", "data_paths", "generator_configs", "figure_label", "folder_label",
           "folder_task", "label_for_data", "settings_hash"]

#: the processed jets of a study, relative to the study folder
JETS_FILE = "data/jets/jets.parquet"


def settings_hash(obj: Any) -> str:
    """12 hex digits of the SHA-256 of ``obj`` as sorted JSON (the key of a data step)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _file_identity(path: str) -> dict[str, Any]:
    from hepscale.jets.inputs import is_fileset, is_remote, read_fileset

    if is_remote(path):
        return {"path": path}
    if is_fileset(path) and Path(path).is_file():
        return {"fileset": [[f.path if is_remote(f.path) else str(Path(f.path).resolve()), f.tree, f.dataset,
                             f.metadata] for f in read_fileset(path)]}
    return {"path": str(Path(path).resolve())}


def _process_config(study: StudyConfig) -> dict[str, Any]:
    from hepscale.jets.config import JetProcessorConfig

    cfg = load_config(JetProcessorConfig, study.data.process.config)
    return to_dict(cfg)


def generator_configs(study: StudyConfig) -> list[Any]:
    """The :class:`hepscale.events.pythia.GeneratorConfig` of each process of ``data.generate``."""
    from hepscale.events.pythia import GeneratorConfig

    g = study.data.generate
    assert g is not None
    return [GeneratorConfig(process=p, events=g.events, seed=g.seed + i, pthat_min=g.pthat_min)
            for i, p in enumerate(g.processes)]


def data_keys(study: StudyConfig) -> dict[str, str]:
    """Settings hashes (12 hex digits) of the data steps: ``jets`` (source + processing) and
    those of the task's prepared data (:meth:`hepscale.tasks.spec.TaskSpec.data_keys`)."""
    from hepscale._version import __version__

    d = study.data
    if d.jets:
        jets_key = settings_hash({"jets": _file_identity(d.jets)})
    else:
        if d.generate is not None:
            source: Any = [dataclasses.asdict(c) for c in generator_configs(study)]
        else:
            source = [_file_identity(f) for f in d.events]
        jets_key = settings_hash({"source": source, "process": _process_config(study), "chunksize": d.process.chunksize})
    return {"jets": jets_key, **study.spec.data_keys(study, jets_key, __version__)}


def data_paths(study: StudyConfig) -> dict[str, str]:
    """Paths of the data, relative to the study folder (or absolute for external inputs):
    ``jets``, and the task's (:meth:`hepscale.tasks.spec.TaskSpec.data_paths`)."""
    keys = data_keys(study)
    d = study.data
    jets = str(Path(d.jets).resolve()) if d.jets else JETS_FILE
    return {"jets": jets, **study.spec.data_paths(study, keys)}


def figure_label(study: StudyConfig) -> str:
    """The experiment label of the study's figures (:func:`hepscale.plotting.style.cms_label`):
    ``study.label`` when set, else following the data: ``"Pythia 8"`` for jets generated with the
    embedded Pythia 8 (no detector, no experiment named), ``"Open Data"`` for CMS NanoAOD files
    processed by the study (``data.events``), ``"Simulation"`` for an existing jet dataset
    (``data.jets``; set ``label`` for collision data or a non-CMS simulation)."""
    return label_for_data(study.label, generated=study.data.generate is not None, events=bool(study.data.events))


def folder_label(study_dir: str | os.PathLike[str]) -> str:
    """The experiment label of a study folder's figures: :func:`figure_label` of its ``study.yaml``
    (read without validation), ``"Simulation"`` without one."""
    from hepscale.config import read_yaml
    from hepscale.study.folder import STUDY_YAML

    path = Path(study_dir) / STUDY_YAML
    raw = read_yaml(path) if path.is_file() else {}
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    return label_for_data(raw.get("label"), generated=bool(data.get("generate")), events=bool(data.get("events")))


def folder_task(study_dir: str | os.PathLike[str]) -> TaskSpec:
    """The task spec of a study folder: the ``task`` of its ``study.yaml`` (read without
    validation), the default task without one."""
    from hepscale.config import read_yaml
    from hepscale.study.folder import STUDY_YAML
    from hepscale.tasks import DEFAULT_TASK, task_spec

    path = Path(study_dir) / STUDY_YAML
    raw = read_yaml(path) if path.is_file() else {}
    return task_spec(raw.get("task", DEFAULT_TASK))


def label_for_data(label: str | None, *, generated: bool, events: bool) -> str:
    """The rule of :func:`figure_label` on the raw settings."""
    if label:
        return str(label)
    if generated:
        return "Pythia 8"
    return "Open Data" if events else "Simulation"
