"""``hepscale sample``: jets from a trained generative run, or exact log-likelihoods (:mod:`hepscale.models.sampling`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hepscale.cli import configure_logging, run_tool


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale sample RUNDIR --n N --output RUNDIR/samples.parquet``."""
    parser = argparse.ArgumentParser(prog="hepscale sample", description="Sample jets from a trained run.")
    parser.add_argument("run_dir", help="run folder (with checkpoints/ckpt.pt and tokenizer.json)")
    parser.add_argument("--n", type=int, default=None, help="number of jets to sample")
    parser.add_argument("--output", required=True, help="output jet dataset (convention: RUNDIR/samples.parquet)")
    parser.add_argument("--batch", type=int, default=256, help="sequences decoded together (default 256)")
    parser.add_argument("--temperature", type=float, default=1.0, help="logit temperature (default 1)")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the K most likely tokens")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--device", default="cpu",
                        help="torch device: cpu (default), cuda, cuda:N or auto (CUDA when available); "
                             "sampling on CUDA runs the model under bfloat16 autocast")
    parser.add_argument("--log-likelihood", default=None, metavar="JETS",
                        help="instead of sampling, write the log-likelihood of the jets of JETS to --output (.npy)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    args = parser.parse_args(argv)
    configure_logging(not args.quiet)
    if not args.log_likelihood and (args.n is None or args.n < 1):
        parser.error("--n must be a positive number of jets")

    def body() -> int:
        import numpy as np

        from hepscale._io import atomic_path
        from hepscale.devices import resolve_device
        from hepscale.jets.dataset import read_jets
        from hepscale.tasks.generation.sampling import jet_log_likelihood, sample_run

        resolve_device(args.device)  # an unusable --device fails before any file is read
        if args.log_likelihood:
            ll = jet_log_likelihood(args.run_dir, read_jets(args.log_likelihood), batch=args.batch, device=args.device)
            with atomic_path(args.output, suffix=".npy") as tmp, open(tmp, "wb") as handle:
                np.save(handle, ll, allow_pickle=False)
            print(f"log-likelihood of {len(ll)} jets (mean {ll.mean():.4f} nats) -> {args.output}")
            return 0
        sample_run(args.run_dir, args.n, output=args.output, batch=args.batch, temperature=args.temperature,
                   top_k=args.top_k, seed=args.seed, device=args.device)
        print(f"{args.n} jets -> {args.output}")
        return 0

    return run_tool("hepscale sample", body)


if __name__ == "__main__":
    raise SystemExit(main())
