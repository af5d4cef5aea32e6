"""``hepscale generate``: Pythia 8 events into a NanoAOD-like ROOT file (:mod:`hepscale.events.pythia`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from hepscale.cli import configure_logging, run_tool


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale generate --process P --events N --seed S --output F.root``."""
    from hepscale.events.pythia import PROCESSES, GeneratorConfig, generate

    parser = argparse.ArgumentParser(
        prog="hepscale generate",
        description="Generate pp collisions at 13 TeV with Pythia 8 into a NanoAOD-like ROOT file.",
    )
    parser.add_argument("--process", choices=sorted(PROCESSES), default="qcd", help="physics process (default qcd)")
    parser.add_argument("--events", type=int, required=True, help="number of events")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--output", type=Path, required=True, help="output ROOT file")
    parser.add_argument("--pthat-min", type=float, default=None,
                        help="minimum pT of the hard process in GeV (default: per process, for AK8 jets above 300 GeV)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="'KEY = VALUE'",
                        help="extra Pythia setting (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        config = GeneratorConfig(args.process, args.events, args.seed, args.pthat_min, list(args.settings))
        path = generate(config, args.output, jobs=args.jobs, progress=not args.no_progress)
        print(f"wrote {config.events} {config.process} events to {path}")
        return 0

    return run_tool("hepscale generate", body)


if __name__ == "__main__":
    raise SystemExit(main())
