"""``hepscale process``: the coffea jet processor on dask over ROOT files -> jet dataset (:mod:`hepscale.jets.processing`).

The command layer wires the processor in: :class:`processors.jets.JetProcessor` with the
settings of ``--config`` (:class:`hepscale.jets.config.JetProcessorConfig`). Inputs are local
files, ``root://`` or ``https://`` URLs, or coffea fileset JSONs (:mod:`hepscale.jets.inputs`).
Workers: a local dask cluster (``--workers``), an existing scheduler (``--scheduler``), or
dask-jobqueue HTCondor workers from a site profile (``--site``, :func:`hepscale.condor.dask_cluster`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hepscale.cli import configure_logging, run_tool


def _summary(prov: dict[str, Any], out_dir: Path) -> str:
    flow = prov["cutflow"]["total"]
    lines = [f"processed {flow.get('events_read', 0)} events -> {prov['n_jets']} jets in {out_dir}"]
    width = max(len(k) for k in flow) if flow else 10
    lines += [f"  {k:<{width}}  {v:>10}" for k, v in flow.items()]
    for item in prov["skipped_files"]:
        lines.append(f"  skipped: {item['reason']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale process IN.root... --output DIR``."""
    parser = argparse.ArgumentParser(prog="hepscale process",
                                     description="Run the jet processor on dask over ROOT files -> jet dataset.")
    parser.add_argument("inputs", nargs="+",
                        help="ROOT files or root:// / https:// URLs (generated or CMS (PF)NanoAOD), or coffea fileset "
                        "JSONs ({dataset: {files: {path: tree}, metadata: {xsec: pb, isData: bool}}}); each file once")
    parser.add_argument("--output", type=Path, required=True,
                        help="output directory (new, or the one of an interrupted run to resume it)")
    parser.add_argument("--workers", type=int, default=2, help="local dask worker processes (default 2)")
    parser.add_argument("--scheduler", default=None, help="address of an existing dask scheduler")
    parser.add_argument("--site", default=None,
                        help="run on HTCondor dask workers (dask-jobqueue) of a site profile: configs/sites/NAME.yaml "
                        "or NAME; --workers jobs are requested")
    parser.add_argument("--skip-bad-files", action="store_true",
                        help="skip unreadable files and files with NaN/inf values, recording why")
    parser.add_argument("--constituents", choices=("recluster", "pfnano"), default=None,
                        help="recluster PF candidates (default) or use the stored FatJetPFCands")
    parser.add_argument("--config", type=Path, default=None, help="YAML with jet building/selection settings")
    parser.add_argument("--chunksize", type=int, default=5000, help="entries per task (default 5000)")
    parser.add_argument("--max-chunks", type=int, default=None,
                        help="at most this many chunks per dataset (a quick test run)")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the observable figures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    args = parser.parse_args(argv)
    configure_logging(args.verbose, dask=True)

    def body() -> int:
        from hepscale.condor.dask import dask_client
        from hepscale.config import load_config
        from hepscale.jets.config import JetProcessorConfig
        from hepscale.jets.processing import process_files
        from processors.jets import JetProcessor

        overrides = [f"constituents={args.constituents}"] if args.constituents else []
        config = load_config(JetProcessorConfig, args.config, overrides=overrides)
        prov = process_files(
            args.inputs, args.output, processor=JetProcessor(config), workers=args.workers,
            client_factory=lambda: dask_client(workers=args.workers, scheduler=args.scheduler, site=args.site,
                                               jobs=args.workers if args.site else 0),
            skip_bad_files=args.skip_bad_files,
            chunksize=args.chunksize, max_chunks=args.max_chunks, progress=not args.no_progress,
            plot=not args.no_plot,
        )
        print(_summary(prov, args.output))
        return 0

    return run_tool("hepscale process", body)


if __name__ == "__main__":
    raise SystemExit(main())
