"""Fits of a runs table: options, column mapping, one analysis per law, JSON-ready results.

:func:`analyse` is what ``python -m hepscale.fit`` runs; it can be called from Python with a
:class:`pandas.DataFrame` as well. :class:`FitOptions` holds everything a fit takes (the law, the
column of each role, row filters, fit and bootstrap settings, the figure's label): the fit tool
reads its command line into one (:func:`hepscale.fit.options_from_args`) and a study builds one
from its YAML. A *role* is what a column means to a fit (``N``, ``D``, ``C``, ``y``, ``U``,
``metric`` ...); :class:`FitOptions` maps every role to a column of the runs table, and an error
names the column, the role and its flag.

Every analysis (:data:`REGISTRY`, an :class:`Analysis` per value of ``law``) declares the column
roles every row it fits needs and the fewest runs it can fit (:func:`required_columns`,
:func:`min_runs`), read by the fit itself and by a study that decides whether a fit can run.
Every analysis returns a :class:`FitOutput` whose ``result`` is the JSON document written by the
tool (parameters, intervals, fit quality, inputs) and whose ``plot`` holds the arrays the figure
needs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hepscale.fit.isoflop import (
    bootstrap_isoflop,
    frontier_mask,
    group_budgets,
    isoflop_analysis,
    loglog_fit,
)
from hepscale.fit.laws import (
    DEFAULT_HUBER_DELTA,
    EPOCH_GRID,
    LAWS,
    Bootstrap,
    DataConstrainedLaw,
    LawFit,
    bootstrap_law,
    fit_law,
    get_law,
    percentile_ci,
    prediction_band,
)
from hepscale.fit.optimal import compute_optimal
from hepscale.fit.proxy import proxy_relation
from hepscale.fit.window import learnable_window, position_matrix
from hepscale.runs.result import DEFAULT_COLUMNS

__all__ = [
    "ANALYSES",
    "FLAGS",
    "REGISTRY",
    "Analysis",
    "FitOptions",
    "FitOutput",
    "analyse",
    "default_columns",
    "default_x",
    "min_runs",
    "required_columns",
]

logger = logging.getLogger(__name__)

#: command-line flag of each column role, for messages
FLAGS = {"N": "--n-col", "D": "--d-col", "C": "--c-col", "y": "--y-col", "U": "--u-col",
         "y_err": "--y-err-col", "metric": "--metric-col", "metric_err": "--metric-err-col",
         "positions": "--positions-col"}

#: the variables of single-variable laws and of the learnable window (``FitOptions.x``)
X_ROLES = ("N", "D", "C")

#: the laws the compute-optimal frontier may be fitted with (``FitOptions.frontier_law``)
FRONTIER_LAWS = ("power", "power-offset", "log")


def default_x(law: str) -> str:
    """The variable of ``law`` when none is given: D for the learnable window, N otherwise."""
    return "D" if law == "window" else "N"


def default_columns() -> dict[str, str | None]:
    """Default column of every role in our own runs table (ARCHITECTURE.md, "Tasks")."""
    cols: dict[str, str | None] = dict(DEFAULT_COLUMNS)
    cols.update({"y_err": None, "metric": "evaluation.swd.mean", "metric_err": None,
                 "positions": "val_loss_per_position"})
    return cols


@dataclass
class FitOptions:
    """Everything a fit takes (the command-line flags of ``python -m hepscale.fit``).

    ``columns`` maps a role to its column; the roles it leaves out keep their default column
    (:func:`default_columns`). :meth:`check` tells which field is wrong; :func:`analyse` calls it.
    """

    law: str = "chinchilla"
    #: variable of single-variable laws and of the learnable window: "N", "D" or "C" (see :func:`default_x`)
    x: str = "N"
    columns: dict[str, str | None] = field(default_factory=default_columns)
    #: row filters 'COL OP VALUE' of the runs table (:func:`hepscale.runs.table.apply_filters`), all applied
    filters: list[str] = field(default_factory=list)
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
    #: experiment label of the figure: text after 'CMS', or 'Pythia 8' for generated jets
    label: str = "Simulation"

    def __post_init__(self) -> None:
        self.columns = {**default_columns(), **self.columns}

    def errors(self) -> dict[str, str]:
        """What is wrong, by field (empty when nothing is)."""
        from hepscale.runs.table import parse_filter

        checks: list[tuple[str, bool, str]] = [
            ("law", self.law in REGISTRY, f"expected one of {list(REGISTRY)}, got {self.law!r}"),
            ("x", self.x in X_ROLES, f"expected one of {list(X_ROLES)}, got {self.x!r}"),
            ("columns", set(self.columns) <= set(FLAGS),
             f"unknown role(s) {sorted(set(self.columns) - set(FLAGS))}; roles are {list(FLAGS)}"),
            ("y_scale", self.y_scale in (None, "log", "linear"), f"expected log or linear, got {self.y_scale!r}"),
            ("delta", self.delta > 0, f"expected a positive Huber threshold, got {self.delta}"),
            ("n_bootstrap", self.n_bootstrap >= 0, f"expected an integer >= 0, got {self.n_bootstrap}"),
            ("bootstrap_starts", self.bootstrap_starts >= 0, f"expected an integer >= 0, got {self.bootstrap_starts}"),
            ("level", 0.0 < self.level < 1.0, f"expected a confidence level in (0, 1), got {self.level}"),
            ("n_jobs", self.n_jobs >= 1, f"expected at least 1 worker, got {self.n_jobs}"),
            ("grid", self.grid in ("data", "epoch"), f"expected 'data' or 'epoch', got {self.grid!r}"),
            ("budgets", self.budgets is None or all(b > 0 for b in self.budgets),
             f"expected positive compute budgets, got {self.budgets}"),
            ("budget_rtol", self.budget_rtol > 0, f"expected a positive tolerance, got {self.budget_rtol}"),
            ("frontier_law", self.frontier_law in FRONTIER_LAWS,
             f"expected a single-variable law {list(FRONTIER_LAWS)}, got {self.frontier_law!r}"),
            ("window_frac", 0.0 <= self.window_frac <= 1.0, f"expected a fraction in [0, 1], got {self.window_frac}"),
            ("data_unit", self.data_unit in ("tokens", "jets"), f"expected tokens or jets, got {self.data_unit!r}"),
        ]
        out = {name: message for name, ok, message in checks if not ok}
        for text in self.filters:
            try:
                parse_filter(text)
            except ValueError as err:
                out.setdefault("filters", str(err))
        return out

    def check(self) -> None:
        """Raise ``ValueError`` ``"<field>: <what is wrong>"`` for the first wrong field."""
        errors = self.errors()
        if errors:
            name, message = next(iter(errors.items()))
            raise ValueError(f"{name}: {message}")


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


def _status(fit: LawFit) -> list[str]:
    notes = []
    if not fit.converged:
        notes.append(f"the best fit did not converge: {fit.message}")
    if fit.at_bound:
        notes.append(f"parameter(s) at a bound of the fit: {', '.join(fit.at_bound)}")
    return notes


def _law_result(fit: LawFit, boot: Bootstrap | None, options: FitOptions, roles: dict[str, str],
                n_rows: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "law": fit.law.name,
        "formula": fit.law.formula,
        "params": dict(fit.params),
        "ci": boot.intervals() if boot else {},
        "confidence_level": options.level,
        "derived": dict(fit.derived),
        "derived_ci": boot.derived_intervals() if boot else {},
        "fit_quality": fit.quality(),
        "bootstrap": boot.summary() if boot else None,
        "warnings": _status(fit),
    }
    result["inputs"] = inputs_record(options, roles, n_rows)
    result["inputs"]["y_scale"] = fit.y_scale
    if boot and boot.n_failed:
        result["warnings"].append(f"{boot.n_failed} of {boot.n_resamples} bootstrap resamples could not be fitted")
    return result


def _fit_and_bootstrap(law_name: str, X: tuple[np.ndarray, ...], y: np.ndarray, options: FitOptions,
                       names: dict[str, str], starts: np.ndarray | None = None) -> tuple[LawFit, Bootstrap | None]:
    fit = fit_law(law_name, X, y, y_scale=options.y_scale, delta=options.delta, starts=starts, names=names)
    boot = None
    if options.n_bootstrap > 0:
        boot_starts = None
        if options.bootstrap_starts <= 0:
            boot_starts = starts if starts is not None else fit.law.starts(X, y)
        boot = bootstrap_law(fit, X, y, n_resamples=options.n_bootstrap, seed=options.seed, level=options.level,
                             n_starts=max(options.bootstrap_starts, 1), starts=boot_starts, n_jobs=options.n_jobs,
                             progress=options.progress)
    return fit, boot


def _band(fit: LawFit, boot: Bootstrap | None, X: tuple[np.ndarray, ...], level: float) -> tuple[Any, Any]:
    if boot is None or not len(boot.thetas):
        return None, None
    return prediction_band(fit.law, boot.thetas, X, level=level)


def _single(table: pd.DataFrame, options: FitOptions) -> FitOutput:
    roles = {"x": options.x, "y": "y"}
    x, y = _read_roles(table, options)
    fit, boot = _fit_and_bootstrap(options.law, (x,), y, options, variable_names(options, roles))
    result = _law_result(fit, boot, options, roles, len(table))
    grid = np.geomspace(x.min(), x.max(), 200)
    low, high = _band(fit, boot, (grid,), options.level)
    plot = {"kind": "single", "x": x, "y": y, "y_err": optional_column(table, options, "y_err"),
            "curves": [{"x": grid, "y": fit.predict(grid), "low": low, "high": high, "label": None}],
            "xlabel": axis_label(options, options.x), "ylabel": axis_label(options, "y"), "text": _law_text(fit)}
    return FitOutput(result, plot)


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return r"\infty" if value > 0 else "NaN"
    if 1e-3 <= abs(value) < 1e5 or value == 0:
        return f"{value:.4g}"
    mantissa, exponent = f"{value:.3e}".split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def _law_text(fit: LawFit) -> str:
    p = fit.params
    name = fit.law.name
    if name == "power":
        return rf"$y = ({_fmt(p['x_c'])} / x)^{{{p['alpha']:.3f}}}$"
    if name == "power-offset":
        return rf"$y = {_fmt(p['y_inf'])} + {_fmt(p['A'])}\,x^{{-{p['alpha']:.3f}}}$"
    if name == "log":
        return rf"$y = {_fmt(p['a'])} - {_fmt(p['b'])}\,\ln x$"
    if name == "chinchilla":
        return (rf"$L = {_fmt(p['E'])} + {_fmt(p['A'])}/N^{{{p['alpha']:.3f}}}"
                rf" + {_fmt(p['B'])}/D^{{{p['beta']:.3f}}}$")
    if name == "data-constrained":
        return (rf"$L = {_fmt(p['E'])} + {_fmt(p['A'])}/N'^{{{p['alpha']:.3f}}}"
                rf" + {_fmt(p['B'])}/D'^{{{p['beta']:.3f}}}$" + "\n"
                + rf"$R_D^* = {_fmt(p['R_D_star'])}$, $R_N^* = {_fmt(p['R_N_star'])}$")
    if name.startswith("repetition"):
        text = rf"$L = {_fmt(p['E'])} + {_fmt(p['B'])}/D'^{{{p['beta']:.3f}}}$"
        if "A" in p:
            text = text[:-1] + rf" + {_fmt(p['A'])}/N^{{{p['alpha']:.3f}}}$"
        return text + "\n" + rf"$R^* = {_fmt(p['R_star'])}$"
    return fit.law.formula


def _groups(values: np.ndarray, max_groups: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Group values for curves: distinct values if few, else quantile bins in log; (labels, representative)."""
    distinct = np.unique(values)
    if len(distinct) <= max_groups:
        labels = np.searchsorted(distinct, values)
        return labels, distinct
    edges = np.quantile(np.log(values), np.linspace(0, 1, max_groups + 1))
    labels = np.clip(np.searchsorted(edges, np.log(values), side="right") - 1, 0, max_groups - 1)
    reps = np.array([math.exp(np.log(values[labels == g]).mean()) if np.any(labels == g) else math.nan
                     for g in range(max_groups)])
    keep = np.isfinite(reps)
    remap = np.cumsum(keep) - 1
    return remap[labels], reps[keep]


