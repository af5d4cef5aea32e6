"""``python -m hepscale.condor ARGS``: the ``hepscale`` command ``ARGS`` as an HTCondor job runs it.

The job wrapper ``condor/hepscale_job.sh`` runs this in the job's scratch folder. Every command
is the one of ``python -m hepscale ARGS`` (the local executor's), except that ``study prepare
STUDY`` reads the study's inputs from outside its folder from their transferred copies
(``inputs/``) and names the prepared data after the access point's paths, so that the data it
sends back is the data the training jobs expect (:mod:`hepscale.study.inputs`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _jet_processor(config: Any) -> Any:
    from processors.jets import JetProcessor

    return JetProcessor(config)


def _prepare(argv: Sequence[str]) -> int:
    from hepscale.cli import configure_logging, run_tool

    p = argparse.ArgumentParser(prog="hepscale study prepare (HTCondor job)",
                                description="prepare the study's data from the transferred inputs")
    p.add_argument("study")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--output", type=Path, default=None)
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_intermixed_args(argv)

    def body() -> int:
        import logging

        from hepscale.study.inputs import node_studies, rename_prepared
        from hepscale.study.prepare import prepare

        local, identity = node_studies(args.study, list(args.overrides))
        configure_logging(False, dask=not local.data.jets)
        logging.getLogger("hepscale").setLevel(logging.INFO)
        root = args.output if args.output is not None else Path(local.folder)
        prepare(local, root, jobs=args.jobs, progress=False, processor_factory=_jet_processor)
        for old, new in rename_prepared(root, local, identity).items():
            print(f"prepared data {old} -> {new} (named after the access point's inputs)")
        print(f"data ready in {root}")
        return 0

    return run_tool("hepscale study prepare", body)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hepscale`` command ``argv`` (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["study", "prepare"] and not {"-h", "--help"} & set(args):
        return _prepare(args[2:])
    from hepscale.cli import main as hepscale_main

    return int(hepscale_main(args) or 0)
