"""``hepscale evaluate``: SWD (with bootstrap and floor) and per-observable distances of a run's
samples; for a tagger run (``task: tagging``), the ROC, AUC and background rejections on
its test split (or on ``--jets``).

The run's task evaluates it (:meth:`hepscale.tasks.spec.TaskSpec.evaluate_command`): see
:mod:`hepscale.tasks.generation.evaluate` (:func:`~hepscale.tasks.generation.evaluate.evaluate_run`)
and :mod:`hepscale.tasks.tagging.evaluate` (:func:`~hepscale.tasks.tagging.evaluate.evaluate_tagger_run`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from hepscale.cli import configure_logging, run_tool
from hepscale.metrics import swd


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hepscale evaluate",
        description="SWD (with bootstrap and floor) and per-observable distances of generated jets "
        "against a reference jet dataset; for a tagger run, the ROC, AUC and background rejection at 50%% and "
        "30%% signal efficiency on its test split; figures in CMS style.",
    )
    parser.add_argument("target", type=Path, help="run directory (with samples.parquet and result.json) or jet dataset")
    parser.add_argument("--reference", type=Path, default=None,
                        help="reference jet dataset (parquet file or folder); required for generated jets")
    parser.add_argument("--jets", type=Path, default=None,
                        help="tagger runs: labelled jet dataset to evaluate instead of the run's test split")
    parser.add_argument("--device", default="cpu",
                        help="tagger runs: torch device for scoring: cpu (default), cuda, cuda:N or auto "
                             "(CUDA when available)")
    parser.add_argument(
        "--n",
        type=int,
        default=swd.DEFAULT_N_JETS,
        help="jets per bootstrap resample (default 50000); the reference needs twice as many for the floor",
    )
    parser.add_argument("--bootstraps", type=int, default=swd.DEFAULT_N_BOOTSTRAPS, help="resamples (default 50)")
    parser.add_argument(
        "--projections", type=int, default=swd.DEFAULT_N_PROJECTIONS, help="SWD directions (default 1000)"
    )
    parser.add_argument("--p", type=float, default=swd.DEFAULT_P, help="order of the Wasserstein distance (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of directions, split and resamples (default 0)")
    parser.add_argument(
        "--observables",
        default=",".join(swd.DEFAULT_OBSERVABLES),
        help="comma-separated jet dataset fields (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, default=None, help="folder for evaluation.json and figures")
    parser.add_argument("--label", default="Simulation", help='CMS label text, e.g. "Simulation" or "Open Data"')
    parser.add_argument("--com", type=float, default=13.0, help="centre-of-mass energy in TeV for the label")
    parser.add_argument("--no-floor", action="store_true", help="skip the SWD floor (needs only --n reference jets)")
    parser.add_argument("--raw-reference", action="store_true",
                        help="generative runs: compare with the raw reference jets instead of the reference at the "
                             "model's resolution (encoded and decoded with the run's tokenizer, the default)")
    parser.add_argument("--no-figures", action="store_true", help="write no figures")
    parser.add_argument(
        "--drop-nonfinite", action="store_true", help="drop jets with NaN/inf observables (counted) instead of failing"
    )
    parser.add_argument("--jetnet", action="store_true", help="also compute W1m, W1p, W1efp, FPD and KPD")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hepscale evaluate``; returns the exit status (0 on success, 2 on bad input)."""
    args = _parse_args(argv)
    configure_logging(args.verbose)
    return run_tool("hepscale evaluate", lambda: _run(args))


def _device(value: str) -> str:
    """``--device`` checked (a ConfigError, exit 2, for no device or CUDA where there is none)."""
    if value.strip().lower() == "cpu":
        return "cpu"  # without importing torch
    from hepscale.devices import resolve_device

    return str(resolve_device(value))


def _run(args: argparse.Namespace) -> int:
    from hepscale.tasks import task_spec
    from hepscale.tasks.spec import run_folder_task

    args.device = _device(args.device)
    spec = run_folder_task(args.target) or task_spec()  # a jet dataset: generated jets
    return spec.evaluate_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