def _chinchilla(table: pd.DataFrame, options: FitOptions) -> FitOutput:
    roles = {"N": "N", "D": "D", "y": "y"}
    N, D, y = _read_roles(table, options)
    starts = EPOCH_GRID if options.grid == "epoch" else None
    fit, boot = _fit_and_bootstrap("chinchilla", (N, D), y, options, variable_names(options, roles), starts=starts)
    result = _law_result(fit, boot, options, roles, len(table))
    budgets = options.budgets
    if not budgets:
        c = 6.0 * N * D
        decades = np.arange(math.ceil(math.log10(c.min())), math.floor(math.log10(c.max())) + 1)
        budgets = [float(10.0**k) for k in decades] or [float(np.exp(np.log(c).mean()))]
    rows = []
    for C in budgets:
        row: dict[str, Any] = {"C": C}
        best = compute_optimal(fit.params, C)
        for key in ("N_opt", "D_opt", "L_opt"):
            row[key] = float(best[key])
            if boot is not None and len(boot.thetas):
                values = np.array([float(compute_optimal(fit.law.params(t), C)[key]) for t in boot.thetas])
                row[f"{key}_ci"] = boot.ci(values)
        rows.append(row)
    result["compute_optimal"] = {"definition": "C = 6 N D; N_opt = G (C/6)^(beta/(alpha+beta)), "
                                               "D_opt = G^-1 (C/6)^(alpha/(alpha+beta)), "
                                               "G = (alpha A / (beta B))^(1/(alpha+beta))",
                                 "pair": {"N": options.columns.get("N"), "D": options.columns.get("D")},
                                 "budgets": rows}
    measured = column_if_present(table, options, "C")
    if measured is not None:  # how the frontier's C = 6 N D relates to the runs' own compute column
        ratio = measured / (6.0 * N * D)
        result["compute_optimal"]["measured_compute"] = {
            "column": options.columns.get("C"), "ratio_to_6ND_median": float(np.median(ratio)),
            "ratio_to_6ND_range": [float(ratio.min()), float(ratio.max())],
            "note": "the frontier's budgets are C = 6 N D with the fit's own N and D columns; the runs' compute "
                    "column counts padded positions and, by default, N with the embeddings",
        }
    result["inputs"]["grid"] = options.grid
    labels, reps = _groups(D)
    grid = np.geomspace(N.min(), N.max(), 150)
    curves = []
    for g, d in enumerate(reps):
        Xc = (grid, np.full_like(grid, d))
        low, high = _band(fit, boot, Xc, options.level)
        curves.append({"x": grid, "y": fit.predict(*Xc), "low": low, "high": high, "label": f"D = {d:.2g}",
                       "group": g})
    plot = {"kind": "grouped", "x": N, "y": y, "y_err": optional_column(table, options, "y_err"), "groups": labels,
            "curves": curves, "xlabel": axis_label(options, "N"), "ylabel": axis_label(options, "y"), "text": _law_text(fit)}
    return FitOutput(result, plot)


