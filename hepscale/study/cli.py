"""``hepscale study``: plan, run here, or submit to HTCondor a scaling study.

::

    hepscale study plan    STUDY.yaml                      # the runs, their N, D, U, epochs, steps, C
    hepscale study run     STUDY.yaml --local [-j N]       # everything, here, resumable
    hepscale study condor  STUDY.yaml [--site S] [--submit] [--test]   # the same jobs as an HTCondor DAG
    hepscale study prepare STUDY.yaml                      # data only (generate -> process -> tokenize/split)
    hepscale study collect STUDY_DIR                       # runs table (parquet + CSV)
    hepscale study finish  STUDY_DIR [--no-fits]           # runs table, fits, summary and figures

The command layer of :mod:`hepscale.study`: argument parsing, printing and logging set-up
live here, and it passes ``processors.jets.JetProcessor`` to the library as the processor.
Exit status (:mod:`hepscale.errors`): 0 done (a fit whose law needs more runs than the study
has is skipped with a warning), 1 a run, step or fit failed or a run was left unfinished, 2 a
configuration or data error, 130 interrupted (run the same command again to continue).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hepscale.cli import configure_logging, run_tool
from hepscale.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from hepscale.study.collect import collect
from hepscale.study.config import load_study
from hepscale.study.dag import DAG_FILE, write_condor
from hepscale.study.executor import run_study
from hepscale.study.folder import study_lock, write_study_files
from hepscale.study.grid import expand_runs
from hepscale.study.plan import format_plan, plan_rows
from hepscale.study.prepare import prepare

__all__ = ["COMMAND_HELP", "main", "print_summary"]

PROG = "hepscale study"

COMMAND_HELP = {
    "plan": "expand the grid and print the runs with N, D, U, epochs, steps, C",
    "run": "run the study here (resumable)",
    "condor": "write (and with --submit, submit) the study as an HTCondor DAG",
    "prepare": "generate, process and tokenize (tagging: split into classes) the study's data (cached)",
    "collect": "write the runs table of a study folder (runs.parquet, runs.csv)",
    "finish": "collect the runs that finished, run the fits, write the summary and figures (the DAG's FINAL node)",
}


def _study_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="study YAML (see configs/studies/)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides of the study, e.g. grid.models=[Pico]")
    parser.add_argument("--output", type=Path, default=None, help="study folder (default: the study's output)")


def _parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} {command}", description=COMMAND_HELP[command])
    if command in ("collect", "finish"):
        p.add_argument("study_dir", type=Path, help="study folder")
        if command == "finish":
            p.add_argument("--no-fits", action="store_true", help="collect, summary and figures only")
            p.add_argument("--fit-failures-ok", action="store_true",
                           help="exit 0 once the runs table is written, also when a fit failed (listed in "
                                "finish.json; the DAG's POST script fails the node then)")
        return p
    _study_arg(p)
    if command == "plan":
        p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    elif command == "run":
        p.add_argument("--local", action="store_true", required=True, help="run here (use 'study condor' for HTCondor)")
        p.add_argument("-j", "--jobs", type=int, default=1, help="runs at once (default 1)")
        p.add_argument("--retries", type=int, default=None, help="retries of a failed step (default: the study's)")
        p.add_argument("--no-fits", action="store_true", help="stop after collecting the runs table")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    elif command == "condor":
        p.add_argument("--site", default=None, help="site profile: configs/sites/NAME.yaml or NAME (default: generic; "
                       "shipped: generic, generic-gpu, cms-connect, cms-t2, lpc, lxbatch)")
        p.add_argument("--submit", action="store_true",
                       help="submit the DAG to the local schedd, from the study folder (default: dry run)")
        p.add_argument("--test", action="store_true", help="only two training runs")
        p.add_argument("--no-prepare", action="store_true",
                       help="no data preparation job (the data was prepared here with 'hepscale study prepare')")
    elif command == "prepare":
        p.add_argument("-j", "--jobs", type=int, default=2, help="generator processes (default 2)")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _usage() -> str:
    lines = [f"usage: {PROG} COMMAND ...", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, text in COMMAND_HELP.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale study plan|run|condor|prepare|collect|finish``; see the module docstring."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return EXIT_OK if argv else EXIT_BAD_INPUT
    if argv[0] not in COMMAND_HELP:
        print(f"{PROG}: unknown command {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args = _parser(argv[0]).parse_intermixed_args(argv[1:])
    args.command = argv[0]
    _logging(args)
    return run_tool(PROG, lambda: _COMMANDS[args.command](args))


def _logging(args: argparse.Namespace, *, dask: bool = False) -> None:
    """The one logging set-up; ``dask``: the study processes events on dask (distributed sets its
    own log levels when imported, so it is imported first, and only then: it takes a second)."""
    configure_logging(getattr(args, "verbose", False), dask=dask)
    logging.getLogger("hepscale.study").setLevel(logging.INFO)  # the study's own progress, always


# ---------------------------------------------------------------------------- commands
def _collect(args: argparse.Namespace) -> int:
    info = collect(args.study_dir)
    print(f"{info['rows']} runs -> {info['parquet']}, {info['csv']}")
    return EXIT_OK


def _finish(args: argparse.Namespace) -> int:
    from hepscale.config import ConfigError
    from hepscale.study.commands import job_commands
    from hepscale.study.finish import FINISH_JSON, finish_study
    from hepscale.study.folder import STUDY_YAML

    root = Path(args.study_dir)
    if not (root / STUDY_YAML).is_file():
        raise ConfigError(f"{root} is not a study folder: it has no {STUDY_YAML}")
    # only its fits matter here: a processor config of the access point (absolute) is not on a worker
    study = load_study(root / STUDY_YAML, ["data.process.config=null"])
    with study_lock(root):
        out = finish_study(root, job_commands(study, [])["fit"], fits=not args.no_fits)
    _print_end(out)
    print(f"record: {root / FINISH_JSON}")
    return EXIT_FAILED if out["fits_failed"] and not args.fit_failures_ok else EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    study = load_study(args.study, args.overrides)
    root = args.output if args.output is not None else study.folder
    rows = plan_rows(study, expand_runs(study), study_dir=root)
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
    else:
        print(format_plan(study, rows))
    return EXIT_OK


def _jet_processor(config: Any) -> Any:
    """``processors.jets.JetProcessor(config)``, imported only when events are processed (coffea
    takes seconds to import; a study that starts from a jet dataset never needs it)."""
    from processors.jets import JetProcessor

    return JetProcessor(config)


def _prepare(args: argparse.Namespace) -> int:
    study = load_study(args.study, args.overrides)
    if not study.data.jets:  # events to process on dask
        _logging(args, dask=True)
    root = args.output if args.output is not None else study.folder
    runs = expand_runs(study)
    with study_lock(root):
        write_study_files(study, Path(root), runs)
        paths = prepare(study, root, jobs=args.jobs, progress=not args.no_progress, processor_factory=_jet_processor)
    print(f"data ready in {root}: " + ", ".join(f"{k} {v}" for k, v in paths.items() if k != "jets"))
    return EXIT_OK


def _condor(args: argparse.Namespace) -> int:
    from hepscale.condor import submit_dag

    study = load_study(args.study, args.overrides)
    root = args.output if args.output is not None else study.folder
    info = write_condor(study, root, site=args.site, test=args.test, prepare_node=not args.no_prepare)
    print(f"wrote {info['dag']} ({', '.join(f'{n} {k}' for k, n in info['jobs'].items())} jobs)")
    print(f"queue-from submit files: {', '.join(info['submit'].values())}")
    if args.submit:  # from the study folder, whatever the working directory; CondorError (no schedd): exit 2
        cluster = submit_dag(info["dag"], batch_name=info["batch_name"])
        print(f"submitted DAG as cluster {cluster} (batch {info['batch_name']})")
    else:
        again = shlex.join([*PROG.split(), "condor", str(args.study), *args.overrides,
                            *(["--output", str(args.output)] if args.output is not None else []),
                            *(["--site", args.site] if args.site else []), *(["--test"] if args.test else []),
                            *(["--no-prepare"] if args.no_prepare else []), "--submit"])
        print("dry run; to submit, run one of (shell-quoted):")
        print(f"  {again}")
        print(f"  {shlex.join(['cd', str(root)])} && "
              f"{shlex.join(['condor_submit_dag', '-batch-name', info['batch_name'], DAG_FILE])}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    study = load_study(args.study, args.overrides)
    if not study.data.jets:  # events to process on dask
        _logging(args, dask=True)
    root = args.output if args.output is not None else study.folder
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        out = run_study(study, jobs=args.jobs, progress=not args.no_progress, output=root, retries=args.retries,
                        processor_factory=_jet_processor, fits=not args.no_fits)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; run the same command again to continue ({root})", file=sys.stderr)
        return EXIT_INTERRUPTED
    print_summary(out)
    return EXIT_FAILED if out["failed"] or out["interrupted"] or out["fits_failed"] else EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "plan": _plan, "run": _run, "condor": _condor, "prepare": _prepare, "collect": _collect,
    "finish": _finish,
}


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def print_summary(out: Mapping[str, Any]) -> None:
    """Print the record of :func:`hepscale.study.executor.run_study`: runs done and failed,
    runs table, summary table, fits, figures and time."""
    print(f"\nstudy folder: {out['study_dir']}")
    print(f"runs: {out['done']} of {out['runs']} done, {len(out['failed'])} failed, "
          f"{len(out['interrupted'])} interrupted")
    for f in out["failed"]:
        print(f"  FAILED {f['run_id']} ({f['kind']}); log: {f['log']}")
    _print_end(out)
    print(f"done in {out['seconds']:.0f} s")


def _print_end(out: Mapping[str, Any]) -> None:
    """The end of a study (:func:`hepscale.study.finish.finish_study`): runs table, summary, fits, figures."""
    if out["table"]:
        print(f"runs table: {out['table']['parquet']} and {out['table']['csv']} ({out['table']['rows']} rows)")
    if out.get("summary"):
        print("\n" + out["summary"] + "\n")
    for name, path in out["fits"].items():
        print(f"fit {name}: {path}")
    for path in out.get("figures", []):
        print(f"figure: {path}")


if __name__ == "__main__":
    raise SystemExit(main())
