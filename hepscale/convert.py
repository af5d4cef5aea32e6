"""``hepscale convert``: JetClass ROOT / Aspen Open Jets HDF5 files into a jet dataset (:mod:`hepscale.jets.readers`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from hepscale.cli import configure_logging, run_tool


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale convert FILES... --output JETS.parquet``."""
    from hepscale.jets.readers import convert

    parser = argparse.ArgumentParser(prog="hepscale convert",
                                     description="Convert JetClass ROOT or Aspen Open Jets HDF5 files into a jet dataset.")
    parser.add_argument("inputs", nargs="+", help="input files (.root: JetClass, .h5: Aspen Open Jets)")
    parser.add_argument("--output", type=Path, required=True, help="output parquet file")
    parser.add_argument("--format", choices=("auto", "jetclass", "aspen"), default="auto", help="input format")
    parser.add_argument("--max-constituents", type=int, default=128, help="constituents kept per jet (default 128)")
    parser.add_argument("--no-puppi", action="store_true", help="Aspen Open Jets: do not apply PUPPI weights")
    parser.add_argument("--skip-bad-files", action="store_true", help="skip unreadable files, recording why")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        prov = convert(args.inputs, args.output, fmt=args.format, max_constituents=args.max_constituents,
                       skip_bad_files=args.skip_bad_files, puppi=not args.no_puppi)
        print(f"wrote {prov['n_jets']} jets to {args.output}")
        for item in prov["skipped_files"]:
            print(f"  skipped: {item['reason']}")
        return 0

    return run_tool("hepscale convert", body)


if __name__ == "__main__":
    raise SystemExit(main())
