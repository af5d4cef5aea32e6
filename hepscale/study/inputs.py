"""A study's inputs from outside its folder, as the HTCondor jobs see them.

``data.events``, ``data.jets``, ``data.process.config`` and ``data.reference`` may name files
anywhere on the access point; a worker without a shared filesystem sees only what is
transferred. ``study condor`` links each such file into the study folder as
``inputs/KEY-NAME`` (:func:`external_inputs`, :func:`link_inputs`; HTCondor reads a linked file
through the link) and transfers that relative path, so submit files and DAGs hold no absolute
path; the jobs' commands name the transferred copy.

The data's identity (:func:`hepscale.study.data.data_keys`) comes from the inputs' absolute
paths on the access point, and the prepared data of the study is named after it
(``data/tokens-<key>``) in every run's config. The prepare job therefore loads the study with
the transferred copies (:func:`node_studies`), prepares the data under the keys of those copies
and renames it to the keys of the access point's paths (:func:`rename_prepared`): the data that
comes back is the data the training jobs expect.

Events on storage are not transferred: a ``root://`` or ``https://`` URL in ``data.events`` is
read by the prepare job from the storage it names (a site that asks for a grid proxy to read it
needs ``use_x509userproxy`` in the profile's ``extra``). A coffea fileset JSON is transferred, and
must then list URLs only: a local file it lists is not on the worker (an error naming both).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepscale.config import ConfigError
from hepscale.jets.inputs import is_fileset, is_remote, read_fileset

__all__ = ["INPUTS_DIR", "ExternalInput", "external_inputs", "link_inputs", "node_studies", "rename_prepared"]

#: the study folder's links to its inputs from outside it
INPUTS_DIR = "inputs"


@dataclass(frozen=True)
class ExternalInput:
    """One input from outside the study folder: its study key, absolute path on the access
    point and name in the study folder (= on the worker)."""

    key: str
    source: str
    name: str


def _name(slug: str, path: str) -> str:
    return f"{INPUTS_DIR}/{slug}-{Path(path).name}"


def external_inputs(study: Any, *, prepare: bool = True) -> list[ExternalInput]:
    """The study's inputs from outside its folder: those of the prepare job (``prepare``) and
    those of its task's jobs after training (e.g. the SWD reference ``data.reference``,
    :meth:`hepscale.tasks.spec.TaskSpec.external_inputs`)."""
    d = study.data
    out = []
    if prepare:
        out += [ExternalInput(f"data.events[{i}]", str(Path(p).resolve()), _name(f"events{i}", p))
                for i, p in enumerate(d.events) if not is_remote(p)]  # URLs: read from storage
        for item in out:
            if is_fileset(item.source) and Path(item.source).is_file():
                local = [f.path for f in read_fileset(item.source) if not is_remote(f.path)]
                if local:
                    raise ConfigError(f"{item.key}: fileset {item.source} lists local file(s) ({local[0]}"
                                      f"{', ...' if len(local) > 1 else ''}), which an HTCondor job cannot read: "
                                      "list root:// (or https://) URLs of their storage, or give the files in "
                                      "data.events")
        if d.jets:
            out.append(ExternalInput("data.jets", str(Path(d.jets).resolve()), _name("jets", d.jets)))
        elif d.process.config and d.events:
            out.append(ExternalInput("data.process.config", str(Path(d.process.config).resolve()),
                                     _name("process", d.process.config)))
    out += [ExternalInput(f.key, f.path, _name(f.slug, f.path)) for f in study.spec.external_inputs(study)]
    return out


def link_inputs(root: Path, inputs: list[ExternalInput]) -> None:
    """Link each input into the study folder (``inputs/``), replacing a stale link.

    Raises
    ------
    ConfigError
        When an input does not exist (naming its study key and path).
    CondorError
        When its name holds a comma.
    """
    from hepscale.condor._bindings import CondorError

    for item in inputs:
        source = Path(item.source)
        if "," in item.name:
            raise CondorError(f"{item.key}: {item.source!r} holds a comma, which HTCondor reads as a list separator "
                              "in transfer_input_files; rename or move it to a path without commas")
        if not source.exists():
            raise ConfigError(f"{item.key}: {source} does not exist (the HTCondor jobs need it transferred)")
        link = root / item.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if link.is_symlink() and os.readlink(link) == str(source):
                continue
            if link.is_dir() and not link.is_symlink():
                raise ConfigError(f"{item.key}: {link} exists and is a folder; remove it")
            link.unlink()
        link.symlink_to(source)


def _with_paths(study: Any, paths: dict[str, str]) -> Any:
    """A copy of ``study`` with the data paths of ``paths`` (study key -> path) replaced."""
    d = study.data
    events = [paths.get(f"data.events[{i}]", p) for i, p in enumerate(d.events)]
    process = dataclasses.replace(d.process, config=paths.get("data.process.config", d.process.config))
    files = {key.split(".", 1)[1]: path for key, path in paths.items()  # data.jets, the task's (data.reference)
             if key.count(".") == 1 and key.startswith("data.") and "[" not in key}
    data = dataclasses.replace(d, events=events, process=process, **files)
    return dataclasses.replace(study, data=data)


def node_studies(study_file: str | os.PathLike[str], overrides: list[str]) -> tuple[Any, Any]:
    """``(local, identity)``: the study of ``study_file`` (the study folder's ``study.yaml``) with
    its external inputs replaced by their transferred copies in the working folder (to read),
    and with the access point's paths kept where only the path counts (to name the data: the
    processor config is identified by its contents, so its copy is used).

    Raises
    ------
    ConfigError
        When a transferred copy is missing, or the study is invalid.
    """
    from hepscale.study.config import load_study

    raw = _study_unchecked(study_file, overrides)
    inputs = external_inputs(raw)
    if not inputs:
        study = load_study(study_file, overrides)
        return study, study
    missing = [f"{i.key} ({i.name})" for i in inputs if not Path(i.name).exists()]
    if missing:
        raise ConfigError(f"{study_file}: the transferred inputs {', '.join(missing)} are not in {Path.cwd()}")
    local = load_study(study_file, [*overrides, *_overrides(inputs, list(raw.data.events))])
    # the processor config and filesets are identified by their contents: their copies name the data too
    identity = _with_paths(local, {i.key: i.source for i in inputs
                                   if i.key != "data.process.config" and not is_fileset(i.source)})
    return local, identity


def _study_unchecked(study_file: str | os.PathLike[str], overrides: list[str]) -> Any:
    """The study as written (unvalidated: its external files are not here)."""
    from hepscale.config import load_config
    from hepscale.study.config import study_task
    from hepscale.tasks import task_spec

    spec = task_spec(study_task(study_file, overrides))
    return load_config(spec.study_class(), study_file, overrides=[*overrides, f"task={spec.name}"])


def _overrides(inputs: list[ExternalInput], events: list[str]) -> list[str]:
    """``data.*`` overrides naming the transferred copies (the URLs of ``events`` stay)."""
    copies = {i.key: i.name for i in inputs}
    if any(i.key.startswith("data.events[") for i in inputs):
        names = [copies.get(f"data.events[{n}]", e) for n, e in enumerate(events)]
        out = [f"data.events={json.dumps(names)}"]
    else:
        out = []
    return out + [f"{key}={name}" for key, name in copies.items() if not key.startswith("data.events[")]


def rename_prepared(root: Path, local: Any, identity: Any) -> dict[str, str]:
    """Rename the data prepared under the keys of ``local`` to those of ``identity`` (folders,
    reference file and the keys of their stamps); returns ``old -> new`` relative paths."""
    from hepscale.study.data import JETS_FILE, data_keys, data_paths
    from hepscale.study.prepare import STAMP

    keys_l, keys_i = data_keys(local), data_keys(identity)
    paths_l, paths_i = data_paths(local), data_paths(identity)
    renamed = {}
    for what in (k for k in paths_i if k != "jets"):  # what the task prepares from the jets
        old, new = paths_l.get(what), paths_i.get(what)
        if old and new and old != new and not Path(old).is_absolute() and (root / old).exists():
            target = root / new
            if target.exists():
                raise ConfigError(f"cannot rename the prepared {what} {old} to {new}: it exists")
            (root / old).rename(target)
            renamed[old] = new
    stamps = [(root / Path(JETS_FILE).parent / STAMP, keys_l["jets"], keys_i["jets"])]
    for what in (k for k in keys_i if k != "jets"):
        if what in paths_i:
            stamps.append((root / paths_i[what] / STAMP, keys_l[what], keys_i[what]))
    for stamp, old_key, new_key in stamps:
        if stamp.is_file() and old_key != new_key:
            record = json.loads(stamp.read_text(encoding="utf-8"))
            if record.get("key") == old_key:
                record["key"] = new_key
                stamp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return renamed
