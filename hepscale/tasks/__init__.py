"""Training tasks as plug-ins: one folder per task behind one spec, and one registry.

Every task (``generation``: next-token prediction on jet tokens; ``tagging``: jet
classification) is a folder ``hepscale/tasks/<name>/`` holding everything specific to it, and a
:class:`~hepscale.tasks.spec.TaskSpec` that the study, the plan, the executors, the DAG writer,
the runs table and the command layer ask; nothing outside ``hepscale/tasks/`` asks which task
it is.

The registry maps a task name (the ``task:`` key of a training config, a study and
``result.json``) to its spec:

- the built-in tasks (:data:`BUILTIN`);
- the ``hepscale.tasks`` entry points of installed packages (``name = "pkg.module:SPEC"``, read
  once per process);
- ``HEPSCALE_TASKS``: a comma-separated list of ``module:attribute`` specs, read at every lookup
  (a task defined outside an installed package, e.g. in a test).

A spec may name legacy names of its task (:attr:`~hepscale.tasks.spec.TaskSpec.aliases`):
``task: classification`` in a training config written before the vocabulary was unified reads
as ``tagging``.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hepscale.config import ConfigError

if TYPE_CHECKING:
    from hepscale.tasks.spec import TaskSpec

__all__ = ["BUILTIN", "DEFAULT_TASK", "ENV_VAR", "ENTRY_POINT_GROUP", "task_spec", "task_names", "all_specs",
           "canonical_task", "config_task"]

#: the built-in tasks: name -> ``module:attribute`` of the spec (the one registry line of a task)
BUILTIN = {
    "generation": "hepscale.tasks.generation:SPEC",
    "tagging": "hepscale.tasks.tagging:SPEC",
}

#: the task of a training config or study without a ``task`` key
DEFAULT_TASK = "generation"
#: more task specs, ``module:attribute`` separated by commas
ENV_VAR = "HEPSCALE_TASKS"
#: the entry-point group of task specs of installed packages
ENTRY_POINT_GROUP = "hepscale.tasks"

_loaded: dict[str, TaskSpec] = {}


#: what the registry checks a spec has (the rest of :class:`hepscale.tasks.spec.TaskSpec` is asked when used)
_REQUIRED = ("name", "aliases", "unit", "keys", "train_config_class", "trainer_task", "study_class")


def _load(target: str, where: str) -> TaskSpec:
    module, _, attr = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module.strip()), attr.strip() or "SPEC")
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{where}: cannot load the task spec {target!r}: {err}") from err
    missing = [m for m in _REQUIRED if not hasattr(obj, m)]
    if missing:
        raise ConfigError(f"{where}: {target!r} is not a task spec (a hepscale.tasks.spec.TaskSpec): it has no "
                          f"{', '.join(missing)}")
    return obj  # type: ignore[no-any-return]


def _sources() -> list[tuple[str | None, str, str]]:
    """``(name or None, module:attribute, where)`` of every registered spec, built-ins first."""
    out: list[tuple[str | None, str, str]] = [(n, t, "hepscale.tasks.BUILTIN") for n, t in BUILTIN.items()]
    out += _entry_points()
    out += [(None, t.strip(), ENV_VAR) for t in os.environ.get(ENV_VAR, "").split(",") if t.strip()]
    return out


@functools.lru_cache(maxsize=1)
def _entry_points() -> list[tuple[str | None, str, str]]:
    """The ``hepscale.tasks`` entry points of the installed packages, read once per process
    (reading every package's metadata takes tens of milliseconds)."""
    from importlib.metadata import entry_points

    return [(ep.name, ep.value, f"entry point {ep.name} ({ep.value})") for ep in entry_points(group=ENTRY_POINT_GROUP)]


def all_specs() -> dict[str, TaskSpec]:
    """Every registered task spec by name (built-ins, entry points, ``HEPSCALE_TASKS``).

    Raises
    ------
    ConfigError
        When a registered spec cannot be loaded, or two specs claim one name.
    """
    specs: dict[str, TaskSpec] = {}
    for name, target, where in _sources():
        key = f"{where}|{target}"
        spec = _loaded.get(key) or _load(target, where)
        _loaded[key] = spec
        if name is not None and name != spec.name:
            raise ConfigError(f"{where}: the spec {target!r} is named {spec.name!r}, not {name!r}")
        if spec.name in specs and specs[spec.name] is not spec:
            raise ConfigError(f"{where}: a task named {spec.name!r} is registered twice")
        specs[spec.name] = spec
    return specs


def task_names() -> tuple[str, ...]:
    """The names of every registered task."""
    return tuple(all_specs())


def canonical_task(name: object) -> str:
    """The registered name of ``name`` (a task name or one of its aliases).

    Raises
    ------
    ConfigError
        When no registered task has that name.
    """
    specs = all_specs()
    if isinstance(name, str):
        if name in specs:
            return name
        for spec in specs.values():
            if name in spec.aliases:
                return spec.name
    raise ConfigError(f"task: expected one of {list(specs)}, got {name!r}")


def task_spec(name: object = DEFAULT_TASK) -> TaskSpec:
    """The spec of the task ``name`` (or of one of its aliases).

    Raises
    ------
    ConfigError
        When no registered task has that name.
    """
    return all_specs()[canonical_task(name)]


def config_task(path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> str:
    """The task that a YAML config (a training config or a study) and its ``key=value`` overrides
    name: ``task=...`` among the overrides (the last wins), else the file's ``task`` key, else
    :data:`DEFAULT_TASK`; as its registered name.

    Raises
    ------
    ConfigError
        On a task that is not registered, naming where it was set.
    """
    from hepscale.config import read_yaml

    task: object = DEFAULT_TASK
    where = "the default"
    if path is not None:
        data = read_yaml(path)
        if "task" in data:
            task, where = data["task"], str(path)
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip() == "task":
            task, where = value.strip(), "the command line"
    try:
        return canonical_task(task)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err
