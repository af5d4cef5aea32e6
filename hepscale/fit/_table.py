"""The runs table as an analysis sees it: options, the column of each role, JSON-ready output.

Private module of :mod:`hepscale.fit.analysis`, which re-exports :data:`ANALYSES`,
:class:`FitOptions`, :class:`FitOutput` and :func:`default_columns`. A *role* is what a column
means to a fit (``N``, ``D``, ``C``, ``y``, ``U``, ``metric`` ...); :class:`FitOptions` maps every
role to a column of the runs table, and an error names the column, the role and its flag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hepscale.fit.fitting import DEFAULT_HUBER_DELTA
from hepscale.runs.result import DEFAULT_COLUMNS

__all__ = [
    "ANALYSES",
    "FLAGS",
    "FitOptions",
    "FitOutput",
    "axis_label",
    "column_if_present",
    "data_record",
    "default_columns",
    "inputs_record",
    "json_ready",
    "optional_column",
    "percentile_ci",
    "read_column",
    "variable_names",
]

#: every value of ``--law``
ANALYSES: tuple[str, ...] = (
    "power", "power-offset", "log", "chinchilla", "isoflop", "frontier", "repetition", "proxy", "window",
)

#: command-line flag of each column role, for messages
FLAGS = {"N": "--n-col", "D": "--d-col", "C": "--c-col", "y": "--y-col", "U": "--u-col",
         "y_err": "--y-err-col", "metric": "--metric-col", "metric_err": "--metric-err-col",
         "positions": "--positions-col"}


def default_columns() -> dict[str, str | None]:
    """Default column of every role in our own runs table (DESIGN.md)."""
    cols: dict[str, str | None] = dict(DEFAULT_COLUMNS)
    cols.update({"y_err": None, "metric": "evaluation.swd.mean", "metric_err": None,
                 "positions": "val_loss_per_position"})
    return cols


@dataclass
class FitOptions:
    """Options of :func:`analyse` (the command-line flags of ``python -m hepscale.fit``)."""

    law: str = "chinchilla"
    #: variable of single-variable laws and of the learnable window: "N", "D" or "C"
    x: str = "N"
    columns: dict[str, str | None] = field(default_factory=default_columns)
    #: residuals in "log" or "linear" y; None: the law's default
    y_scale: str | None = None
    delta: float = DEFAULT_HUBER_DELTA
    n_bootstrap: int = 1000
    #: warm starts per bootstrap resample (distinct optima of the full fit); 0: the full grid
    bootstrap_starts: int = 3
    seed: int = 0
    level: float = 0.95
    n_jobs: int = 1
    #: starting grid of the chinchilla law: "data" (adapted to the data) or "epoch" (fixed, 4500 points)
    grid: str = "data"
    #: compute budgets (FLOPs) at which to report the compute-optimal allocation
    budgets: list[float] | None = None
    budget_rtol: float = 0.05
    frontier_law: str = "power"
    window_frac: float = 0.0
    window_z: float = 2.0
    #: data unit of the runs for axis labels: "tokens" (generative models) or "jets" (taggers)
    data_unit: str = "tokens"
    progress: bool = False


@dataclass
class FitOutput:
    """JSON result and plot data of one analysis."""

    result: dict[str, Any]
    plot: dict[str, Any] = field(default_factory=dict)


def read_column(table: pd.DataFrame, options: FitOptions, role: str) -> np.ndarray:
    """The values of the column of ``role`` as floats; ``KeyError``/``ValueError`` name the column."""
    name = options.columns.get(role)
    if name is None:
        raise KeyError(f"no column given for {role} ({FLAGS.get(role, role)})")
    if name not in table.columns:
        available = ", ".join(map(str, list(table.columns)[:30]))
        raise KeyError(f"column {name!r} ({role}, {FLAGS.get(role, role)}) not in the runs table; "
                       f"columns: {available}")
    values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValueError(f"column {name!r} ({role}) has {len(bad)} non-finite or non-numeric value(s), "
                         f"e.g. at row(s) {bad[:5].tolist()}")
    return values


def variable_names(options: FitOptions, roles: dict[str, str]) -> dict[str, str]:
    """Column name of each law variable (``roles``: variable -> role), for error messages."""
    return {var: str(options.columns.get(role)) for var, role in roles.items()}


def json_ready(value: Any) -> Any:
    """JSON-safe: NaN and inf become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def inputs_record(options: FitOptions, roles: dict[str, str], n_rows: int) -> dict[str, Any]:
    """The ``inputs`` section of a result: law, columns of the roles, rows and fit settings."""
    return {
        "law": options.law,
        "columns": {var: options.columns.get(role) for var, role in roles.items()},
        "n_rows": n_rows, "y_scale": options.y_scale, "huber_delta": options.delta,
        "seed": options.seed, "n_bootstrap": options.n_bootstrap,
    }


def data_record(table: pd.DataFrame, columns: Iterable[str | None]) -> dict[str, list[Any]]:
    """The values of ``columns`` the fit used (recorded in the JSON so that the fit can be redone)."""
    out: dict[str, list[Any]] = {}
    for name in columns:
        if name and name in table.columns and pd.api.types.is_numeric_dtype(table[name]):
            out[str(name)] = table[name].astype(float).tolist()
    if "run_id" in table.columns:
        out["run_id"] = table["run_id"].astype(str).tolist()
    return out


def optional_column(table: pd.DataFrame, options: FitOptions, role: str) -> np.ndarray | None:
    """The column of ``role`` (as :func:`read_column`), or None when no column is given for it."""
    name = options.columns.get(role)
    return read_column(table, options, role) if name else None


def axis_label(options: FitOptions, role: str) -> str:
    """Axis label of a role in words (:func:`hepscale.plotting.labels.run_column_label`), e.g.
    ``"Non-embedding parameters N"`` for ``n_params_non_embedding``; the column itself is
    recorded in the result's ``inputs``."""
    from hepscale.plotting.labels import run_column_label

    return run_column_label(options.columns.get(role), role=role, unit=options.data_unit)


def column_if_present(table: pd.DataFrame, options: FitOptions, role: str) -> np.ndarray | None:
    """The column of ``role``, or None when none is given or the table has no such column."""
    name = options.columns.get(role)
    if not name or name not in table.columns:
        return None
    return read_column(table, options, role)


def percentile_ci(values: np.ndarray, level: float) -> list[float]:
    """Percentile interval at ``level`` of the finite ``values`` (``[nan, nan]`` when none)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return [math.nan, math.nan]
    tail = 50.0 * (1.0 - level)
    return [float(v) for v in np.percentile(values, [tail, 100.0 - tail])]
