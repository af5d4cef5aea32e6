"""The command layer: the ``hepscale`` dispatcher and what every tool shares.

Every tool is a module with ``main(argv=None) -> int`` and runs equally as ``hepscale <tool>``,
``python -m hepscale <tool>`` and ``python -m hepscale.<tool>``. Library modules never parse
arguments, print or configure logging; the tools do it through this module:

- :func:`configure_logging`: the one logging set-up (hepscale's messages on stderr, dask's
  chatter kept to errors);
- :func:`run_tool`: runs a tool's body and turns errors into exit codes by one convention
  (:mod:`hepscale.errors`): a configuration or data error (:class:`~hepscale.errors.HepscaleError`
  and the ``OSError``/``ValueError``/``KeyError`` of bad input) prints ``<prog>: error: <message>``
  and exits 2, a diverged training 3, Ctrl-C 130.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from hepscale.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, HepscaleError

#: subcommand -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("hepscale.generate", "generate jets with the embedded Pythia 8 into NanoAOD-like ROOT files"),
    "process": ("hepscale.process", "run the coffea/fastjet jet processor on dask -> jet dataset (parquet)"),
    "convert": ("hepscale.convert", "convert JetClass ROOT or Aspen Open Jets HDF5 files into a jet dataset"),
    "tokenize": ("hepscale.tokenize", "turn a jet dataset into token arrays for generative models"),
    "train": ("hepscale.train.cli", "train one model (one run) from a config"),
    "sample": ("hepscale.sample", "sample jets from a trained generative model"),
    "score": ("hepscale.score", "per-jet class probabilities of a jet dataset from a trained tagger"),
    "evaluate": ("hepscale.evaluate", "physics metrics (SWD with floor, JetNet metrics) of a run or sample"),
    "fit": ("hepscale.fit", "fit scaling laws to a runs table"),
    "runs": ("hepscale.runs.cli", "gather every result.json of a study into a runs table"),
    "study": ("hepscale.study.cli", "plan, run locally, or submit to HTCondor a scaling study"),
    "quickstart": ("hepscale.quickstart", "run the quickstart example end to end on generated jets"),
}


#: loggers of third-party libraries kept to errors on the command line
_NOISY_LOGGERS = ("distributed", "bokeh", "tornado", "numba", "fsspec", "matplotlib")


def configure_logging(verbose: bool = False, *, level: int | None = None, dask: bool = False) -> None:
    """Configure logging for a command-line tool (never called by library code).

    Parameters
    ----------
    verbose
        INFO messages from hepscale (default: warnings only).
    level
        An explicit level for hepscale's loggers (overrides ``verbose``).
    dask
        The tool starts dask: import ``distributed`` first (it sets its own log levels at import,
        which must come before ours).
    """
    if dask:
        import distributed  # noqa: F401
    root_level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=root_level, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("hepscale").setLevel(level if level is not None else root_level)
    for noisy in _NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.ERROR)


def error_exit_code(err: BaseException) -> int | None:
    """The exit status of an error by hepscale's convention, or None for a bug (re-raised)."""
    if isinstance(err, HepscaleError):
        return err.exit_code
    if isinstance(err, (OSError, ValueError, KeyError)):  # bad input: missing file, wrong value or key
        return EXIT_BAD_INPUT
    return None


def run_tool(prog: str, body: Callable[[], int | None]) -> int:
    """Run ``body`` and map its errors to exit codes (see the module docstring).

    The message of a configuration or data error goes to stderr as ``<prog>: error: <message>``.
    """
    try:
        return int(body() or 0)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        code = error_exit_code(err)
        if code is None:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: hepscale <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'hepscale <command> --help' for the options of a command."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``hepscale <command> ...`` to ``hepscale.<module>.main``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if args[0] in {"-V", "--version"}:
        from hepscale import __version__

        print(f"hepscale {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"hepscale: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            print(f"hepscale: command {name!r} is not available in this version", file=sys.stderr)
            return 2
        raise
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