def _repetition(table: pd.DataFrame, options: FitOptions) -> FitOutput:
    D, U, y = _read_roles(table, options)
    with_n = False
    if options.columns.get("N") in table.columns:
        N = read_column(table, options, "N")
        with_n = len(np.unique(N)) > 1
    roles = {"D": "D", "U": "U", "y": "y"}
    X: tuple[np.ndarray, ...] = (D, U)
    if with_n:
        roles["N"] = "N"
        X = (D, U, N)
        logger.info("N varies over the runs: fitting repetition-n (E + A/N^alpha + B/D'^beta)")
    law = "repetition-n" if with_n else "repetition"
    fit, boot = _fit_and_bootstrap(law, X, y, options, variable_names(options, roles))
    result = _law_result(fit, boot, options, roles, len(table))
    if "log_R_star" in fit.at_bound:
        result["warnings"].append("R* at a bound: at its upper bound, repeated data shows no loss of value within "
                                  "these runs (D' = D); at its lower bound, repetition adds almost nothing")
    R_star = fit.params["R_star"]
    eff = LAWS["repetition"].effective_data(D, U, R_star)  # type: ignore[attr-defined]
    result["derived"]["definition"] = ("D' = U_D + U_D R* (1 - exp(-R_D/R*)), U_D = min(U, D), R_D = D/U_D - 1; "
                                       "max_gain = lim D'/U = 1 + R* (bounded gain of repeating data)")
    result["effective_data"] = {"epochs": (D / U).tolist(), "D_eff": eff.tolist(), "gain": (eff / U).tolist()}
    order = (lambda d, u, n: (d, u, n)) if with_n else (lambda d, u, n: (d, u))
    return FitOutput(result, _curves_by_u(table, options, fit, boot, D, U, N if with_n else D, y, order))


