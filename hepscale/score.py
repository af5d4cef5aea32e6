"""``hepscale score``: per-jet class probabilities of a jet dataset from a trained tagger run
(:mod:`hepscale.tasks.tagging.score`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hepscale.cli import configure_logging, run_tool


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale score RUNDIR JETS.parquet --output SCORES.parquet``."""
    parser = argparse.ArgumentParser(
        prog="hepscale score",
        description="Score every jet of a jet dataset with a trained tagger: one probability column per class "
        "(named after the classes), the dataset's label kept.")
    parser.add_argument("run_dir", help="tagger run folder (config.yaml with task: tagging, checkpoints/ckpt.pt)")
    parser.add_argument("jets", help="jet dataset (parquet, from hepscale process or hepscale convert)")
    parser.add_argument("--output", required=True, help="scores table (parquet)")
    parser.add_argument("--batch", type=int, default=None,
                        help="jets per forward pass (default 256 on CPU, where larger batches thrash memory, "
                             "1024 on a GPU)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--any-label", action="store_true",
                        help="also score jets of classes the tagger was not trained on")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    args = parser.parse_args(argv)
    configure_logging(not args.quiet)
    if args.batch is not None and args.batch < 1:
        parser.error("--batch must be at least 1")

    def body() -> int:
        from hepscale.devices import resolve_device
        from hepscale.tasks.tagging.score import score_jets

        device = resolve_device(args.device)  # an unusable --device fails (exit 2) before any file is read
        batch = args.batch if args.batch is not None else (256 if device.type == "cpu" else 1024)
        out = score_jets(args.run_dir, args.jets, args.output, batch=batch, device=str(device),
                         progress=not args.no_progress, any_label=args.any_label)
        print(f"scores of {args.jets} -> {out}")
        return 0

    return run_tool("hepscale score", body)


if __name__ == "__main__":
    raise SystemExit(main())
