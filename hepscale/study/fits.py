"""The fits of a study: their ``hepscale fit`` arguments, checked when the study is loaded, and
whether the runs table holds enough runs for each.

- :func:`check_fits`: every fit of a study checked when it is loaded (names, laws, arguments);
- :func:`fit_args`: the arguments of one fit (the one source for the local executor and the DAG);
- :func:`parse_fit_args`: those arguments read by the fit tool's own parser
  (:func:`hepscale.fit._cli.build_parser`) without running it, so that a wrong ``fit.fits[i].args``
  is an error of ``study plan`` and not of the last step of a finished study;
- :func:`min_runs`, :func:`usable_runs`, :func:`fit_shortfall`: a fit whose law needs more runs
  than the study has (a proxy correlation over 2 model sizes) is skipped with a warning instead
  of failing the study.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hepscale.study.folder import RUNS_PARQUET

if TYPE_CHECKING:
    from hepscale.study.config import FitSpec, StudyConfig

__all__ = ["expand_per", "STUDY_SET_OPTIONS", "fit_args", "parse_fit_args", "check_fit_args", "check_fits", "min_runs",
           "usable_runs", "fit_shortfall"]

#: options of ``hepscale fit`` that the study sets itself (``fit.fits[i].law``, ``.x``, the output
#: ``fits/<name>.json`` and the terminal format); a fit's ``args`` may not set them
STUDY_SET_OPTIONS = {"law": "--law", "x": "--x", "output": "--output", "format": "--format", "input": "INPUT"}

#: fewest runs of the laws that are not a fitted formula: a rank correlation or the per-position
#: slopes need 3 runs; isoFLOP parabolas need 2 budgets with 3 runs each
_MIN_RUNS = {"proxy": 3, "window": 4, "isoflop": 6}


def expand_per(study: StudyConfig, bad: Callable[[str, str], Exception]) -> list[FitSpec]:
    """The fits of ``study.fit.fits`` with every ``per`` expanded: one fit per combination of the
    grid's values of those axes, named ``<name>_<value>...`` (e.g. ``loss_vs_D_kin_Pico``) and
    filtered to its runs; fits without ``per`` unchanged.

    Raises
    ------
    Exception
        ``bad(field, message)`` for an axis that is not a grid axis of the task, or one the grid
        does not list (its values come from the base training config).
    """
    import itertools

    from hepscale.study.config import FitSpec

    axes = study.spec.fit_axes()  # grid axes a fit may be repeated over -> runs-table column
    grid_values = {"model": study.grid.models, **study.spec.grid_axes(study)}
    out: list[FitSpec] = []
    for i, f in enumerate(study.fit.fits or []):
        if not f.per:
            out.append(f)
            continue
        for axis in f.per:
            if axis not in axes:
                raise bad(f"fit.fits[{i}].per", f"{axis!r} is not a grid axis of a {study.task} study; "
                          f"expected some of {list(axes)}")
            if not grid_values[axis]:
                raise bad(f"fit.fits[{i}].per", f"grid.{'models' if axis == 'model' else axis} lists no values to "
                          f"repeat the fit over")
        if len(set(f.per)) != len(f.per):
            raise bad(f"fit.fits[{i}].per", f"an axis is listed twice: {f.per}")
        for combo in itertools.product(*(grid_values[a] for a in f.per)):
            filters = [arg for a, v in zip(f.per, combo) for arg in ("--filter", f"{axes[a]}=={v}")]
            name = "_".join([f.name, *(str(v) for v in combo)])
            out.append(FitSpec(name=name, law=f.law, x=f.x, args=[*f.args, *filters]))
    return out


def fit_args(study: StudyConfig, spec: FitSpec) -> list[str]:
    """The ``hepscale fit`` arguments of one fit (after the ``fit`` command), relative to the study folder."""
    from hepscale.study.data import figure_label

    return [RUNS_PARQUET, "--law", spec.law, *(["--x", spec.x] if spec.x else []),
            "--n-bootstrap", str(study.fit.n_bootstrap), "--seed", str(study.fit.seed), "--label", figure_label(study),
            "--output", f"fits/{spec.name}.json", "--format", "none", "--no-progress", *spec.args]


def parse_fit_args(args: Sequence[str]) -> Any:
    """Read ``hepscale fit`` arguments with the fit tool's parser, without running the fit.

    Returns
    -------
    argparse.Namespace
        The parsed options.

    Raises
    ------
    ValueError
        With the parser's message (unknown option, missing or invalid value).
    """
    from hepscale.fit._cli import build_parser

    parser = build_parser()

    def refuse(message: str) -> None:
        raise ValueError(message)

    def leave(status: int = 0, message: str | None = None) -> None:  # --help, --version
        raise ValueError(message or "asks for help instead of a fit")

    parser.error = refuse  # type: ignore[method-assign,assignment]
    parser.exit = leave  # type: ignore[method-assign,assignment]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return parser.parse_args([str(a) for a in args])


def check_fit_args(study: StudyConfig, spec: FitSpec) -> Any:
    """Parse the full arguments of ``spec`` and check that its ``args`` leave the study's own options alone.

    Returns
    -------
    argparse.Namespace
        The parsed options of the fit.

    Raises
    ------
    ValueError
        Saying what the fit tool cannot read, or which option the study sets itself.
    """
    parsed = parse_fit_args(fit_args(study, spec))
    alone, default = parse_fit_args([RUNS_PARQUET, *spec.args]), parse_fit_args([RUNS_PARQUET])
    taken = [flag for dest, flag in STUDY_SET_OPTIONS.items() if getattr(alone, dest) != getattr(default, dest)]
    if taken:
        raise ValueError(f"they set {', '.join(taken)}, which the study sets itself "
                         "(use fit.fits[i].law and .x; the result goes to fits/<name>.json)")
    return parsed


def check_fits(study: StudyConfig, bad: Callable[[str, str], Exception], *, name_pattern: str) -> None:
    """Check every fit of ``study.fit.fits``: unique names matching ``name_pattern``, known laws,
    ``x`` one of N, D, C, arguments the fit tool reads and that leave the study's own options
    alone; a tagging study's proxy fit must name its metric (it has no SWD).

    Raises
    ------
    Exception
        ``bad(field, message)`` for the first fit that is wrong.
    """
    from hepscale.fit.analysis import ANALYSES

    names = set()
    for i, f in enumerate(study.fit.fits or []):
        if not re.fullmatch(name_pattern, f.name) or f.name in names:
            raise bad(f"fit.fits[{i}].name", f"expected a unique name of letters, digits and _.+-, got {f.name!r}")
        names.add(f.name)
        if f.law not in ANALYSES:
            raise bad(f"fit.fits[{i}].law", f"expected one of {list(ANALYSES)}, got {f.law!r}")
        if f.x is not None and f.x not in ("N", "D", "C"):
            raise bad(f"fit.fits[{i}].x", f"expected N, D or C, got {f.x!r}")
        if not isinstance(f.args, list) or not all(isinstance(a, (str, int, float)) for a in f.args):
            raise bad(f"fit.fits[{i}].args", f"expected a list of command-line arguments, got {f.args!r}")
        try:  # read by the fit tool's own parser now, not after every run has trained
            options = check_fit_args(study, f)
        except ValueError as err:
            raise bad(f"fit.fits[{i}].args", f"'hepscale fit' cannot take {f.args}: {err}") from err
        study.spec.check_fit(i, options, bad)


def min_runs(options: Any) -> int:
    """The fewest runs the fit ``options`` (parsed ``hepscale fit`` arguments) can use."""
    from hepscale.fit.laws import get_law

    if options.law in _MIN_RUNS:
        return _MIN_RUNS[options.law]
    law = get_law(options.frontier_law if options.law == "frontier" else options.law)
    return len(law.theta_names)


def _columns(options: Any) -> list[str]:
    """The columns of the runs table that every row fitted by ``options`` needs."""
    by_role = {"N": options.n_col, "D": options.d_col, "C": options.c_col, "y": options.y_col, "U": options.u_col,
               "metric": options.metric_col, "positions": options.positions_col}
    x = options.x or ("D" if options.law == "window" else "N")
    roles = {"chinchilla": ("N", "D", "y"), "repetition": ("D", "U", "y"), "isoflop": ("N", "D", "C", "y"),
             "data-constrained": ("N", "D", "U", "y"), "frontier": ("C", "y"), "proxy": ("y", "metric"),
             "window": (x, "positions")}.get(options.law, (x, "y"))
    return [by_role[r] for r in roles]


def usable_runs(table: Any, options: Any) -> int | None:
    """Rows of the runs table the fit ``options`` would use (its filters applied, its columns set),
    or None when that cannot be told here (a column or filter the fit itself will report)."""
    from hepscale.runs.table import apply_filters

    try:
        rows = apply_filters(table, options.filter)
    except (KeyError, ValueError):
        return None
    columns = _columns(options)
    if any(c not in rows.columns for c in columns):
        return None
    return int(rows[columns].notna().all(axis=1).sum())


def fit_shortfall(args: Sequence[str], table: Any) -> str | None:
    """Why the fit of ``hepscale fit`` arguments ``args`` cannot run on ``table`` (too few runs
    for its law), or None when it can (or when the fit itself has to tell)."""
    options = parse_fit_args(args)
    need, have = min_runs(options), usable_runs(table, options)
    if have is None or have >= need:
        return None
    return f"{have} run(s) in the runs table, law {options.law!r} needs at least {need}"
