"""Particle-transformer tagger: configuration, size table and parameter/FLOP accounting, without torch.

The architecture of a :class:`~hepscale.models.tagger.ParticleTransformer` is a
:class:`TaggerConfig`; the named sizes of the tagging study (Pico ... XL) come from the size
table ``configs/taggers.yaml`` (:func:`tagger_sizes`, :func:`tagger_config`).

Notation: ``F`` input features per particle, ``P`` padded particles per jet
(``max_particles``), ``C`` classes, ``d = d_model``, ``H = n_head``, ``L = n_layer`` particle
self-attention blocks, ``K = n_class_layer`` class-attention blocks, ``r = ffn_ratio``,
``q = pair_dim``, ``n_p = n_pair_features`` (4). Every linear layer and LayerNorm has a bias.

Parameters
----------
"Embedding" parameters are those of the layers that map raw inputs into the model: the
per-particle input embedding (LayerNorm(F), Linear(F, d), GELU, Linear(d, d)) and, with
``pairwise``, the pair embedding (Linear(n_p, q), GELU, Linear(q, q), GELU, Linear(q, H)) that
turns the interaction features of every particle pair into one attention bias per head.
Everything else is "non-embedding": the blocks, the class token, the final LayerNorm and the
classification head::

    block (self- or class-attention) = (4 + 2 r) d^2 + (9 + r) d
    N_non_embedding = (L + K) block + d (class token) + 2 d (final LayerNorm) + d C + C (head)
    N_embedding     = 2 F + F d + d + d^2 + d
                      (+ n_p q + q + q^2 + q + q H + H with pairwise)
    N_total         = N_non_embedding + N_embedding

FLOPs
-----
Forward FLOPs of one jet at the padded length ``P`` (:func:`forward_flops_per_jet`) count the
matrix multiplications only, 2 FLOPs per multiply-accumulate (bias additions, activations,
LayerNorms, softmax, dropout and the pair features themselves are neglected)::

    input embedding      2 P (F d + d^2)
    pair embedding       2 P^2 (n_p q + q^2 + q H)                        (pairwise only)
    self-attention block 2 P (3 d^2 + d^2 + 2 r d^2) + 2 P^2 d (Q K^T) + 2 P^2 d (A V)
    class-attention block 2 d^2 (query of the class token) + 2 (P + 1) 2 d^2 (keys and values of
                         [class token, particles]) + 4 (P + 1) d (Q K^T, A V) + 2 d^2 (output)
                         + 4 r d^2 (feed-forward of the class token)
    head                 2 d C

Padding is computed like real particles (the model runs at the padded length), so the count
depends on ``P``, not on the multiplicity of the jet. This is exactly what
:class:`torch.utils.flop_counter.FlopCounterMode` measures for one forward pass of batch 1
(where it counts the fused attention kernel: on CUDA always; on CPU once the kernel
``aten._scaled_dot_product_flash_attention_for_cpu`` is given the formula of the CUDA kernels,
as the tests do).

Training FLOPs per jet (:func:`train_flops_per_jet`) are 3 x forward (the backward pass costs
twice the forward; the usual convention, which also charges the input layers for the gradients
of their inputs that autograd skips), returned as the pair ``(non-embedding, total)`` that mirrors
``(N_non_embedding, N_total)``: the first counts the matmuls of the non-embedding layers only
(blocks, attention scores and values, head), the second all matmuls (adding the input and pair
embeddings). The trainer writes both into ``result.json`` (``flops``, ``flops_total_params``).

This module imports no torch, so that planning a study does not need it.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from dataclasses import dataclass
from typing import Any

from hepscale.errors import ConfigError
from hepscale.resources import resource

__all__ = [
    "SIZE_KEYS",
    "TaggerConfig",
    "forward_flops_per_jet",
    "param_counts",
    "tagger_config",
    "tagger_sizes",
    "train_flops_per_jet",
]

#: the keys of one size of ``configs/taggers.yaml`` that set the architecture
SIZE_KEYS = ("d_model", "n_head", "n_layer", "n_class_layer", "pair_dim")
#: the fields only a ``custom`` size may set (a named size fixes them)
_SHAPE_KEYS = ("d_model", "n_head", "n_layer")
#: fields a named size may override (``model.n_class_layer`` etc.)
_OVERRIDABLE = ("n_class_layer", "ffn_ratio", "pair_dim")
#: the interaction features of a particle pair: ln Delta, ln kT, ln z, ln m^2
N_PAIR_FEATURES = 4


@dataclass(frozen=True)
class TaggerConfig:
    """Architecture of a :class:`~hepscale.models.tagger.ParticleTransformer`.

    Attributes
    ----------
    n_features
        Input features per particle, F (from the feature set: ``kin`` 7, ``kinpid`` 13, ``full`` 17).
    n_classes
        Output classes, C.
    max_particles
        Padded particles per jet, P: the length the FLOPs are counted at (the model itself
        accepts any length).
    d_model, n_head, n_layer
        Width, attention heads (``d_model % n_head == 0``) and particle self-attention blocks.
    n_class_layer
        Class-attention blocks: a learned class token attends over [class token, particles].
    ffn_ratio
        Hidden width of the feed-forward layers in units of ``d_model``.
    pairwise
        Add the embedded interaction features of each particle pair to the self-attention logits
        (Particle Transformer); the model then needs the four-momenta.
    n_pair_features
        Interaction features per pair (4: ln Delta, ln kT, ln z, ln m^2).
    pair_dim
        Hidden width of the pair embedding (a per-pair MLP n_pair_features -> pair_dim -> pair_dim -> n_head).
    dropout
        Dropout probability (attention weights, residual branches, embedding); 0 for the scaling study.

    Raises
    ------
    ConfigError
        When a field is out of range (the message names ``model.<field>``).
    """

    n_features: int
    n_classes: int
    max_particles: int
    d_model: int
    n_head: int
    n_layer: int
    n_class_layer: int = 2
    ffn_ratio: int = 4
    pairwise: bool = False
    n_pair_features: int = N_PAIR_FEATURES
    pair_dim: int = 64
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("n_features", "n_classes", "max_particles", "d_model", "n_head", "n_layer", "n_class_layer",
                     "ffn_ratio", "pair_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"model.{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))  # plain ints (numpy's too) for asdict, YAML and JSON
        if self.n_classes < 2:
            raise ConfigError(f"model.n_classes must be at least 2, got {self.n_classes}")
        if self.d_model % self.n_head:
            raise ConfigError(f"model.d_model={self.d_model} must be divisible by model.n_head={self.n_head}")
        if self.n_pair_features != N_PAIR_FEATURES:
            raise ConfigError(f"model.n_pair_features must be {N_PAIR_FEATURES} (ln Delta, ln kT, ln z, ln m^2), "
                              f"got {self.n_pair_features!r}")
        if not isinstance(self.pairwise, bool):
            raise ConfigError(f"model.pairwise must be true or false, got {self.pairwise!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, numbers.Real) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout!r}")
        object.__setattr__(self, "dropout", float(self.dropout))


# ---------------------------------------------------------------------------- size table
def tagger_sizes(path: str | os.PathLike[str] | None = None) -> dict[str, dict[str, int]]:
    """The size table (name -> ``d_model, n_head, n_layer, n_class_layer, pair_dim``), in order of size.

    Parameters
    ----------
    path
        A size table to read instead of ``configs/taggers.yaml`` shipped with the package
        (:func:`hepscale.resources.resource`).

    Raises
    ------
    ConfigError
        When the table is not a mapping under ``sizes`` or a size lacks a key or has a
        non-positive value (the message names the file and the size).
    """
    from hepscale.config import read_yaml, safe_load

    if path is None:
        name = "configs/taggers.yaml"
        data: Any = safe_load(resource(name).read_text(encoding="utf-8"), name=name)
    else:
        name = os.fspath(path)
        data = read_yaml(path)
    sizes = data.get("sizes") if isinstance(data, dict) else None
    if not isinstance(sizes, dict) or not sizes:
        raise ConfigError(f"{name}: expected a mapping of sizes under key 'sizes'")
    out: dict[str, dict[str, int]] = {}
    for size, spec in sizes.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"{name}: sizes.{size} must be a mapping with keys {', '.join(SIZE_KEYS)}")
        missing = [k for k in SIZE_KEYS if k not in spec]
        if missing:
            raise ConfigError(f"{name}: sizes.{size} lacks {', '.join(missing)}")
        values = {k: spec[k] for k in SIZE_KEYS}
        bad = [k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1]
        if bad:
            raise ConfigError(f"{name}: sizes.{size}.{bad[0]} must be a positive integer, got {values[bad[0]]!r}")
        if size == "custom":
            raise ConfigError(f"{name}: 'custom' is reserved for explicit shapes and cannot name a size")
        out[str(size)] = values
    return out


def tagger_config(
    size: str,
    *,
    n_features: int,
    n_classes: int,
    max_particles: int,
    pairwise: bool = False,
    dropout: float = 0.0,
    path: str | os.PathLike[str] | None = None,
    **custom: Any,
) -> TaggerConfig:
    """The :class:`TaggerConfig` of a named size of the table, or of an explicit shape.

    Parameters
    ----------
    size
        A name of ``configs/taggers.yaml`` (``Pico`` ... ``XL``), or ``"custom"``.
    n_features, n_classes, max_particles
        Inputs, set by the data: features per particle, classes, padded particles per jet.
    pairwise, dropout
        As in :class:`TaggerConfig`.
    path
        A size table to read instead of the packaged one.
    **custom
        With ``"custom"``: ``d_model``, ``n_head``, ``n_layer`` (required) and optionally
        ``n_class_layer``, ``ffn_ratio``, ``pair_dim``. With a named size: ``n_class_layer``,
        ``ffn_ratio`` or ``pair_dim`` override the table's.

    Raises
    ------
    ConfigError
        For an unknown size (the message names ``model.size`` and the known sizes), a custom
        size without its shape, a named size given a shape, or an unknown key.
    """
    unknown = sorted(set(custom) - set(_SHAPE_KEYS) - set(_OVERRIDABLE))
    if unknown:
        raise ConfigError(f"model: unknown key(s) {', '.join(unknown)}; expected {', '.join(_SHAPE_KEYS + _OVERRIDABLE)}")
    if size == "custom":
        missing = [k for k in _SHAPE_KEYS if custom.get(k) is None]
        if missing:
            raise ConfigError(f"model.size: custom needs {', '.join(f'model.{k}' for k in missing)}")
        shape = {k: v for k, v in custom.items() if v is not None}
    else:
        sizes = tagger_sizes(path)
        if size not in sizes:
            raise ConfigError(f"model.size: {size!r} is not in the tagger size table configs/taggers.yaml; "
                              f"valid sizes: {', '.join(sizes)}, custom")
        given = [k for k in _SHAPE_KEYS if custom.get(k) is not None]
        if given:
            raise ConfigError(f"model.size: {size} fixes {', '.join(given)}; set model.size=custom to choose "
                              f"{', '.join(f'model.{k}' for k in given)}")
        shape = dict(sizes[size])
        shape.update({k: v for k, v in custom.items() if v is not None})
    return TaggerConfig(n_features=n_features, n_classes=n_classes, max_particles=max_particles, pairwise=pairwise,
                        dropout=dropout, **shape)


# ---------------------------------------------------------------------------- counting
def _block_params(d: int, r: int) -> int:
    """Parameters of one self- or class-attention block (two LayerNorms, Q/K/V and output
    projections, feed-forward), all with biases."""
    return (4 + 2 * r) * d * d + (9 + r) * d


def _embedding_params(cfg: TaggerConfig) -> int:
    d, f = cfg.d_model, cfg.n_features
    n = 2 * f + f * d + d + d * d + d
    if cfg.pairwise:
        q = cfg.pair_dim
        n += cfg.n_pair_features * q + q + q * q + q + q * cfg.n_head + cfg.n_head
    return n


def param_counts(cfg: TaggerConfig) -> tuple[int, int]:
    """``(N non-embedding, N total)`` of the model of ``cfg``, from the config.

    Embedding = the input embedding and the pair embedding; non-embedding = everything else
    (see the module docstring for the formulas).
    """
    d = cfg.d_model
    non_embedding = (cfg.n_layer + cfg.n_class_layer) * _block_params(d, cfg.ffn_ratio) + 3 * d
    non_embedding += d * cfg.n_classes + cfg.n_classes
    return non_embedding, non_embedding + _embedding_params(cfg)


def _forward_flops(cfg: TaggerConfig) -> tuple[float, float]:
    """Forward FLOPs of one padded jet: (non-embedding layers, embedding layers)."""
    d, r, p = cfg.d_model, cfg.ffn_ratio, cfg.max_particles
    self_block = 2 * p * (4 + 2 * r) * d * d + 4 * p * p * d
    class_block = 2 * d * d + 4 * (p + 1) * d * d + 4 * (p + 1) * d + 2 * d * d + 4 * r * d * d
    body = cfg.n_layer * self_block + cfg.n_class_layer * class_block + 2 * d * cfg.n_classes
    embed = 2 * p * (cfg.n_features * d + d * d)
    if cfg.pairwise:
        q = cfg.pair_dim
        embed += 2 * p * p * (cfg.n_pair_features * q + q * q + q * cfg.n_head)
    return float(body), float(embed)


def forward_flops_per_jet(cfg: TaggerConfig) -> float:
    """Forward FLOPs of one jet at the padded length ``cfg.max_particles``: every matmul
    (embeddings, projections, attention scores and values, feed-forward, head), 2 per
    multiply-accumulate."""
    body, embed = _forward_flops(cfg)
    return body + embed


def train_flops_per_jet(cfg: TaggerConfig) -> tuple[float, float]:
    """Training FLOPs (forward + backward = 3 x forward) of one jet at the padded length.

    Returns
    -------
    non_embedding, total
        3 x the forward matmul FLOPs of the non-embedding layers only (blocks, attention, head),
        and 3 x those of all layers (adding the input and pair embeddings); the pair mirrors
        ``(N non-embedding, N total)`` of :func:`param_counts`.
    """
    body, embed = _forward_flops(cfg)
    return 3.0 * body, 3.0 * (body + embed)


def _table_header(sizes: dict[str, dict[str, int]], *, n_features: int = 17, n_classes: int = 2,
                  max_particles: int = 128) -> list[dict[str, Any]]:
    """Rows of the size table with their counts (used to write the comment of configs/taggers.yaml)."""
    rows = []
    for name, shape in sizes.items():
        cfg = TaggerConfig(n_features=n_features, n_classes=n_classes, max_particles=max_particles, **shape)
        pair = dataclasses.replace(cfg, pairwise=True)
        n_ne, n_tot = param_counts(cfg)
        rows.append({"name": name, **shape, "n_params_non_embedding": n_ne, "n_params_total": n_tot,
                     "n_params_total_pairwise": param_counts(pair)[1],
                     "train_flops_per_jet": train_flops_per_jet(cfg)[1],
                     "train_flops_per_jet_pairwise": train_flops_per_jet(pair)[1]})
    return rows
