"""``python -m hepscale.fit`` / ``hepscale fit``: scaling-law fits of a runs table."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from hepscale.cli import configure_logging, run_tool
from hepscale.errors import DataError
from hepscale.fit.analysis import ANALYSES, FitOptions, FitOutput, default_columns

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m hepscale.fit``."""
    defaults = default_columns()
    parser = argparse.ArgumentParser(
        prog="python -m hepscale.fit", description="Fit scaling laws to a runs table, with bootstrap uncertainties.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="study folder (gathers every result.json), or a .csv/.parquet table")
    parser.add_argument("--law", choices=ANALYSES, default="chinchilla", help="analysis to run (default: chinchilla)")
    parser.add_argument("--x", choices=("N", "D", "C"), default=None,
                        help="variable of single-variable laws (default: N) and of the learnable window (default: D)")
    cols = parser.add_argument_group("columns (defaults: our runs table)")
    cols.add_argument("--n-col", default=defaults["N"], help=f"parameters N (default: {defaults['N']})")
    cols.add_argument("--d-col", default=defaults["D"], help=f"tokens seen D (default: {defaults['D']})")
    cols.add_argument("--c-col", default=defaults["C"], help=f"compute C in FLOPs (default: {defaults['C']})")
    cols.add_argument("--y-col", default=defaults["y"], help=f"loss y (default: {defaults['y']})")
    cols.add_argument("--u-col", default=defaults["U"], help=f"unique tokens U (default: {defaults['U']})")
    cols.add_argument("--y-err-col", default=None, help="uncertainty of y, for error bars only")
    cols.add_argument("--metric-col", default=defaults["metric"], help=f"physics metric (default: {defaults['metric']})")
    cols.add_argument("--metric-err-col", default=None, help="uncertainty of the metric, for error bars only")
    cols.add_argument("--positions-col", default=defaults["positions"],
                      help=f"per-position validation loss (default: {defaults['positions']})")
    cols.add_argument("--filter", action="append", default=[], metavar="EXPR",
                      help="row filter 'COL OP VALUE' (OP: == != <= >= < >; 'a|b' for one of); repeatable")
    fit = parser.add_argument_group("fit")
    fit.add_argument("--y-scale", choices=("log", "linear"), default=None,
                     help="residuals in log y or in y (default: log; linear for --law log)")
    fit.add_argument("--huber-delta", type=_positive_float, default=1e-3, help="Huber threshold (default: 1e-3)")
    fit.add_argument("--grid", choices=("data", "epoch"), default="data",
                     help="chinchilla starting grid: adapted to the data (256 points) or the fixed grid of the "
                          "Epoch AI replication (4500 points)")
    fit.add_argument("--budgets", type=float, nargs="+", default=None, metavar="C",
                     help="compute budgets (FLOPs) for the compute-optimal allocation (default: decades in range)")
    fit.add_argument("--budget-rtol", type=_positive_float, default=0.05,
                     help="isoflop: relative tolerance grouping runs into one budget (default: 0.05)")
    fit.add_argument("--frontier-law", choices=("power", "power-offset", "log"), default="power",
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
    boot.add_argument("--confidence", type=_level, default=0.95, help="confidence level of intervals (default: 0.95)")
    boot.add_argument("--jobs", type=_positive_int, default=1, help="worker processes for the bootstrap (default: 1)")
    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, default=None, help="JSON file to write")
    out.add_argument("--figure", type=Path, default=None,
                     help="figure path (PDF and PNG); default: next to --output with its name")
    out.add_argument("--no-figure", action="store_true", help="do not draw a figure")
    out.add_argument("--label", "--cms-label", dest="cms_label", default="Simulation",
                     help="experiment label of the figure: text after 'CMS' (Simulation, Open Data, ...), or "
                          "'Pythia 8' for generated jets (no experiment named); default Simulation")
    out.add_argument("--format", choices=("table", "json", "none"), default="table", help="terminal output")
    out.add_argument("--no-progress", action="store_true", help="no progress bars")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _fit(args: argparse.Namespace, options: FitOptions) -> tuple[FitOutput, int, int]:
    """Read and filter the runs table and run the analysis: (output, rows read, rows used).

    A fit that fails from every starting point (``RuntimeError``) is reported as bad input.
    """
    from hepscale.fit.analysis import analyse
    from hepscale.runs.table import apply_filters, read_runs_table

    try:
        table = read_runs_table(args.input)
        n_total = len(table)
        table = apply_filters(table, args.filter)
        if "data_unit" in table.columns and len(table) and (table["data_unit"] == "jets").all():
            options.data_unit = "jets"
        return analyse(table, options), n_total, len(table)
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

    columns = default_columns()
    columns.update({"N": args.n_col, "D": args.d_col, "C": args.c_col, "y": args.y_col, "U": args.u_col,
                    "y_err": args.y_err_col, "metric": args.metric_col, "metric_err": args.metric_err_col,
                    "positions": args.positions_col})
    options = FitOptions(
        law=args.law, x=args.x or ("D" if args.law == "window" else "N"), columns=columns, y_scale=args.y_scale, delta=args.huber_delta,
        n_bootstrap=args.n_bootstrap, bootstrap_starts=args.bootstrap_starts, seed=args.seed, level=args.confidence,
        n_jobs=max(args.jobs, 1), grid=args.grid, budgets=args.budgets, budget_rtol=args.budget_rtol,
        frontier_law=args.frontier_law, window_frac=args.window_frac, window_z=args.window_z,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    # reading the table and fitting run under run_tool: bad input exits 2 with
    # "hepscale fit: error: ..."; writing the outputs stays outside it, as it always was
    fitted: list[tuple[FitOutput, int, int]] = []
    status = run_tool(PROG, lambda: fitted.append(_fit(args, options)))
    if not fitted:
        return status
    output, n_total, n_used = fitted[0]
    result = output.result
    result["inputs"].update({"source": str(args.input), "filters": list(args.filter), "n_rows_total": n_total,
                             "n_rows_used": n_used})
    result["code_version"] = code_version()
    result["command"] = ["python", "-m", "hepscale.fit", *(sys.argv[1:] if argv is None else list(argv))]
    figure = args.figure
    if figure is None and args.output is not None:
        figure = args.output.with_suffix("")
    if figure is not None and not args.no_figure:
        written = plot_output(output, figure, label=args.cms_label)
        result["figures"] = [str(p) for p in written]
    if args.output is not None:
        atomic_write_json(args.output, result)
        logger.info("wrote %s", args.output)
    if args.format == "table":
        print(format_table(result))
    elif args.format == "json":
        print(json.dumps(result, indent=2))
    return 0
