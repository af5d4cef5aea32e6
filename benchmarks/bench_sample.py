"""Sampling throughput: KV cache against recomputing the whole prefix at every step.

    python benchmarks/bench_sample.py --size XS --seq-len 128 --batch 64 --n 128

Both decoders sample from the same model with the same seed (so they produce the same
jets); recomputing the prefix is what most existing jet generators do (here with the
output head evaluated at the last position only, which makes the baseline faster). The
speed-up grows with the model: the output head (d x 36003) costs the same in both and
dominates the smallest models. The model is
freshly initialised: its ``stop`` probability is about 1/V, so every sequence runs to the
full ``--seq-len`` tokens and the two methods do exactly the work of 128-token jets.
Reported: jets/s of both and the speed-up (aim >= 5x at 128 tokens).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="XS")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (start + constituents)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--n", type=int, default=128, help="jets per method")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from hepscale.models.gpt import GPT, size_config
    from hepscale.models.sampling import generate
    from hepscale.tokens.tokenizer import Tokenizer

    dev = torch.device("cuda" if (args.device == "auto" and torch.cuda.is_available()) or args.device == "cuda" else "cpu")
    tok = Tokenizer()
    torch.manual_seed(0)
    cfg = size_config(args.size, vocab_size=tok.vocab_size, block_size=args.seq_len - 1, pad_token=tok.pad)
    model = GPT(cfg).to(dev).eval()
    kw = {"start": tok.start, "stop": tok.stop, "pad": tok.pad, "batch": args.batch, "seed": 0, "progress": False}
    generate(model, min(args.batch, args.n), **kw)  # warm up
    out = {}
    seqs = {}
    for name, cache in (("kv_cache", True), ("recompute", False)):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        seqs[name] = generate(model, args.n, use_cache=cache, **kw)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        out[f"{name}_jets_per_s"] = args.n / (time.perf_counter() - t0)
    lengths = [len(s) for s in seqs["kv_cache"]]
    result = {
        "size": args.size, "seq_len": args.seq_len, "batch": args.batch, "n": args.n,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "threads": torch.get_num_threads(),
        **out, "speedup": out["kv_cache_jets_per_s"] / out["recompute_jets_per_s"],
        "mean_tokens_per_jet": float(np.mean(lengths)),
        "same_jets": all(np.array_equal(a, b) for a, b in zip(seqs["kv_cache"], seqs["recompute"])),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
