"""Models: the GPT jet generator, its size table and parameter accounting, and sampling.

- :mod:`~hepscale.models.sizes`: :class:`GPTConfig`, the size table (Pico ... XXL) and parameter
  counts, without torch;
- :mod:`~hepscale.models.gpt`: the model (torch, nanoGPT style, KV cache);
- :mod:`~hepscale.models.sampling`: sampling and exact log-likelihoods of a run (``hepscale sample``);
- :mod:`~hepscale.models.tagger_sizes`: :class:`TaggerConfig`, the tagger size table (Pico ... XL)
  and its parameter and FLOP counts, without torch;
- :mod:`~hepscale.models.tagger`: the particle-transformer jet tagger (torch).
"""

from __future__ import annotations

from hepscale._lazy import lazy_exports

_EXPORTS = {
    "GPTConfig": "hepscale.models.sizes",
    "model_sizes": "hepscale.models.sizes",
    "size_config": "hepscale.models.sizes",
    "n_params_non_embedding": "hepscale.models.sizes",
    "n_params_total": "hepscale.models.sizes",
    "flops_per_token": "hepscale.models.sizes",
    "GPT": "hepscale.models.gpt",
    "KVCache": "hepscale.models.gpt",
    "count_parameters": "hepscale.models.gpt",
    "generate": "hepscale.models.sampling",
    "log_likelihood": "hepscale.models.sampling",
    "TaggerConfig": "hepscale.models.tagger_sizes",
    "tagger_sizes": "hepscale.models.tagger_sizes",
    "tagger_config": "hepscale.models.tagger_sizes",
    "ParticleTransformer": "hepscale.models.tagger",
    "pairwise_features": "hepscale.models.tagger",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