def _curves_by_u(table: pd.DataFrame, options: FitOptions, fit: LawFit, boot: Bootstrap | None, D: np.ndarray,
                 U: np.ndarray, N: np.ndarray, y: np.ndarray, order: Any) -> dict[str, Any]:
    """Plot of y against D, one curve per group of U at the group's geometric mean N (``order(D, U, N)``
    gives the law's variables)."""
    labels, reps = _groups(U)
    curves = []
    for g, u in enumerate(reps):
        sel = labels == g
        grid = np.geomspace(D[sel].min(), D[sel].max() * 1.0000001, 150)
        Xc = order(grid, np.full_like(grid, u), np.full_like(grid, math.exp(np.log(N[sel]).mean())))
        low, high = _band(fit, boot, Xc, options.level)
        curves.append({"x": grid, "y": fit.predict(*Xc), "low": low, "high": high, "label": f"U = {u:.2g}",
                       "group": g})
    return {"kind": "grouped", "x": D, "y": y, "y_err": optional_column(table, options, "y_err"), "groups": labels,
            "curves": curves, "xlabel": axis_label(options, "D"), "ylabel": axis_label(options, "y"),
            "text": _law_text(fit)}


def _data_constrained(table: pd.DataFrame, options: FitOptions) -> FitOutput:
    roles = {"N": "N", "D": "D", "U": "U", "y": "y"}
    N, D, U, y = _read_roles(table, options)
    fit, boot = _fit_and_bootstrap("data-constrained", (N, D, U), y, options, variable_names(options, roles))
    result = _law_result(fit, boot, options, roles, len(table))
    eff = DataConstrainedLaw.effective(fit.params, N, D, U)
    for key, what, runs in (("R_D", "R_D*", "repeats its data (D > U)"),
                            ("R_N", "R_N*", "has more parameters than compute-optimal for its unique data")):
        if not np.any(eff[key] > 0):
            result["warnings"].append(f"no run {runs}: {what} is not constrained by these runs")
    result["derived"]["definition"] = (
        "D' = U_D + U_D R_D* (1 - exp(-R_D/R_D*)), U_D = min(U, D), R_D = D/U_D - 1; "
        "N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)), U_N = min(G (G U_D)^(beta/alpha), N), R_N = N/U_N - 1; "
        "G = (alpha A / (beta B))^(1/(alpha+beta)); max_gain_D = 1 + R_D*, max_gain_N = 1 + R_N*")
    result["effective"] = {"epochs": (D / U).tolist(), **{k: v.tolist() for k, v in eff.items()}}
    return FitOutput(result, _curves_by_u(table, options, fit, boot, D, U, N, y, lambda d, u, n: (n, d, u)))


