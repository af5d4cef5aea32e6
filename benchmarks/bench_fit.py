"""Benchmark of the joint scaling-law fit and its bootstrap.

Synthetic runs from ``L = E + A/N^alpha + B/D^beta`` (about 240 points, 1% log-normal noise);
times the multi-start fit (full starting grid) and a 1000-resample bootstrap, each with the
NumPy objective (the baseline) and the law's compiled objective (``Law.fused_objective``), the
bootstrap in 1 and 2 processes, and prints a Markdown table for BENCHMARKS.md::

    python benchmarks/bench_fit.py --n-points 240 --n-bootstrap 1000 --jobs 1 2
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Sequence

import numpy as np

from hepscale.fit import EPOCH_GRID, ChinchillaParams, bootstrap_law, fit_law, get_law

TRUE = {"E": 1.7, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.28}


def synthetic_runs(n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_points`` runs on a log grid of N (1e4-1e8) x D (1e6-1e10) with 1% noise."""
    rng = np.random.default_rng(seed)
    n_n = max(2, int(round(np.sqrt(n_points / 2.5))))
    n_d = max(2, int(round(n_points / n_n)))
    N = np.repeat(np.geomspace(1e4, 1e8, n_n), n_d)
    D = np.tile(np.geomspace(1e6, 1e10, n_d), n_n)
    L = ChinchillaParams(**TRUE).loss(N, D) * np.exp(rng.normal(0.0, 0.01, N.size))
    return N, D, L


def _timed(func, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-points", type=int, default=240, help="number of synthetic runs (default: 240)")
    parser.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="process counts to time (default: 1 2)")
    parser.add_argument("--grid", choices=("data", "epoch", "both"), default="data",
                        help="starting grid: data-adapted (256), Epoch AI (4500), or both")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and bootstrap (default: 0)")
    args = parser.parse_args(argv)

    N, D, L = synthetic_runs(args.n_points, args.seed)
    law = get_law("chinchilla")
    law_type = type(law)
    compiled = law_type.fused_objective
    law.fused_objective("log")(law.theta(TRUE), (N, D), np.log(L), 1e-3)  # compile (or load) before timing
    rows = []
    grids = ["data", "epoch"] if args.grid == "both" else [args.grid]
    baseline: dict[str, float] = {}
    fit = None
    for objective in ("numpy", "compiled"):
        law_type.fused_objective = compiled if objective == "compiled" else (lambda self, y_scale: None)
        for grid in grids:
            starts = EPOCH_GRID if grid == "epoch" else None
            result, wall, cpu = _timed(fit_law, "chinchilla", (N, D), L, starts=starts)
            key = f"fit {grid}"
            baseline.setdefault(key, wall)
            rows.append((f"joint fit, {result.n_starts} starts ({grid} grid), {N.size} points, {objective} objective",
                         wall, cpu, baseline[key] / wall,
                         ", ".join(f"{k}={v:.4g}" for k, v in result.params.items())))
            if fit is None or grid == "data":
                fit = result
        assert fit is not None
        for jobs in args.jobs if objective == "compiled" else args.jobs[:1]:
            boot, wall, cpu = _timed(bootstrap_law, fit, (N, D), L, n_resamples=args.n_bootstrap, seed=args.seed,
                                     n_jobs=jobs)
            baseline.setdefault("bootstrap", wall)
            ci = boot.intervals()
            rows.append((f"bootstrap, {args.n_bootstrap} resamples, {jobs} process(es), {objective} objective", wall,
                         cpu, baseline["bootstrap"] / wall,
                         f"alpha CI [{ci['alpha'][0]:.4f}, {ci['alpha'][1]:.4f}], {boot.n_failed} failed"))
    law_type.fused_objective = compiled
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("| step | wall [s] | CPU this process [s] | speed-up vs NumPy objective, 1 process | result |")
    print("|---|---|---|---|---|")
    for name, wall, cpu, ratio, note in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {ratio:.2f}x | {note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
