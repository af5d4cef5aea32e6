"""The data of a study: generate, process and tokenize (each step cached), and the SWD reference;
a tagging study splits its jets into classes instead of tokenizing them.

Each step is skipped when its output exists and its stamp (``.hepscale-stamp.json``) records
the same settings hash (:func:`hepscale.study.data.data_keys`). The reference of the SWD is
the validation split of the token dataset (checked token by token against ``val.bin``),
unless ``data.reference`` names a jet dataset. A tagging study checks that its jets have the
fields of its input feature sets, then writes the train/validation/test splits of its classes
(:func:`hepscale.tagging.data.prepare_tagging_data`). Processing needs a coffea processor, passed in
as ``processor_factory`` by the command layer (the library never imports ``processors``); dask
clients come from :func:`hepscale.jets.cluster.dask_client`.
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
from hepscale.study.data import (
    JETS_FILE,
    TAGGING_INFO,
    TOKENS_INFO,
    data_keys,
    data_paths,
    generator_configs,
)

__all__ = ["STAMP", "prepare"]

logger = logging.getLogger(__name__)

#: stamp of a cached data step: its settings hash, settings and code version
STAMP = ".hepscale-stamp.json"


def _stamp_ok(folder: Path, key: str, output: Path) -> bool:
    stamp = folder / STAMP
    if not output.exists() or not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text(encoding="utf-8")).get("key") == key
    except json.JSONDecodeError:
        return False


def _write_stamp(folder: Path, key: str, settings: Mapping[str, Any]) -> None:
    from hepscale._io import atomic_write_json
    from hepscale._version import code_version

    atomic_write_json(folder / STAMP, {"key": key, "settings": dict(settings), "code_version": dict(code_version())})


def _dask_client(study: StudyConfig) -> Any:
    """A context manager yielding a dask client as ``data.process`` asks (local, address, HTCondor)."""
    from hepscale.jets.cluster import dask_client

    p = study.data.process
    return dask_client(workers=p.workers, scheduler=p.scheduler, site=p.site, jobs=p.dask_jobs)


def _validation_jets(jets_path: str, tokens_dir: Path) -> Any:
    """The jets of the validation split of ``tokens_dir``, checked token by token against ``val.bin``."""
    import numpy as np

    from hepscale.jets.dataset import read_jets
    from hepscale.tokens.tokenizer import Tokenizer, load_tokens, split_indices

    val, tok = load_tokens(tokens_dir, "val")
    info = json.loads((tokens_dir / TOKENS_INFO).read_text(encoding="utf-8"))
    cfg = tok.config
    jets = read_jets(jets_path)
    n = len(jets)
    if n != info["n_train_jets"] + info["n_val_jets"]:
        raise StudyError(f"{jets_path} holds {n} jets, the token split of {tokens_dir} "
                         f"{info['n_train_jets']} + {info['n_val_jets']}; re-run the preparation")
    ref = jets[split_indices(n, cfg)[1]]
    tokens, offsets = Tokenizer(cfg).encode_jets(ref)
    if not (np.array_equal(offsets, val.offsets) and np.array_equal(np.asarray(tokens), np.asarray(val.tokens))):
        raise StudyError(f"the validation jets of {jets_path} do not reproduce {tokens_dir}/val.bin")
    return ref


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
    if _stamp_ok(jets_dir, key, jets_file):
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
    _write_stamp(jets_dir, key, {"inputs": [str(p) for p in inputs], "process": to_dict(pcfg)})


def _prepare_tagging(study: StudyConfig, jets_path: str, folder: Path, key: str) -> None:
    """Split the jets into the tagging dataset ``folder`` unless up to date; the jets must have
    the fields of every feature set of the study."""
    from hepscale.study.tagging import check_jets_fields
    from hepscale.tagging.data import prepare_tagging_data

    if _stamp_ok(folder, key, folder / TAGGING_INFO):
        logger.info("tagging data: up to date (%s)", folder)
        return
    check_jets_fields(study, jets_path)
    t = study.data.tagging
    assert t is not None
    prepare_tagging_data(jets_path, folder, classes=tuple(t.classes), fractions=tuple(t.fractions), seed=t.seed,
                         balance=t.balance)
    _write_stamp(folder, key, {"jets": jets_path, "tagging": to_dict(t)})


def prepare(study: StudyConfig, study_dir: str | os.PathLike[str], *, jobs: int = 2, client: Any = None,
            progress: bool = False, processor_factory: Callable[[Any], Any] | None = None) -> dict[str, str]:
    """Generate, process and tokenize the data of a study (each step cached), and write the
    reference; a tagging study writes its tagging dataset instead of tokens and reference.

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
        absolute): ``jets``, ``tokens`` and ``reference``, or for tagging ``jets`` and ``tagging``.

    Raises
    ------
    StudyError
        When an input is missing, no processor is given for events to process, the jets do
        not reproduce the token split, or (tagging) they lack the fields of a feature set.
    """
    from hepscale.jets.dataset import write_jets
    from hepscale.tokens.tokenizer import TokenizerConfig, tokenize_dataset

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
    if study.task == "tagging":
        _prepare_tagging(study, jets_path, root / paths["tagging"], keys["tagging"])
        return paths
    tokens_dir = root / paths["tokens"]
    if _stamp_ok(tokens_dir, keys["tokens"], tokens_dir / TOKENS_INFO):
        logger.info("tokens: up to date (%s)", tokens_dir)
    else:
        tokenize_dataset(jets_path, tokens_dir, config=TokenizerConfig(**(d.tokenizer or {})))
        _write_stamp(tokens_dir, keys["tokens"], {"jets": jets_path, "tokenizer": dict(d.tokenizer or {})})
    if not d.reference:
        ref_path = root / paths["reference"]
        if not ref_path.is_file():
            ref = _validation_jets(jets_path, tokens_dir)
            write_jets(ref_path, ref, metadata={"kind": "reference", "source": jets_path,
                                                "tokens": paths["tokens"], "split": "val"})
            logger.info("reference: %d validation jets -> %s", len(ref), ref_path)
    return paths