def _isoflop(table: pd.DataFrame, options: FitOptions) -> FitOutput:
    roles = {"N": "N", "D": "D", "C": "C", "y": "y"}
    N, D, C, y = _read_roles(table, options)
    for var, values in (("N", N), ("D", D), ("C", C)):
        if np.any(values <= 0):
            raise ValueError(f"column {options.columns[var]!r} ({var}) must be positive")
    if np.any(y < 0):
        raise ValueError(f"column {options.columns['y']!r} (y) has negative values")
    res = isoflop_analysis(N, D, C, y, rtol=options.budget_rtol)
    warnings = [f"budget C = {p.budget:.3g}: {p.reason}" for p in res.parabolas if not p.valid]
    n_valid = sum(p.valid for p in res.parabolas)
    if n_valid < 2:
        raise ValueError(f"isoFLOP analysis needs at least 2 budgets with a parabola minimum inside the measured "
                         f"range of N, got {n_valid} ({'; '.join(warnings) or 'no budgets'})")
    params = {k: v for k, v in res.fits.items() if k != "n_budgets_used"}
    ci: dict[str, list[float]] = {}
    boot_summary = None
    per_budget = [p.to_dict() for p in res.parabolas]
    if options.n_bootstrap > 0:
        samples = bootstrap_isoflop(N, D, C, y, rtol=options.budget_rtol, n_resamples=options.n_bootstrap,
                                    seed=options.seed, progress=options.progress)
        ci = {k: percentile_ci(samples[k], options.level) for k in params}
        for g, row in enumerate(per_budget):
            if row["valid"]:
                for key in ("N_opt", "D_opt", "L_opt"):
                    row[f"{key}_ci"] = percentile_ci(samples[f"{key}@{g}"], options.level)
        n_failed = int(np.sum(~np.isfinite(samples["a_N"])))
        boot_summary = {"method": "percentile", "resampling": "runs within each budget",
                        "confidence_level": options.level, "n_resamples": options.n_bootstrap,
                        "n_failed": n_failed, "seed": options.seed}
    result = {
        "law": "isoflop",
        "formula": "per budget: L = c2 (ln N)^2 + c1 ln N + c0; N_opt = k_N C^a_N, D_opt = k_D C^b_D, "
                   "L_opt = k_L C^-gamma_L",
        "params": params, "ci": ci, "confidence_level": options.level,
        "budgets": per_budget,
        "fit_quality": {"n_budgets": len(res.parabolas), "n_budgets_used": n_valid, "budget_rtol": options.budget_rtol},
        "bootstrap": boot_summary, "warnings": warnings, "inputs": inputs_record(options, roles, len(table)),
    }
    plot = {"kind": "isoflop", "N": N, "y": y, "labels": group_budgets(C, rtol=options.budget_rtol)[0],
            "parabolas": res.parabolas, "fits": res.fits,
            "xlabel": axis_label(options, "N"), "ylabel": axis_label(options, "y"),
            "text": (rf"$N_{{opt}} \propto C^{{{params['a_N']:.3f}}}$, "
                     rf"$D_{{opt}} \propto C^{{{params['b_D']:.3f}}}$")}
    return FitOutput(result, plot)


