"""``hepscale tokenize``: a jet dataset into token arrays for generative models (:mod:`hepscale.tokens.tokenizer`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hepscale.cli import configure_logging, run_tool


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale tokenize JETS --output DIR [--config YAML] [key=value ...]``."""
    from hepscale.config import load_config
    from hepscale.tokens.tokenizer import TokenizerConfig, tokenize_dataset

    parser = argparse.ArgumentParser(prog="hepscale tokenize",
                                     description="Binned tokenizer of jet constituents for autoregressive (GPT) jet "
                                     "generation: one token per constituent.")
    parser.add_argument("jets", help="jet dataset (parquet file or directory)")
    parser.add_argument("--output", required=True, help="output directory for train.bin, val.bin, tokenizer.json")
    parser.add_argument("--config", default=None, help="YAML with TokenizerConfig fields")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the tokenizer config (e.g. n_pt=50)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    args = parser.parse_intermixed_args(argv)
    configure_logging(not args.quiet)

    def body() -> int:
        cfg = load_config(TokenizerConfig, args.config, overrides=args.overrides)
        info = tokenize_dataset(args.jets, args.output, config=cfg)
        print(
            f"{info['n_train_jets']} train jets ({info['n_train_tokens']} tokens), {info['n_val_jets']} val jets "
            f"({info['n_val_tokens']} tokens), vocabulary {info['vocab_size']} -> {args.output}"
        )
        return 0

    return run_tool("hepscale tokenize", body)


if __name__ == "__main__":
    raise SystemExit(main())
