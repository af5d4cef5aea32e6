"""Sampling throughput: KV cache against recomputing the whole prefix at every step.

    python benchmarks/bench_sample.py --size S --seq-len 128 --batch 32 --n 32 --threads 1

Both decoders sample from the same model with the same seed (so they produce the same
jets, checked: ``same_jets``); recomputing the prefix is what most existing jet generators do
(here with the output head evaluated at the last position only, which makes the baseline
faster). The model is freshly initialised: its ``stop`` probability is about 1/V, so every
sequence runs to the full ``--seq-len`` tokens and the two methods do exactly the work of
128-token jets (no sequence leaves its batch early).

Reported: jets/s of both in the same run and the speed-up (aim >= 10x for S and larger at 128
tokens), and where the KV-cache time goes, timed in one more KV-cache pass: the output head
(d x 36003 per token, the same cost in both decoders), the draw of the next token, and the
rest (the transformer blocks and the loop). ``flop_bound_speedup`` is the ratio of the
matrix-multiply FLOPs of the two decoders (non-embedding ``2 N`` per position plus ``2 d V``
for the head, per step; attention left out): the speed-up the KV cache can reach when both
run at the same FLOP rate. The speed-up grows with the model: the head dominates the smallest
ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _timed(fn: Any, name: str, totals: dict[str, float], cuda: bool) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        if cuda:
            torch.cuda.synchronize()
        totals[name] += time.perf_counter() - t0
        return out

    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="S", help="model size of configs/models.yaml (default S)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (start + constituents)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--n", type=int, default=32, help="jets per method")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed passes of each decoder, alternating; the median is reported (default 1)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from hepscale.models import sampling
    from hepscale.models.gpt import GPT, n_params_non_embedding, size_config
    from hepscale.tokens.tokenizer import Tokenizer

    dev = sampling.resolve_device(args.device)
    cuda = dev.type == "cuda"
    tok = Tokenizer()
    torch.manual_seed(0)
    cfg = size_config(args.size, vocab_size=tok.vocab_size, block_size=args.seq_len - 1, pad_token=tok.pad)
    model = GPT(cfg).to(dev).eval()
    kw = {"start": tok.start, "stop": tok.stop, "pad": tok.pad, "batch": args.batch, "seed": 0, "progress": False}
    sampling.generate(model, min(args.batch, args.n), **kw)  # warm up
    rates: dict[str, list[float]] = defaultdict(list)
    seqs = {}
    for _ in range(max(1, args.repeats)):
        for name, cache in (("kv_cache", True), ("recompute", False)):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            seqs[name] = sampling.generate(model, args.n, use_cache=cache, **kw)
            if cuda:
                torch.cuda.synchronize()
            rates[name].append(args.n / (time.perf_counter() - t0))
    out = {f"{name}_jets_per_s": float(np.median(r)) for name, r in rates.items()}
    # where the KV-cache time goes: one more pass with the head and the draw timed
    totals: dict[str, float] = defaultdict(float)
    head, draw = sampling._output_head, sampling._sample_next
    sampling._output_head = _timed(head, "head", totals, cuda)
    sampling._sample_next = _timed(draw, "draw", totals, cuda)
    try:
        t0 = time.perf_counter()
        sampling.generate(model, args.n, use_cache=True, **kw)
        wall = time.perf_counter() - t0
    finally:
        sampling._output_head, sampling._sample_next = head, draw
    lengths = [len(s) for s in seqs["kv_cache"]]
    n_ne, T, dv = n_params_non_embedding(cfg), cfg.block_size, cfg.d_model * cfg.vocab_size
    result = {
        "size": args.size, "n_params_non_embedding": n_ne, "seq_len": args.seq_len, "batch": args.batch,
        "n": args.n, "repeats": max(1, args.repeats), "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "threads": torch.get_num_threads(),
        **out, "speedup": out["kv_cache_jets_per_s"] / out["recompute_jets_per_s"],
        # per step: recompute runs T(T-1)/2 positions in all, the KV cache T - 1; both evaluate the head T - 1 times
        "flop_bound_speedup": (n_ne * T + 2 * dv) / (2 * n_ne + 2 * dv),
        "kv_cache_time_share": {
            "output_head": totals["head"] / wall, "draw": totals["draw"] / wall,
            "blocks_and_loop": 1 - (totals["head"] + totals["draw"]) / wall,
        },
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
