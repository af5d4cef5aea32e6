"""``hepscale train CONFIG [key=value ...] --output RUNDIR [--resume]``: train one run.

The run folder, the budgets and the resume are those of :mod:`hepscale.train.loop`; the task is
next-token generation on the token dataset of ``data.tokens``
(:class:`hepscale.tasks.generation.trainer.GenerationTask`), or, for a config with ``task:
tagging``, a jet tagger on the tagging dataset of ``data.dataset``
(:class:`hepscale.tasks.tagging.trainer.ClassificationTask`).

Interruption: SIGTERM, SIGUSR1 or SIGINT (Ctrl-C; a second one stops at once with 130) makes the
trainer write a checkpoint at the next step boundary and exit with 85
(:data:`hepscale.errors.EXIT_CHECKPOINT`). Use it as HTCondor's ``checkpoint_exit_code = 85`` and
rerun the same command with ``--resume``; ``--resume`` on a
folder without a checkpoint starts the run, so one command serves both.

Self-checkpointing (HTCondor): ``--checkpoint-exit-minutes M`` (default: the environment variable
``HEPSCALE_CHECKPOINT_EXIT_MINUTES``, which the HTCondor DAG's training jobs set from the site
profile) checkpoints and exits with 85 at the first step boundary after M minutes; HTCondor
spools the checkpoint and restarts the job, which resumes. The interval is not part of the run's
config (nor of its id): the same run may checkpoint at other times elsewhere.

Threads: ``--threads N`` sets torch's CPU threads (default: torch's own, one per core, or
``OMP_NUM_THREADS``); the thread count is not part of the run's config, but it can change the
last bits of a CPU run.

Multi-GPU: ``torchrun --nproc-per-node G -m hepscale.train CONFIG --output RUNDIR`` (DDP, NCCL on
CUDA, gloo on CPU).

Exit codes: 0 finished, 85 checkpointed on request, 2 configuration or data error, 3 training
failed (non-finite loss or weights; the last good checkpoint is kept).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from hepscale.cli import configure_logging, run_tool

__all__ = ["CHECKPOINT_EXIT_ENV", "main"]

#: environment variable giving the default of ``--checkpoint-exit-minutes``
CHECKPOINT_EXIT_ENV = "HEPSCALE_CHECKPOINT_EXIT_MINUTES"


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of minutes > 0, got {text!r}")
    return value


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 thread, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale train CONFIG [key=value ...] --output RUNDIR [--resume]``; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="hepscale train",
        description="Train one model (a generative model, or a tagger with task: tagging). Exit codes: 0 finished, 85 checkpointed on SIGTERM/SIGUSR1/SIGINT "
        "(HTCondor checkpoint_exit_code), 2 config/data error, 3 training failed.",
    )
    parser.add_argument("config", help="training config YAML (see configs/train/)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.lr=3e-4 budget.steps=1000")
    parser.add_argument("--output", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint if present")
    parser.add_argument("--checkpoint-exit-minutes", type=_minutes, default=None, metavar="M",
                        help=f"checkpoint and exit with 85 after M minutes (HTCondor self-checkpointing; default: "
                        f"${CHECKPOINT_EXIT_ENV} when set, else never)")
    parser.add_argument("--threads", type=_threads, default=None, metavar="N",
                        help="torch CPU threads (default: torch's, one per core, or $OMP_NUM_THREADS)")
    args = parser.parse_intermixed_args(argv)
    if args.checkpoint_exit_minutes is None and os.environ.get(CHECKPOINT_EXIT_ENV, "").strip():
        try:
            args.checkpoint_exit_minutes = _minutes(os.environ[CHECKPOINT_EXIT_ENV])
        except argparse.ArgumentTypeError as err:
            parser.error(f"{CHECKPOINT_EXIT_ENV}: {err}")
    configure_logging(level=logging.INFO)  # training logs its evaluations and checkpoints

    def body() -> int:
        from hepscale.train.config import load_run_config
        from hepscale.train.loop import train

        cfg = load_run_config(args.config, args.overrides)
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        exit_s = None if args.checkpoint_exit_minutes is None else 60.0 * args.checkpoint_exit_minutes
        return train(cfg, args.output, resume=args.resume, progress=None, checkpoint_exit_s=exit_s)

    return run_tool("hepscale train", body)


if __name__ == "__main__":
    raise SystemExit(main())
