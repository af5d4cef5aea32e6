"""The tagging task's command-line parts: what ``hepscale evaluate`` prints for a tagger run."""

from __future__ import annotations

import argparse

__all__ = ["evaluate_command"]


def evaluate_command(args: argparse.Namespace) -> int:
    """``hepscale evaluate`` of a tagger run: ROC, AUC and background rejections on its test split (or ``--jets``)."""
    from hepscale.tasks.tagging.evaluate import evaluate_tagger_run

    record, written = evaluate_tagger_run(
        args.target, jets=args.jets, bootstraps=args.bootstraps, seed=args.seed, figures=not args.no_figures,
        label=args.label, com=args.com, device=args.device, progress=args.verbose)
    for name, m in record["metrics"].items():
        r50, r30 = m["rejection"].get("0.5"), m["rejection"].get("0.3")
        print(f"{name} vs {record['classes'][0]} ({m['n_signal']} + {m['n_background']} jets of {record['jets']}): "
              f"AUC {m['auc']:.4f}, rejection at 50% {r50 if r50 is None else f'{r50:.4g}'}, "
              f"at 30% {r30 if r30 is None else f'{r30:.4g}'}")
    print(f"written: {written}")
    return 0
