"""The data of a study: generate and process the events into jets (each step cached), then
what the study's task prepares from them (:meth:`hepscale.tasks.spec.TaskSpec.prepare`: a
generation study's tokens and SWD reference, a tagging study's class splits).

Each step is skipped when its output exists and its stamp (``.hepscale-stamp.json``) records
the same settings hash (:func:`hepscale.study.data.data_keys`; :func:`stamp_ok`,
:func:`write_stamp`). Processing needs a coffea processor, passed in as ``processor_factory`` by
the command layer (the library never imports ``processors``); dask clients come from
:func:`hepscale.condor.dask.dask_client`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hepscale.config import load_config, to_dict
from hepscale.study.config import StudyConfig, StudyError
from hepscale.study.data import JETS_FILE, data_keys, data_paths, generator_configs

__all__ = ["STAMP", "prepare", "stamp_ok", "write_stamp"]

logger = logging.getLogger(__name__)

#: stamp of a cached data step: its settings hash, settings and code version
STAMP = ".hepscale-stamp.json"


def stamp_ok(folder: Path, key: str, output: Path) -> bool:
    """True when ``output`` exists and the stamp of ``folder`` records the settings hash ``key``."""
    stamp = folder / STAMP
    if not output.exists() or not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text(encoding="utf-8")).get("key") == key
    except json.JSONDecodeError:
        return False


def write_stamp(folder: Path, key: str, settings: Mapping[str, Any]) -> None:
    """Record the settings hash ``key`` and ``settings`` of a finished data step in ``folder``."""
    from hepscale._io import atomic_write_json
    from hepscale._version import code_version

    atomic_write_json(folder / STAMP, {"key": key, "settings": dict(settings), "code_version": dict(code_version())})


def _dask_client(study: StudyConfig) -> Any:
    """A context manager yielding a dask client as ``data.process`` asks (local, address, HTCondor)."""
    from hepscale.condor.dask import dask_client

    p = study.data.process
    return dask_client(workers=p.workers, scheduler=p.scheduler, site=p.site, jobs=p.dask_jobs)


def _prepare_jets(study: StudyConfig, root: Path, key: str, *, jobs: int, client: Any, progress: bool,
                  processor_factory: Callable[[Any], Any] | None) -> None:
    """Generate (or take) the events and process them into ``data/jets`` unless up to date."""
    from hepscale.events.pythia import already_generated, generate
    from hepscale.jets.config import JetProcessorConfig
    from hepscale.jets.inputs import is_remote
    from hepscale.jets.processing import process_files

    d = study.data
    jets_file = root / JETS_FILE
    jets_dir = jets_file.parent
    if stamp_ok(jets_dir, key, jets_file):
        logger.info("jets: up to date (%s)", jets_dir)
        return
    if d.generate is not None:
        inputs: list[Any] = []
        for cfg in generator_configs(study):
            path = root / "data" / "events" / f"{cfg.process}.root"
            if already_generated(path, cfg):
                logger.info("events: reusing %s", path)
            else:
                generate(cfg, path, jobs=jobs, progress=progress)
            inputs.append(path)
    else:
        inputs = list(d.events)  # files, root:// or https:// URLs, coffea fileset JSONs
        missing = [p for p in inputs if not is_remote(p) and not Path(p).is_file()]
        if missing:
            raise StudyError(f"study {study.name}: data.events: file(s) {', '.join(missing)} do not exist")
    if processor_factory is None:
        raise StudyError(f"study {study.name}: processing the events needs a processor (processor_factory)")
    pcfg = load_config(JetProcessorConfig, d.process.config)
    ctx = contextlib.nullcontext(client) if client is not None else _dask_client(study)
    with ctx as cl:
        process_files(inputs, jets_dir, processor=processor_factory(pcfg), client=cl, chunksize=d.process.chunksize,
                      progress=progress)
    write_stamp(jets_dir, key, {"inputs": [str(p) for p in inputs], "process": to_dict(pcfg)})


def prepare(study: StudyConfig, study_dir: str | os.PathLike[str], *, jobs: int = 2, client: Any = None,
            progress: bool = False, processor_factory: Callable[[Any], Any] | None = None) -> dict[str, str]:
    """Generate and process the events of a study into jets, then prepare the task's data from
    them (each step cached).

    Parameters
    ----------
    study_dir
        The study folder; outputs go to its ``data/``.
    jobs
        Generator processes.
    client
        An existing ``dask.distributed.Client`` for the processing (else from ``data.process``).
    progress
        Show progress bars.
    processor_factory
        Makes the coffea processor from a :class:`hepscale.jets.config.JetProcessorConfig`
        (``processors.jets.JetProcessor``; the command layer passes it). Needed when events
        are processed.

    Returns
    -------
    dict
        The paths of :func:`hepscale.study.data.data_paths` (relative to ``study_dir`` or
        absolute): ``jets`` and the task's.

    Raises
    ------
    StudyError
        When an input is missing, no processor is given for events to process, or the task
        cannot prepare its data from the jets.
    """
    root = Path(study_dir)
    paths = data_paths(study)
    keys = data_keys(study)
    d = study.data
    if not d.jets:
        _prepare_jets(study, root, keys["jets"], jobs=jobs, client=client, progress=progress,
                      processor_factory=processor_factory)
    jets_path = paths["jets"] if d.jets else str(root / paths["jets"])
    if not Path(jets_path).exists():
        raise StudyError(f"study {study.name}: data.jets: {jets_path} does not exist")
    study.spec.prepare(study, jets_path, root, paths, keys)
    return paths
