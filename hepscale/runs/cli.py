"""``hepscale runs`` / ``python -m hepscale.runs``: gather a study's runs into one table file."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from hepscale.cli import configure_logging, run_tool


def main(argv: Sequence[str] | None = None) -> int:
    """Gather a study's runs into one table file (CSV or parquet by the output suffix)."""
    parser = argparse.ArgumentParser(prog="python -m hepscale.runs",
                                     description="The runs table: every finished run of a study gathered into one table.")
    parser.add_argument("study", type=Path, help="study folder (every result.json below it is gathered)")
    parser.add_argument("--output", type=Path, required=True, help="output table, .csv or .parquet")
    parser.add_argument("--filter", action="append", default=[], metavar="EXPR", help="row filter 'COL OP VALUE'")
    parser.add_argument("--skip-invalid", action="store_true", help="skip unreadable result.json files with a warning")
    args = parser.parse_args(argv)
    configure_logging(True)
    suffix = args.output.suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv"}:
        parser.exit(2, f"error: --output {args.output}: expected a .csv or .parquet file\n")

    def body() -> int:
        from hepscale._io import atomic_path
        from hepscale.runs.table import apply_filters, gather_runs

        table = apply_filters(gather_runs(args.study, strict=not args.skip_invalid), args.filter)
        with atomic_path(args.output, suffix=suffix) as tmp:
            if suffix == ".csv":
                table.to_csv(tmp, index=False)
            else:
                table.to_parquet(tmp, index=False)
        print(f"{len(table)} runs -> {args.output}")
        return 0

    return run_tool("hepscale runs", body)


if __name__ == "__main__":
    raise SystemExit(main())
