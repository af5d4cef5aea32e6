"""The task registry: built-in tasks, aliases, and specs registered through HEPSCALE_TASKS."""

from __future__ import annotations

import sys
import types

import pytest

from hepscale.config import ConfigError
from hepscale.tasks import canonical_task, task_names, task_spec


def test_builtin_tasks_and_the_alias_of_earlier_versions() -> None:
    assert task_names()[:2] == ("generation", "tagging")
    assert task_spec() is task_spec("generation")  # the default task
    assert canonical_task("classification") == "tagging" and task_spec("classification") is task_spec("tagging")
    assert task_spec("tagging").run_id_name == "classification"
    with pytest.raises(ConfigError, match=r"task: expected one of \['generation', 'tagging'\], got 'nope'"):
        task_spec("nope")


def _module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: object) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    monkeypatch.setitem(sys.modules, name, module)


def test_a_registered_object_that_is_no_spec_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _module(monkeypatch, "_not_a_task", SPEC=object())
    monkeypatch.setenv("HEPSCALE_TASKS", "_not_a_task:SPEC")
    with pytest.raises(ConfigError, match=r"HEPSCALE_TASKS: '_not_a_task:SPEC' is not a task spec .* it has no name"):
        task_names()
    monkeypatch.setenv("HEPSCALE_TASKS", "_no_such_module:SPEC")
    with pytest.raises(ConfigError, match=r"HEPSCALE_TASKS: cannot load the task spec '_no_such_module:SPEC'"):
        task_names()


def test_two_specs_of_one_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from hepscale.tasks.generation.spec import GenerationSpec

    _module(monkeypatch, "_second_generation", SPEC=GenerationSpec())
    monkeypatch.setenv("HEPSCALE_TASKS", "_second_generation:SPEC")
    with pytest.raises(ConfigError, match=r"a task named 'generation' is registered twice"):
        task_spec("generation")