def _frontier(table: pd.DataFrame, options: FitOptions) -> FitOutput:
    roles = {"C": "C", "y": "y"}
    C, y = _read_roles(table, options)
    mask = frontier_mask(C, y)
    law = get_law(options.frontier_law)
    if law.variables != ("x",):
        raise ValueError(f"--frontier-law must be a single-variable law (power, power-offset, log), got {law.name!r}")
    n_front = int(mask.sum())
    if n_front < len(law.theta_names):
        raise ValueError(f"{n_front} run(s) on the frontier of {options.columns['y']!r} against "
                         f"{options.columns['C']!r}: law {law.name!r} needs at least {len(law.theta_names)}")
    names = {"x": str(options.columns["C"]), "y": str(options.columns["y"])}
    fit = fit_law(law, (C[mask],), y[mask], y_scale=options.y_scale, delta=options.delta, names=names)
    N = column_if_present(table, options, "N")
    n_fit = loglog_fit(C[mask], N[mask]) if N is not None else (math.nan, math.nan)
    thetas, n_exps, failed = [], [], 0
    rng = np.random.default_rng(options.seed)
    from tqdm.auto import tqdm

    starts = fit.warm_starts(options.bootstrap_starts)
    for _ in tqdm(range(options.n_bootstrap), desc="bootstrap frontier", disable=not options.progress, leave=False):
        idx = rng.integers(0, len(C), len(C))
        m = frontier_mask(C[idx], y[idx])
        if len(np.unique(C[idx][m])) < len(law.theta_names):
            failed += 1
            continue
        try:
            fb = fit_law(law, (C[idx][m],), y[idx][m], y_scale=fit.y_scale, delta=options.delta, starts=starts)
        except (ValueError, RuntimeError):
            failed += 1
            continue
        thetas.append(fb.theta)
        if N is not None:
            n_exps.append(loglog_fit(C[idx][m], N[idx][m])[1])
    thetas_arr = np.array(thetas).reshape(-1, len(law.theta_names))
    samples = {name: np.array([law.params(t)[name] for t in thetas_arr]) for name in law.param_names}
    ci = {name: percentile_ci(v, options.level) for name, v in samples.items()} if options.n_bootstrap else {}
    params = dict(fit.params)
    derived = {"N_frontier_exponent": n_fit[1], "N_frontier_coefficient": n_fit[0]}
    result = {
        "law": "frontier", "formula": f"lower envelope of y against C, fitted with {law.formula} (x = C)",
        "frontier_law": law.name, "params": params, "ci": ci, "confidence_level": options.level,
        "derived": derived, "derived_ci": {"N_frontier_exponent": percentile_ci(np.array(n_exps), options.level)} if n_exps else {},
        "frontier_runs": np.flatnonzero(mask).tolist(), "fit_quality": fit.quality(),
        "bootstrap": {"method": "percentile", "resampling": "runs (frontier recomputed)", "confidence_level": options.level,
                      "n_resamples": options.n_bootstrap, "n_failed": failed, "seed": options.seed}
        if options.n_bootstrap else None,
        "warnings": _status(fit), "inputs": inputs_record(options, roles, len(table)),
    }
    result["inputs"]["y_scale"] = fit.y_scale
    grid = np.geomspace(C[mask].min(), C[mask].max(), 200)
    low, high = (prediction_band(law, thetas_arr, (grid,), level=options.level) if len(thetas_arr) else (None, None))
    plot = {"kind": "frontier", "x": C, "y": y, "mask": mask, "y_err": optional_column(table, options, "y_err"),
            "curves": [{"x": grid, "y": fit.predict(grid), "low": low, "high": high, "label": "frontier fit"}],
            "xlabel": axis_label(options, "C"), "ylabel": axis_label(options, "y"), "text": _law_text(fit)}
    return FitOutput(result, plot)


