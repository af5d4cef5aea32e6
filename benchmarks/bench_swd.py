"""Benchmark of the sliced Wasserstein distance: exact and histogram estimators, single SWD and bootstrap.

    python benchmarks/bench_swd.py [--n 50000] [--projections 1000] [--bootstraps 50] [--pot]

1. One SWD between two samples of ``n`` jets x 5 observables with ``projections`` directions
   (p = 1) against the plain NumPy baseline: project with a matmul (float32, one row per
   direction), ``np.sort`` every row of both samples, mean absolute difference.
   :func:`hepscale.metrics.swd.sliced_wasserstein` with ``method="exact"`` and
   ``method="histogram"``; the three run in turn ``--repeats`` times; prints the best times,
   the median speed-ups over the baseline and the relative differences of the values. With
   ``--pot`` also POT's ``ot.sliced_wasserstein_distance`` (the same directions and
   standardization; one run, slow).
2. The bootstrap with floor (:func:`hepscale.metrics.swd.bootstrap_swd`): ``bootstraps``
   resamples of ``n`` jets, a generated sample of ``n`` jets and a reference of ``2 n`` jets,
   exact against histogram (the same resamples and directions), in turn ``--boot-repeats``
   times; all wall times and the median ratio.
3. The error budget of the histogram: |histogram - exact| / exact floor for the bootstrap's
   mean SWD, mean floor and the worst single resample, at the default bin count and for
   ``--bins-scan`` bin counts (each a full histogram bootstrap, timed).

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
from collections.abc import Callable, Sequence
from typing import Any

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


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(best wall time over ``repeats`` calls, the last value)."""
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def _interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Wall times of every function, run in turn ``repeats`` times (so that a change of the
    machine's load hits all of them alike), and their last values."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    values: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return times, values


def _ratio(num: list[float], den: list[float]) -> float:
    """Median over the rounds of num / den (times of one round were taken back to back)."""
    return float(np.median(np.divide(num, den)))


def numpy_sort_swd(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> float:
    """The plain baseline: standardize with y, project (float32 matmul), np.sort each direction, mean |diff|."""
    mean, std = y.mean(axis=0), y.std(axis=0)
    t = theta.T.astype(np.float32)
    px = np.sort(t @ ((x - mean) / std).T.astype(np.float32), axis=1)
    py = np.sort(t @ ((y - mean) / std).T.astype(np.float32), axis=1)
    return float(np.abs(px - py).mean(axis=1, dtype=np.float64).mean())


def _errors(hist: Any, exact: Any) -> dict[str, float]:
    """|histogram - exact| / exact floor: mean SWD, mean floor, worst single resample."""
    floor = exact.floor
    worst = max(
        np.abs(np.subtract(hist.swd_values, exact.swd_values)).max(),
        np.abs(np.subtract(hist.floor_values, exact.floor_values)).max(),
    )
    return {
        "swd_error_over_floor": abs(hist.swd - exact.swd) / floor,
        "floor_error_over_floor": abs(hist.floor - exact.floor) / floor,
        "worst_resample_error_over_floor": float(worst) / floor,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="jets per sample (default 50000)")
    parser.add_argument("--projections", type=int, default=1000, help="SWD directions (default 1000)")
    parser.add_argument("--bootstraps", type=int, default=50, help="bootstrap resamples (default 50)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of the single SWDs (default 3)")
    parser.add_argument("--boot-repeats", type=int, default=3,
                        help="rounds of the exact and the histogram bootstrap, in turn (default 3)")
    parser.add_argument("--bins-scan", default="100,250,500,1000,2000",
                        help="bin counts of the error scan, comma-separated ('' to skip)")
    parser.add_argument("--pot", action="store_true", help="also time POT's sliced_wasserstein_distance (slow)")
    parser.add_argument("--skip-bootstrap", action="store_true", help="do not run the bootstraps")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)

    import numba

    from hepscale.metrics import swd

    rng = np.random.default_rng(0)
    x = _jets(rng, args.n, shift=2.0)
    y = _jets(rng, args.n)
    ref = _jets(rng, 2 * args.n)
    theta = swd.random_projections(x.shape[1], args.projections, seed=1)
    load = _load()
    out: dict[str, Any] = {
        "n": args.n,
        "features": x.shape[1],
        "projections": args.projections,
        "bootstraps": args.bootstraps,
        "default_bins": swd.DEFAULT_BINS,
        "cpus": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "numpy": np.__version__,
        "load_average_start": load,
    }
    print(f"{args.n} jets x {x.shape[1]} observables, {args.projections} directions; load average (1 min) {load:.2f}")

    # warm-up: compile or load the numba kernels of every path
    small, small_ref = _jets(rng, 500), _jets(rng, 1000)
    for method in ("exact", "histogram"):
        swd.bootstrap_swd(small, small_ref, n_jets=500, n_bootstraps=2, n_projections=8, method=method)
        swd.sliced_wasserstein(small, small_ref[:500], n_projections=8, method=method)
    swd.bootstrap_swd(small, small_ref, n_jets=500, n_bootstraps=2, n_projections=8, p=2)

    # 1. one SWD
    times, values = _interleaved(
        {
            "numpy_sort": lambda: numpy_sort_swd(x, y, theta),
            "exact": lambda: swd.sliced_wasserstein(x, y, projections=theta, method="exact"),
            "histogram": lambda: swd.sliced_wasserstein(x, y, projections=theta, method="histogram"),
        },
        args.repeats,
    )
    t_np, t_ex, t_hi = (min(times[k]) for k in ("numpy_sort", "exact", "histogram"))
    v_np, v_ex, v_hi = (values[k] for k in ("numpy_sort", "exact", "histogram"))
    r_ex, r_hi = _ratio(times["numpy_sort"], times["exact"]), _ratio(times["numpy_sort"], times["histogram"])
    out["single"] = {
        "seconds": times,
        "numpy_sort_seconds": t_np, "numpy_sort_value": v_np,
        "exact_seconds": t_ex, "exact_value": v_ex, "exact_speedup": r_ex,
        "exact_relative_difference": abs(v_ex - v_np) / v_np,
        "histogram_seconds": t_hi, "histogram_value": v_hi, "histogram_speedup": r_hi,
        "histogram_relative_difference": abs(v_hi - v_ex) / v_ex,
    }
    print(f"\n1. one SWD ({args.repeats} rounds, in turn; best times, median ratios)")
    print(f"   np.sort baseline (float32 matmul + np.sort rows): {t_np:.3f} s  value {v_np:.7g}")
    print(f"   exact:     {t_ex:.3f} s  x{r_ex:.1f} vs np.sort  |exact - np.sort| / np.sort = "
          f"{abs(v_ex - v_np) / v_np:.1e}")
    print(f"   histogram: {t_hi:.3f} s  x{r_hi:.1f} vs np.sort  |hist - exact| / exact = "
          f"{abs(v_hi - v_ex) / v_ex:.1e}")
    if args.pot:
        import ot

        mean, std = y.mean(axis=0), y.std(axis=0)
        t0 = time.perf_counter()
        pot = float(ot.sliced_wasserstein_distance((x - mean) / std, (y - mean) / std, projections=theta, p=1))
        t_pot = time.perf_counter() - t0
        out["single"].update(pot_seconds=t_pot, pot_value=pot, pot_version=ot.__version__,
                             pot_relative_difference=abs(v_ex - pot) / pot)
        print(f"   POT {ot.__version__}: {t_pot:.2f} s (one run)  exact x{t_pot / t_ex:.0f}, histogram "
              f"x{t_pot / t_hi:.0f} faster; |exact - POT| / POT = {abs(v_ex - pot) / pot:.1e}")

    if not args.skip_bootstrap:
        kw = dict(n_jets=args.n, n_bootstraps=args.bootstraps, n_projections=args.projections, seed=0)
        times, values = _interleaved(
            {
                "exact": lambda: swd.bootstrap_swd(x, ref, method="exact", **kw),
                "histogram": lambda: swd.bootstrap_swd(x, ref, method="histogram", **kw),
            },
            args.boot_repeats,
        )
        exact, hist = values["exact"], values["histogram"]
        t_bex, t_bhi = min(times["exact"]), min(times["histogram"])
        r_boot = _ratio(times["exact"], times["histogram"])
        errors = _errors(hist, exact)
        out["bootstrap"] = {
            "seconds": times, "exact_seconds": t_bex, "histogram_seconds": t_bhi, "speedup": r_boot,
            "exact": {"swd": exact.swd, "swd_std": exact.swd_std, "floor": exact.floor, "floor_std": exact.floor_std},
            "histogram": {"swd": hist.swd, "swd_std": hist.swd_std, "floor": hist.floor, "floor_std": hist.floor_std,
                          "bins": hist.bins},
            **errors,
        }
        print(f"\n2. bootstrap with floor ({args.bootstraps} x {args.n} jets, {args.projections} directions; "
              f"{args.boot_repeats} rounds, in turn)")
        print(f"   exact:     {t_bex:.2f} s (all: {', '.join(f'{t:.2f}' for t in times['exact'])})  "
              f"SWD {exact.swd:.5g} +- {exact.swd_std:.2g}, floor {exact.floor:.5g} +- {exact.floor_std:.2g}")
        print(f"   histogram: {t_bhi:.2f} s (all: {', '.join(f'{t:.2f}' for t in times['histogram'])})  "
              f"SWD {hist.swd:.5g} +- {hist.swd_std:.2g}, floor {hist.floor:.5g} +- {hist.floor_std:.2g}  "
              f"({hist.bins} bins)")
        print(f"   speed-up x{r_boot:.1f} (median over the rounds)")

        print(f"\n3. |histogram - exact| / exact floor (floor {exact.floor:.5g}), same resamples and directions")
        print("   bins   seconds   mean SWD   mean floor   worst resample")
        scan = [int(b) for b in args.bins_scan.split(",") if b.strip()]
        out["bins_scan"] = []
        for bins in sorted(set(scan) | {swd.DEFAULT_BINS}):
            if bins == swd.DEFAULT_BINS:
                t_b, res = t_bhi, hist
            else:
                t_b, res = _best(lambda b=bins: swd.bootstrap_swd(x, ref, method="histogram", bins=b, **kw), 1)
            e = _errors(res, exact)
            out["bins_scan"].append({"bins": bins, "seconds": t_b, **e})
            mark = "  (default)" if bins == swd.DEFAULT_BINS else ""
            print(f"   {bins:5d}  {t_b:7.2f}   {e['swd_error_over_floor']:8.4%}   {e['floor_error_over_floor']:9.4%}"
                  f"   {e['worst_resample_error_over_floor']:12.4%}{mark}")

    out["load_average_end"] = _load()
    print(f"\nload average (1 min) at start {load:.2f}, at end {out['load_average_end']:.2f}; "
          f"{os.cpu_count()} CPUs, {numba.get_num_threads()} numba threads")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
