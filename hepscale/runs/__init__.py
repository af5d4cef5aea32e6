"""Runs: the run folder (one owner of its files), the ``result.json`` schema and the runs table.

- :mod:`~hepscale.runs.folder`: :class:`RunFolder` (paths, "finished", atomic result merge, lock);
- :mod:`~hepscale.runs.result`: :class:`RunResult`, the keys every ``result.json`` has;
- :mod:`~hepscale.runs.table`: every ``result.json`` of a study gathered into one table, the
  only input of the fitter.
"""

from __future__ import annotations

from hepscale.runs.folder import RUNS_DIR, RunFolder, RunLockedError
from hepscale.runs.result import (
    DEFAULT_COLUMNS,
    REQUIRED_KEYS,
    RunResult,
    validate_result,
)

__all__ = [
    "DEFAULT_COLUMNS",
    "REQUIRED_KEYS",
    "RUNS_DIR",
    "RunFolder",
    "RunLockedError",
    "RunResult",
    "apply_filters",
    "flatten",
    "gather_runs",
    "parse_filter",
    "read_runs_table",
    "validate_result",
]

_TABLE = ("apply_filters", "flatten", "gather_runs", "parse_filter", "read_runs_table")


def __getattr__(name: str) -> object:  # the runs table needs pandas: imported when first used
    if name in _TABLE:
        from hepscale.runs import table

        return getattr(table, name)
    raise AttributeError(f"module 'hepscale.runs' has no attribute {name!r}")