def _proxy(table: pd.DataFrame, options: FitOptions) -> FitOutput:
    roles = {"loss": "y", "metric": "metric"}
    y, metric = _read_roles(table, options)
    res = proxy_relation(y, metric, n_resamples=options.n_bootstrap, seed=options.seed, level=options.level,
                         names=(str(options.columns["y"]), str(options.columns["metric"])))
    body = res.to_dict()
    result = {"law": "proxy", "formula": "Spearman rank correlation of metric and loss; isotonic fit metric(loss)",
              "params": {"spearman_rho": res.rho, "p_value": res.p_value, "isotonic_r2": res.isotonic_r2},
              "ci": body.pop("ci"), "confidence_level": options.level, **body, "warnings": [],
              "inputs": inputs_record(options, roles, len(table))}
    plot = {"kind": "proxy", "x": y, "y": metric, "y_err": optional_column(table, options, "metric_err"),
            "fit_x": res.loss_sorted, "fit_y": res.metric_fit, "xlabel": axis_label(options, "y"),
            "ylabel": axis_label(options, "metric"),
            "text": rf"Spearman $\rho = {res.rho:.3f}$ ($p = {res.p_value:.2g}$)"}
    return FitOutput(result, plot)


def _window(table: pd.DataFrame, options: FitOptions) -> FitOutput:
    roles = {"x": options.x, "positions": "positions"}
    x = read_column(table, options, options.x)
    column = options.columns.get("positions")
    if not column or column not in table.columns:
        raise KeyError(f"column {column!r} (per-position validation loss, --positions-col) not in the runs table")
    losses = position_matrix(table[column].tolist(), column=str(column))
    res = learnable_window(x, losses, frac=options.window_frac, z=options.window_z,
                           n_resamples=options.n_bootstrap, seed=options.seed, level=options.level,
                           x_name=str(options.columns.get(options.x)))
    body = res.to_dict()
    warnings = [] if res.size else ["no position's reducible loss is resolved: no learnable window"]
    if res.size and not res.contiguous:
        warnings.append(f"the {res.size} learnable positions do not form one range ({res.start}-{res.end})")
    result = {"law": "window", "formula": "per position p: L_p(x) = E_p + r_p (x/x_max)^-alpha_p; learnable when "
                                          "the reducible loss r_p = L_p(x_max) - E_p > c(z) se(r_p)",
              "x": options.x, **body, "warnings": warnings, "inputs": inputs_record(options, roles, len(table))}
    se = np.where(np.isfinite(res.fits.reducible_se), res.fits.reducible_se, 0.0)
    plot = {"kind": "window", "slopes": res.fits.reducible, "se": se, "start": res.start, "end": res.end,
            "x": x, "losses": losses, "xlabel": "Token position", "xname": axis_label(options, options.x),
            "ylabel": r"Reducible loss $L_p(x_{max}) - E_p$ [nats]",
            "text": (f"learnable window: {res.size} positions, {res.start}-{res.end}" if res.size
                     else "no learnable window")}
    return FitOutput(result, plot)


