"""Benchmark of the sliced Wasserstein distance: hepscale.metrics.swd against POT, and the bootstrap.

    python benchmarks/bench_swd.py [--n 50000] [--projections 1000] [--bootstraps 50]

1. One SWD between two samples of ``n`` jets x 5 observables with ``projections`` directions:
   :func:`hepscale.metrics.swd.sliced_wasserstein` against POT's ``ot.sliced_wasserstein_distance``
   with the identical projection matrix and standardization (p = 1), best of ``--repeats``
   for ours, one run of POT; prints both values, their relative difference and the speed-up.
2. The full bootstrap with floor (:func:`hepscale.metrics.swd.bootstrap_swd`): ``bootstraps``
   resamples of ``n`` jets, generated sample of ``n`` jets, reference of ``2 n`` jets.

The numba kernels are compiled (or loaded from cache) on a small input before timing.
The machine's load average is printed: on shared machines timings vary with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence

import numpy as np


def _jets(rng: np.random.Generator, n: int, *, shift: float = 0.0) -> np.ndarray:
    """Jet-like observables: mass (GeV), tau21, tau32, D2, multiplicity."""
    return np.column_stack(
        [
            rng.gamma(4.0, 25.0, n) + shift,
            rng.beta(4, 3, n),
            rng.beta(5, 3, n),
            rng.lognormal(0.5, 0.4, n),
            rng.poisson(40, n).astype(float),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="jets per sample (default 50000)")
    parser.add_argument("--projections", type=int, default=1000, help="SWD directions (default 1000)")
    parser.add_argument("--bootstraps", type=int, default=50, help="bootstrap resamples (default 50)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of our single SWD (default 3)")
    parser.add_argument("--skip-pot", action="store_true", help="do not run POT (slow)")
    parser.add_argument("--skip-bootstrap", action="store_true", help="do not run the bootstrap")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)

    from hepscale.metrics import swd

    rng = np.random.default_rng(0)
    x = _jets(rng, args.n, shift=2.0)
    y = _jets(rng, args.n)
    ref = _jets(rng, 2 * args.n)
    theta = swd.random_projections(x.shape[1], args.projections, seed=1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out: dict[str, object] = {
        "n": args.n,
        "features": x.shape[1],
        "projections": args.projections,
        "bootstraps": args.bootstraps,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "numpy": np.__version__,
        "load_average_start": load,
    }

    # warm-up: compile or load the numba kernels
    small = _jets(rng, 500)
    swd.bootstrap_swd(small, _jets(rng, 1000), n_jets=500, n_bootstraps=2, n_projections=8)
    swd.bootstrap_swd(small, _jets(rng, 1000), n_jets=500, n_bootstraps=2, n_projections=8, p=2)

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = swd.sliced_wasserstein(x, y, projections=theta)
        times.append(time.perf_counter() - t0)
    out["ours_value"] = ours
    out["ours_seconds"] = min(times)
    print(f"hepscale.metrics.swd.sliced_wasserstein: {ours:.6g} in {min(times):.2f} s (best of {args.repeats})")

    if not args.skip_pot:
        import ot

        mean, std = y.mean(axis=0), y.std(axis=0)
        t0 = time.perf_counter()
        pot = float(ot.sliced_wasserstein_distance((x - mean) / std, (y - mean) / std, projections=theta, p=1))
        t_pot = time.perf_counter() - t0
        out.update(pot_value=pot, pot_seconds=t_pot, pot_version=ot.__version__,
                   relative_difference=abs(ours - pot) / pot, speedup=t_pot / min(times))
        print(f"POT {ot.__version__} sliced_wasserstein_distance: {pot:.6g} in {t_pot:.2f} s")
        print(f"relative difference {abs(ours - pot) / pot:.2e}, speed-up x{t_pot / min(times):.1f}")

    if not args.skip_bootstrap:
        t0 = time.perf_counter()
        res = swd.bootstrap_swd(
            x, ref, n_jets=args.n, n_bootstraps=args.bootstraps, n_projections=args.projections, seed=0
        )
        t_boot = time.perf_counter() - t0
        out.update(bootstrap_seconds=t_boot, bootstrap_swd=res.swd, bootstrap_swd_std=res.swd_std,
                   floor=res.floor, floor_std=res.floor_std)
        print(
            f"bootstrap_swd ({args.bootstraps} x {args.n} jets, {args.projections} directions, with floor): "
            f"{t_boot:.2f} s; SWD {res.swd:.4g} +- {res.swd_std:.2g}, floor {res.floor:.4g} +- {res.floor_std:.2g}"
        )
    out["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at start {load:.2f}, at end {out['load_average_end']:.2f}; {os.cpu_count()} CPUs")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
