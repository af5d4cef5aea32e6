"""Tokens: jet constituents as token sequences for generative models (``hepscale tokenize``)."""

from __future__ import annotations

from hepscale._lazy import lazy_exports

_EXPORTS = {
    "TokenizerConfig": "hepscale.tokens.tokenizer",
    "Tokenizer": "hepscale.tokens.tokenizer",
    "TokenizerError": "hepscale.tokens.tokenizer",
    "TokenData": "hepscale.tokens.tokenizer",
    "load_tokens": "hepscale.tokens.tokenizer",
    "tokenize_dataset": "hepscale.tokens.tokenizer",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