@dataclass(frozen=True)
class Analysis:
    """One value of ``FitOptions.law``: the function that runs it, the column roles every row it
    fits needs, and the fewest runs it can fit."""

    name: str
    run: Callable[[pd.DataFrame, FitOptions], FitOutput]
    #: column roles every fitted row needs, in the order the analysis reads them ("x": ``FitOptions.x``)
    roles: tuple[str, ...]
    #: fewest runs: a number, or one of the options (the frontier: the parameters of its law)
    min_runs: int | Callable[[FitOptions], int]

    def columns(self, options: FitOptions) -> list[str | None]:
        """The columns of the roles of :attr:`roles` under ``options``."""
        return [options.columns.get(options.x if role == "x" else role) for role in self.roles]

    def fewest_runs(self, options: FitOptions) -> int:
        """The fewest runs the analysis can fit with ``options``."""
        return self.min_runs(options) if callable(self.min_runs) else self.min_runs


def _n_params(law: str) -> int:
    """Runs a fitted formula needs: one per parameter."""
    return len(LAWS[law].theta_names)


#: every analysis by name (the values of ``FitOptions.law``). A rank correlation needs 3 runs, the
#: per-position fits of the learnable window 4, isoFLOP parabolas 2 budgets of 3 runs; a fitted
#: formula one run per parameter
REGISTRY: dict[str, Analysis] = {a.name: a for a in (
    Analysis("power", _single, ("x", "y"), _n_params("power")),
    Analysis("power-offset", _single, ("x", "y"), _n_params("power-offset")),
    Analysis("log", _single, ("x", "y"), _n_params("log")),
    Analysis("chinchilla", _chinchilla, ("N", "D", "y"), _n_params("chinchilla")),
    Analysis("isoflop", _isoflop, ("N", "D", "C", "y"), 6),
    Analysis("frontier", _frontier, ("C", "y"), lambda options: _n_params(options.frontier_law)),
    Analysis("repetition", _repetition, ("D", "U", "y"), _n_params("repetition")),
    Analysis("proxy", _proxy, ("y", "metric"), 3),
    Analysis("window", _window, ("x", "positions"), 4),
    Analysis("data-constrained", _data_constrained, ("N", "D", "U", "y"), _n_params("data-constrained")),
)}

#: every value of ``FitOptions.law`` (``--law``)
ANALYSES: tuple[str, ...] = tuple(REGISTRY)


def _read_roles(table: pd.DataFrame, options: FitOptions) -> list[np.ndarray]:
    """The columns of the roles of ``options.law`` (:attr:`Analysis.roles`), as :func:`read_column`."""
    roles = REGISTRY[options.law].roles
    return [read_column(table, options, options.x if role == "x" else role) for role in roles]


def required_columns(options: FitOptions) -> list[str | None]:
    """The columns of the runs table that every row the fit ``options`` uses needs (None: a role
    without a column)."""
    return REGISTRY[options.law].columns(options)


def min_runs(options: FitOptions) -> int:
    """The fewest runs the fit ``options`` can use."""
    return REGISTRY[options.law].fewest_runs(options)


def analyse(table: pd.DataFrame, options: FitOptions) -> FitOutput:
    """Run the analysis ``options.law`` on a runs table.

    Parameters
    ----------
    table
        Runs table, one row per run (see :mod:`hepscale.runs.table`).
    options
        Law, column mapping, row filters (applied here), bootstrap and fit settings.

    Raises
    ------
    ValueError
        For wrong options (naming the field, :meth:`FitOptions.check`), an empty table, or
        columns that do not hold what the law needs.
    KeyError
        Naming a column (or a filter's column) the table lacks.
    """
    options.check()
    if options.filters:
        from hepscale.runs.table import apply_filters

        table = apply_filters(table, options.filters)
    if len(table) == 0:
        raise ValueError("the runs table is empty (after filters)")
    out = REGISTRY[options.law].run(table, options)
    curves = out.plot.get("curves") or []
    if curves and curves[0].get("low") is not None:
        out.result["prediction_band"] = {
            "confidence_level": options.level, "x": out.plot.get("xlabel"),
            "curves": [{"label": c["label"], **{k: np.asarray(c[k])[::5] for k in ("x", "y", "low", "high")}}
                       for c in curves],
        }
    inputs = out.result.setdefault("inputs", {})
    inputs["data"] = data_record(table, inputs.get("columns", {}).values())
    out.result = json_ready(out.result)
    return out

