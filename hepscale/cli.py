"""The ``hepscale`` command: one subcommand per tool.

Every tool is a module with ``main(argv=None) -> int`` and runs equally as
``python -m hepscale.<tool>`` and as ``hepscale <tool>``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: subcommand -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("hepscale.generate", "generate jets with the embedded Pythia 8 into NanoAOD-like ROOT files"),
    "process": ("hepscale.process", "run the coffea/fastjet jet processor on dask -> jet dataset (parquet)"),
    "convert": ("hepscale.readers", "convert JetClass ROOT or Aspen Open Jets HDF5 files into a jet dataset"),
    "tokenize": ("hepscale.tokenizer", "turn a jet dataset into token arrays for generative models"),
    "train": ("hepscale.train", "train one model (one run) from a config"),
    "sample": ("hepscale.sample", "sample jets from a trained generative model"),
    "evaluate": ("hepscale.evaluate", "physics metrics (SWD with floor, JetNet metrics) of a run or sample"),
    "fit": ("hepscale.fit", "fit scaling laws to a runs table"),
    "runs": ("hepscale.runs", "gather every result.json of a study into a runs table"),
    "study": ("hepscale.study", "plan, run locally, or submit to HTCondor a scaling study"),
    "quickstart": ("hepscale.quickstart", "run the quickstart example end to end on generated jets"),
}


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
