"""``python -m hepscale.fit`` / ``hepscale fit``: scaling-law fits of a runs table.

The one place that maps the flags to the fields of :class:`~hepscale.fit.analysis.FitOptions`:
:func:`options_from_args` and :func:`options_to_args` (both re-exported by :mod:`hepscale.fit`)
turn flags into options and back, and the tool reads its own command line the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hepscale.cli import configure_logging, run_tool
from hepscale.errors import DataError
from hepscale.fit.analysis import (
    ANALYSES,
    FLAGS,
    FRONTIER_LAWS,
    X_ROLES,
    FitOptions,
    FitOutput,
    default_columns,
    default_x,
)
from hepscale.fit.laws import DEFAULT_HUBER_DELTA

logger = logging.getLogger(__name__)

#: the name in error messages (``hepscale fit: error: ...``)
PROG = "hepscale fit"

EPILOG = """\
examples:
  python -m hepscale.fit runs.csv --law chinchilla --n-col N --d-col D --y-col loss --output fit.json
  python -m hepscale.fit studies/phase1 --law log --x N --format table
  python -m hepscale.fit studies/phase3 --law isoflop --output isoflop.json
  python -m hepscale.fit runs.parquet --law proxy --metric-col evaluation.swd.mean
  python -m hepscale.fit studies/phase2 --law window --x D
  python -m hepscale.fit runs.csv --law data-constrained --n-col N --d-col D --u-col U --y-col loss

