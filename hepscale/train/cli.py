"""``hepscale train CONFIG [key=value ...] --output RUNDIR [--resume]``: train one run.

The run folder, the budgets and the resume are those of :mod:`hepscale.train.loop`; the task is
next-token generation on the token dataset of ``data.tokens``
(:class:`hepscale.train.generation.GenerationTask`), or, for a config with ``task:
classification``, a jet tagger on the tagging dataset of ``data.dataset``
(:class:`hepscale.train.classification.ClassificationTask`).

Interruption: SIGTERM, SIGUSR1 or SIGINT (Ctrl-C; a second one stops at once with 130) makes the
trainer write a checkpoint at the next step boundary and exit with 85
(:data:`hepscale.errors.EXIT_CHECKPOINT`). Use it as HTCondor's ``checkpoint_exit_code = 85`` and
rerun the same command with ``--resume``; ``--resume`` on a
folder without a checkpoint starts the run, so one command serves both.

Multi-GPU: ``torchrun --nproc-per-node G -m hepscale.train CONFIG --output RUNDIR`` (DDP, NCCL on
CUDA, gloo on CPU).

Exit codes: 0 finished, 85 checkpointed on request, 2 configuration or data error, 3 training
failed (non-finite loss or weights; the last good checkpoint is kept).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from hepscale.cli import configure_logging, run_tool

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale train CONFIG [key=value ...] --output RUNDIR [--resume]``; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="hepscale train",
        description="Train one model (a generative model, or a tagger with task: classification). Exit codes: 0 finished, 85 checkpointed on SIGTERM/SIGUSR1/SIGINT "
        "(HTCondor checkpoint_exit_code), 2 config/data error, 3 training failed.",
    )
    parser.add_argument("config", help="training config YAML (see configs/train/)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.lr=3e-4 budget.steps=1000")
    parser.add_argument("--output", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint if present")
    args = parser.parse_intermixed_args(argv)
    configure_logging(level=logging.INFO)  # training logs its evaluations and checkpoints

    def body() -> int:
        from hepscale.train.config import load_run_config
        from hepscale.train.loop import train

        cfg = load_run_config(args.config, args.overrides)
        return train(cfg, args.output, resume=args.resume, progress=None)

    return run_tool("hepscale train", body)


if __name__ == "__main__":
    raise SystemExit(main())
