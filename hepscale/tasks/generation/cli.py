"""The generation task's command-line parts: what ``hepscale evaluate`` prints for generated jets."""

from __future__ import annotations

import argparse

__all__ = ["evaluate_command"]


def evaluate_command(args: argparse.Namespace) -> int:
    """``hepscale evaluate`` of a generative run folder or a jet dataset (the SWD against ``--reference``)."""
    from hepscale.tasks.generation.evaluate import evaluate_run

    if args.reference is None:
        raise ValueError("--reference: a reference jet dataset is required to evaluate generated jets")

    names = [n.strip() for n in args.observables.split(",") if n.strip()]
    record, written = evaluate_run(
        args.target, args.reference, observables=names, n_jets=args.n, n_bootstraps=args.bootstraps,
        n_projections=args.projections, p=args.p, seed=args.seed, floor=not args.no_floor,
        figures=not args.no_figures, output=args.output, drop_nonfinite=args.drop_nonfinite, jetnet=args.jetnet,
        label=args.label, com=args.com, resolution="raw" if args.raw_reference else "model",
    )
    s = record["swd"]
    floor = "" if s["floor_mean"] is None else f"  floor {s['floor_mean']:.4g} +- {s['floor_std']:.2g}"
    where = "reference at the model's resolution" if record.get("reference_resolution") == "model" else "reference"
    print(f"SWD ({', '.join(names)}; {s['n_bootstraps']} x {s['n_jets']} jets; {where}): "
          f"{s['mean']:.4g} +- {s['std']:.2g}{floor}")
    if "tokenization" in record:
        t = record["tokenization"]
        print(f"tokenization distance SWD(decoded real, real): {t['mean']:.4g} +- {t['std']:.2g}  "
              f"raw floor {t['raw_floor_mean']:.4g} +- {t['raw_floor_std']:.2g}")
    for name, w in s["per_observable"].items():
        fl = "" if w["floor_mean"] is None else f"  floor {w['floor_mean']:.4g}"
        print(f"  W_{s['p']:g}({name}) = {w['mean']:.4g} +- {w['std']:.2g}{fl}")
    if "jetnet" in record:
        for key, val in record["jetnet"].items():
            if isinstance(val, dict) and "value" in val:
                print(f"  {key} = {val['value']:.4g} +- {val['error']:.2g}")
    print(f"written: {written}")
    return 0