laws: power (y = (x_c/x)^alpha), power-offset (y = y_inf + A x^-alpha), log (y = a - b ln x),
chinchilla (L = E + A/N^alpha + B/D^beta), isoflop, frontier,
repetition (D' = U_D + U_D R* (1 - exp(-R_D/R*)), U_D = min(U, D), R_D = D/U_D - 1),
data-constrained (L = E + A/N'^alpha + B/D'^beta with effective data D' and effective parameters N',
Muennighoff et al. 2023), proxy (Spearman loss vs physics metric),
window (learnable window: positions whose reducible loss L_p(x_max) - E_p is resolved).
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _level(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a confidence level in (0, 1), got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the fields of :class:`FitOptions` (each ``dest`` a field, or ``column_<role>``)."""
    defaults = default_columns()
    parser.add_argument("--law", choices=ANALYSES, default="chinchilla", help="analysis to run (default: chinchilla)")
    parser.add_argument("--x", choices=X_ROLES, default=None,
                        help="variable of single-variable laws (default: N) and of the learnable window (default: D)")
    cols = parser.add_argument_group("columns (defaults: our runs table)")
    for role, flag in FLAGS.items():
        what = _ROLE_HELP[role]
        cols.add_argument(flag, dest=f"column_{role}", default=defaults[role],
                          help=f"{what} (default: {defaults[role]})" if defaults[role] else what)
    cols.add_argument("--filter", dest="filters", action="append", default=[], metavar="EXPR",
                      help="row filter 'COL OP VALUE' (OP: == != <= >= < >; 'a|b' for one of); repeatable")
    fit = parser.add_argument_group("fit")
    fit.add_argument("--y-scale", choices=("log", "linear"), default=None,
                     help="residuals in log y or in y (default: log; linear for --law log)")
    fit.add_argument("--huber-delta", dest="delta", type=_positive_float, default=DEFAULT_HUBER_DELTA,
                     help=f"Huber threshold (default: {DEFAULT_HUBER_DELTA:g})")
    fit.add_argument("--grid", choices=("data", "epoch"), default="data",
                     help="chinchilla starting grid: adapted to the data (256 points) or the fixed grid of the "
                          "Epoch AI replication (4500 points)")
    fit.add_argument("--budgets", type=float, nargs="+", default=None, metavar="C",
                     help="compute budgets (FLOPs) for the compute-optimal allocation (default: decades in range)")
    fit.add_argument("--budget-rtol", type=_positive_float, default=0.05,
                     help="isoflop: relative tolerance grouping runs into one budget (default: 0.05)")
    fit.add_argument("--frontier-law", choices=FRONTIER_LAWS, default="power",
                     help="law fitted to the lower envelope (default: power)")
    fit.add_argument("--window-frac", type=_fraction, default=0.0,
                     help="window: also require a reducible loss of at least this fraction of the largest "
                          "(default: 0, off)")
    fit.add_argument("--window-z", type=float, default=2.0,
                     help="window: significance of the reducible loss, one-sided in standard-normal units "
                          "(default: 2)")
    boot = parser.add_argument_group("bootstrap")
    boot.add_argument("--n-bootstrap", type=_positive_int, default=1000, help="resamples (default: 1000; 0: none)")
    boot.add_argument("--bootstrap-starts", type=_positive_int, default=3,
                      help="warm starts per resample: the best optimum of the full-data fit and other "
                           "distinct optima within 10%% of its objective, at most this many (default: 3; "
                           "0: the full grid)")
    boot.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    boot.add_argument("--confidence", dest="level", type=_level, default=0.95,
                      help="confidence level of intervals (default: 0.95)")
    boot.add_argument("--jobs", dest="n_jobs", type=_positive_int, default=1,
                      help="worker processes for the bootstrap (default: 1)")
    look = parser.add_argument_group("figure and progress")
    look.add_argument("--label", "--cms-label", dest="label", default="Simulation",
                      help="experiment label of the figure: text after 'CMS' (Simulation, Open Data, ...), or "
                           "'Pythia 8' for generated jets (no experiment named); default Simulation")
    look.add_argument("--data-unit", choices=("tokens", "jets"), default=None,
                      help="data unit of the axis labels (default: jets when the runs table says so, else tokens)")
    look.add_argument("--no-progress", action="store_true", help="no progress bars")


#: the words of each column role in the help
_ROLE_HELP = {"N": "parameters N", "D": "tokens seen D", "C": "compute C in FLOPs", "y": "loss y",
              "U": "unique tokens U", "y_err": "uncertainty of y, for error bars only",
              "metric": "physics metric", "metric_err": "uncertainty of the metric, for error bars only",
              "positions": "per-position validation loss"}

#: the fields of :class:`FitOptions` that one flag sets with its value (``columns``, ``filters``,
#: ``law`` and ``progress`` have their own forms)
_VALUE_FLAGS = {"x": "--x", "y_scale": "--y-scale", "delta": "--huber-delta", "grid": "--grid",
                "budgets": "--budgets", "budget_rtol": "--budget-rtol", "frontier_law": "--frontier-law",
                "window_frac": "--window-frac", "window_z": "--window-z", "n_bootstrap": "--n-bootstrap",
                "bootstrap_starts": "--bootstrap-starts", "seed": "--seed", "level": "--confidence",
                "n_jobs": "--jobs", "data_unit": "--data-unit", "label": "--label"}


def _add_command_arguments(parser: argparse.ArgumentParser) -> None:
    """INPUT, the flags of :class:`FitOptions` and the output flags: the whole command line."""
    parser.add_argument("input", type=Path, help="study folder (gathers every result.json), or a .csv/.parquet table")
    _add_option_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, default=None, help="JSON file to write")
    out.add_argument("--figure", type=Path, default=None,
                     help="figure path (PDF and PNG); default: next to --output with its name")
    out.add_argument("--no-figure", action="store_true", help="do not draw a figure")
    out.add_argument("--format", choices=("table", "json", "none"), default="table", help="terminal output")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m hepscale.fit``."""
    parser = argparse.ArgumentParser(
        prog="python -m hepscale.fit", description="Fit scaling laws to a runs table, with bootstrap uncertainties.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_command_arguments(parser)
    return parser


class _RefusingParser(argparse.ArgumentParser):
    """A parser whose errors raise ``ValueError`` (the parser's message) instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)

    def print_help(self, file: Any = None) -> None:  # --help: nothing printed, exit() says why
        pass

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ValueError(message or "asks for help instead of a fit")


def _options(args: argparse.Namespace) -> FitOptions:
    """The :class:`FitOptions` of parsed arguments (the one place that maps flags to fields)."""
    values = {name: getattr(args, name) for name in _VALUE_FLAGS}
    values["x"] = args.x or default_x(args.law)
    values["n_jobs"] = max(args.n_jobs, 1)
    values["data_unit"] = args.data_unit or "tokens"
    return FitOptions(law=args.law, columns={role: getattr(args, f"column_{role}") for role in FLAGS},
                      filters=list(args.filters), progress=not args.no_progress, **values)


def options_from_args(args: Sequence[str], *, command: bool = False) -> FitOptions:
    """The :class:`FitOptions` that ``hepscale fit`` flags give, without running a fit.

    Parameters
    ----------
    args
        The flags of a fit's options (no INPUT, no output flag: those are unknown arguments).
    command
        ``args`` is a whole ``hepscale fit`` command line instead: INPUT and the output flags
        are read and left out of the options.

    Raises
    ------
    ValueError
        With the parser's message (unknown flag, missing or invalid value, ``--help``).
    """
    parser = _RefusingParser(prog=PROG, allow_abbrev=command)
    (_add_command_arguments if command else _add_option_arguments)(parser)
    return _options(parser.parse_args([str(a) for a in args]))


def _flag(flag: str, value: Any) -> list[str]:
    return [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]


def options_to_args(options: FitOptions, *, always: Collection[str] = ()) -> list[str]:
    """The ``hepscale fit`` flags that give ``options`` (:func:`options_from_args` reads them
    back to an equal :class:`FitOptions`): ``--law``, the flags of the values that differ from
    their defaults or whose field is in ``always``, ``--no-progress`` and the filters last.

    Raises
    ------
    ValueError
        For wrong options (:meth:`FitOptions.check`), or a role left without a column where the
        fit tool has a default one (no flag says "none").
    """
    options.check()
    base = options_from_args(["--law", options.law])
    out = ["--law", options.law]
    for role, flag in FLAGS.items():
        column = options.columns.get(role)
        if column != base.columns.get(role):
            if column is None:
                raise ValueError(f"columns: no flag leaves {role} without a column ({flag} has a default)")
            out += [flag, column]
    for name, flag in _VALUE_FLAGS.items():
        value = getattr(options, name)
        if value != getattr(base, name) or (name in always and value is not None):
            out += _flag(flag, value)
    if not options.progress:
        out.append("--no-progress")
    for text in options.filters:
        out += ["--filter", text]
    return out


def _fit(args: argparse.Namespace, options: FitOptions) -> tuple[FitOutput, int, int]:
    """Read and filter the runs table and run the analysis: (output, rows read, rows used).

    A fit that fails from every starting point (``RuntimeError``) is reported as bad input.
    """
    from hepscale.fit.analysis import analyse
    from hepscale.runs.table import apply_filters, read_runs_table

    try:
        table = read_runs_table(args.input)
        n_total = len(table)
        table = apply_filters(table, options.filters)
        jets = "data_unit" in table.columns and len(table) and (table["data_unit"] == "jets").all()
        if args.data_unit is None and jets:
            options.data_unit = "jets"
        return analyse(table, dataclasses.replace(options, filters=[])), n_total, len(table)
    except RuntimeError as err:
        raise DataError(str(err)) from err


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hepscale.fit``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, level=logging.DEBUG if args.verbose else logging.INFO)
    from hepscale._io import atomic_write_json
    from hepscale._version import code_version
    from hepscale.fit._report import format_table, plot_output

    options = _options(args)
    options.progress = options.progress and sys.stderr.isatty()
    # reading the table and fitting run under run_tool: bad input exits 2 with
    # "hepscale fit: error: ..."; writing the outputs stays outside it, as it always was
    fitted: list[tuple[FitOutput, int, int]] = []
    status = run_tool(PROG, lambda: fitted.append(_fit(args, options)))
    if not fitted:
        return status
    output, n_total, n_used = fitted[0]
    result = output.result
    result["inputs"].update({"source": str(args.input), "filters": list(options.filters), "n_rows_total": n_total,
                             "n_rows_used": n_used})
    result["code_version"] = code_version()
    result["command"] = ["python", "-m", "hepscale.fit", *(sys.argv[1:] if argv is None else list(argv))]
    figure = args.figure
    if figure is None and args.output is not None:
        figure = args.output.with_suffix("")
    if figure is not None and not args.no_figure:
        written = plot_output(output, figure, label=options.label)
        result["figures"] = [str(p) for p in written]
    if args.output is not None:
        atomic_write_json(args.output, result)
        logger.info("wrote %s", args.output)
    if args.format == "table":
        print(format_table(result))
    elif args.format == "json":
        print(json.dumps(result, indent=2))
    return 0
