"""Particle-transformer jet tagger, in one file.

A jet is a padded set of ``P`` particles with ``F`` features each (``x``, shape (B, P, F)) and a
mask (True for real particles). The model (after ParT, Qu, Li, Qian 2022, and CaiT):

1. per-particle embedding: LayerNorm(F), Linear(F, d), GELU, Linear(d, d);
2. ``n_layer`` pre-LayerNorm self-attention blocks over the particles (attention and a GELU
   feed-forward of width ``ffn_ratio d``); padded particles are masked as keys;
3. with ``pairwise``: the interaction features of every particle pair (:func:`pairwise_features`:
   ln Delta, ln kT, ln z, ln m^2 from the four-momenta) go through a per-pair MLP to one value
   per head, ``U`` (B, n_head, P, P), added to the attention logits of every self-attention block;
4. ``n_class_layer`` class-attention blocks: a learned class token attends over
   [class token, particles] (padding masked) and is updated alone;
5. LayerNorm and a Linear head on the class token: the logits (B, n_classes).

There is no positional encoding: the logits are invariant under permutations of the particles,
and padding (whatever its feature values) does not change them. Padded inputs are zeroed first,
padded keys get -inf (a jet with no real particle at all attends to every slot instead, so no
row of the attention is empty and nothing turns NaN), and padded particles are never queried by
the class token, so their own outputs go nowhere.

Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention` (a boolean key
mask without ``pairwise``; an additive float mask ``U`` with -inf at padded keys with it).

The parameter and FLOP accounting (embedding = input embedding + pair embedding) is in
:mod:`hepscale.models.tagger_sizes`, without torch; :func:`count_parameters` counts the tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from hepscale.models.tagger_sizes import (
    TaggerConfig,
    forward_flops_per_jet,
    param_counts,
    tagger_config,
    tagger_sizes,
    train_flops_per_jet,
)

__all__ = [
    "ParticleTransformer",
    "TaggerConfig",
    "count_parameters",
    "forward_flops_per_jet",
    "pairwise_features",
    "param_counts",
    "tagger_config",
    "tagger_sizes",
    "train_flops_per_jet",
]

#: clamp of the arguments of the logarithms in :func:`pairwise_features`
PAIR_EPS = 1e-8


def pairwise_features(p4: torch.Tensor, mask: torch.Tensor, *, eps: float = PAIR_EPS) -> torch.Tensor:
    """The interaction features of every particle pair (Particle Transformer).

    For particles a, b with rapidity y, azimuth phi and transverse momentum pT::

        Delta = sqrt((y_a - y_b)^2 + dphi^2)    (dphi wrapped into [-pi, pi))
        kT    = min(pT_a, pT_b) Delta
        z     = min(pT_a, pT_b) / (pT_a + pT_b)
        m^2   = (E_a + E_b)^2 - |p_a + p_b|^2

    and the features are ``(ln Delta, ln kT, ln z, ln m^2)``, each argument clamped to at least
    ``eps`` (self pairs have Delta = 0 and, for massless particles, m^2 = 0: they get ln eps).
    Pairs involving a padded particle are 0. Computed in the dtype of ``p4`` (keep it float32 or
    float64: the invariant mass cancels).

    Parameters
    ----------
    p4
        Four-momenta (px, py, pz, E), shape (B, P, 4).
    mask
        True for real particles, shape (B, P).
    eps
        Lower clamp of the arguments of the logarithms.

    Returns
    -------
    torch.Tensor
        Shape (B, P, P, 4).
    """
    if p4.dim() != 3 or p4.shape[-1] != 4 or mask.shape != p4.shape[:2]:
        raise ValueError(f"pairwise_features: expected p4 (B, P, 4) and mask (B, P), got {tuple(p4.shape)} and "
                         f"{tuple(mask.shape)}")
    mask = mask.bool()
    p4 = torch.where(mask[..., None], p4, torch.zeros((), dtype=p4.dtype, device=p4.device))
    px, py, pz, e = p4.unbind(-1)
    pt = torch.sqrt(px * px + py * py)
    rap = 0.5 * torch.log((e + pz).clamp(min=eps) / (e - pz).clamp(min=eps))
    phi = torch.atan2(py, px)
    dy = rap[:, :, None] - rap[:, None, :]
    dphi = torch.remainder(phi[:, :, None] - phi[:, None, :] + math.pi, 2 * math.pi) - math.pi
    delta = torch.sqrt(dy * dy + dphi * dphi)
    pt_a, pt_b = pt[:, :, None], pt[:, None, :]
    ptmin = torch.minimum(pt_a, pt_b)
    kt = ptmin * delta
    z = ptmin / (pt_a + pt_b).clamp(min=eps)
    s = p4[:, :, None, :] + p4[:, None, :, :]
    m2 = s[..., 3] ** 2 - (s[..., 0] ** 2 + s[..., 1] ** 2 + s[..., 2] ** 2)
    feats = torch.stack([t.clamp(min=eps).log() for t in (delta, kt, z, m2)], dim=-1)
    pair = mask[:, :, None] & mask[:, None, :]
    return torch.where(pair[..., None], feats, torch.zeros((), dtype=feats.dtype, device=feats.device))


def count_parameters(model: ParticleTransformer) -> tuple[int, int]:
    """``(N non-embedding, N total)`` of ``model`` by its tensors (shared tensors counted once).

    Embedding tensors are those of ``model.embed`` and ``model.pair_embed``.
    """
    embedding = {id(p) for m in (model.embed, model.pair_embed) if m is not None for p in m.parameters()}
    seen: set[int] = set()
    total = non_embedding = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if id(p) not in embedding:
            non_embedding += p.numel()
    return non_embedding, total


# ---------------------------------------------------------------------------- modules
class ParticleEmbedding(nn.Module):
    """Per-particle input embedding: LayerNorm(F), Linear(F, d), GELU, Linear(d, d)."""

    def __init__(self, cfg: TaggerConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.n_features)
        self.fc1 = nn.Linear(cfg.n_features, cfg.d_model)
        self.fc2 = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(self.norm(x)))))


class PairEmbedding(nn.Module):
    """Per-pair MLP of the interaction features to one attention bias per head:
    Linear(4, q), GELU, Linear(q, q), GELU, Linear(q, n_head); output (B, n_head, P, P)."""

    def __init__(self, cfg: TaggerConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.n_pair_features, cfg.pair_dim)
        self.fc2 = nn.Linear(cfg.pair_dim, cfg.pair_dim)
        self.fc3 = nn.Linear(cfg.pair_dim, cfg.n_head)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        u = self.fc3(F.gelu(self.fc2(F.gelu(self.fc1(feats)))))  # (B, P, P, H)
        return u.permute(0, 3, 1, 2).contiguous()  # a dense bias: what the fused CUDA kernels take


class FeedForward(nn.Module):
    def __init__(self, cfg: TaggerConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.ffn_ratio * cfg.d_model)
        self.proj = nn.Linear(cfg.ffn_ratio * cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, n_head: int,
            dropout: float) -> torch.Tensor:
    """Multi-head attention of queries (B, Tq, C) over keys/values (B, Tk, C) with ``mask``
    (boolean: True attends; float: added to the logits), broadcastable to (B, H, Tq, Tk)."""
    B, Tq, C = q.shape
    Tk = k.shape[1]
    hs = C // n_head
    q = q.view(B, Tq, n_head, hs).transpose(1, 2)
    k = k.view(B, Tk, n_head, hs).transpose(1, 2)
    v = v.view(B, Tk, n_head, hs).transpose(1, 2)
    if mask.is_floating_point():
        mask = mask.to(q.dtype)  # under autocast the bias follows the queries
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    return y.transpose(1, 2).reshape(B, Tq, C)


class SelfAttention(nn.Module):
    def __init__(self, cfg: TaggerConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split(x.shape[-1], dim=2)
        y = _attend(q, k, v, mask, self.n_head, self.dropout if self.training else 0.0)
        return self.resid_drop(self.proj(y))


class ClassAttention(nn.Module):
    """The class token (first row of ``u``) queries all of ``u`` = [class token, particles]."""

    def __init__(self, cfg: TaggerConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, u: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k, v = self.kv(u).split(u.shape[-1], dim=2)
        y = _attend(self.q(u[:, :1]), k, v, mask, self.n_head, self.dropout if self.training else 0.0)
        return self.resid_drop(self.proj(y))


class ParticleBlock(nn.Module):
    """Pre-LayerNorm self-attention block over the particles."""

    def __init__(self, cfg: TaggerConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.ffn(self.ln2(x))


class ClassBlock(nn.Module):
    """Pre-LayerNorm class-attention block: updates the class token only (CaiT)."""

    def __init__(self, cfg: TaggerConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = ClassAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg)

    def forward(self, cls: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        cls = cls + self.attn(self.ln1(torch.cat([cls, x], dim=1)), mask)
        return cls + self.ffn(self.ln2(cls))


class ParticleTransformer(nn.Module):
    """Transformer jet tagger over a padded set of particles (see the module docstring).

    Parameters
    ----------
    cfg
        The architecture; also ``model.config``.
    """

    def __init__(self, cfg: TaggerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed = ParticleEmbedding(cfg)
        self.pair_embed = PairEmbedding(cfg) if cfg.pairwise else None
        self.blocks = nn.ModuleList(ParticleBlock(cfg) for _ in range(cfg.n_layer))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        self.class_blocks = nn.ModuleList(ClassBlock(cfg) for _ in range(cfg.n_class_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.n_classes)
        self.apply(self._init_weights)
        nn.init.normal_(self.cls_token, mean=0.0, std=0.02)
        scaled = 0.02 / math.sqrt(2 * (cfg.n_layer + cfg.n_class_layer))
        for name, p in self.named_parameters():  # GPT-2 scaled init of the residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=scaled)

    @property
    def cfg(self) -> TaggerConfig:
        """The architecture (same as ``config``)."""
        return self.config

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, p4: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of a batch of jets.

        Parameters
        ----------
        x
            Particle features, float, shape (B, P, F); values in padded slots are ignored.
        mask
            True for real particles, shape (B, P).
        p4
            Four-momenta (px, py, pz, E), shape (B, P, 4); required with ``config.pairwise``.

        Returns
        -------
        torch.Tensor
            Logits, shape (B, n_classes).

        Raises
        ------
        ValueError
            When the shapes do not agree with each other or with the config, or ``p4`` is
            missing with ``pairwise``.
        """
        cfg = self.config
        if x.dim() != 3 or x.shape[-1] != cfg.n_features or mask.shape != x.shape[:2]:
            raise ValueError(f"ParticleTransformer: expected x (B, P, {cfg.n_features}) and mask (B, P), got "
                             f"{tuple(x.shape)} and {tuple(mask.shape)}")
        mask = mask.bool()
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        h = self.embed(torch.where(mask[..., None], x, zero)).to(x.dtype)  # residual stream in the input dtype
        # an all-padding jet attends to every (zeroed) slot: no attention row is empty
        keys = mask | ~mask.any(dim=1, keepdim=True)
        attn_mask: torch.Tensor = keys[:, None, None, :]
        if self.pair_embed is not None:
            if p4 is None or p4.shape != (*x.shape[:2], 4):
                got = None if p4 is None else tuple(p4.shape)
                raise ValueError(f"ParticleTransformer: pairwise needs p4 of shape (B, P, 4) = "
                                 f"{(*x.shape[:2], 4)}, got {got}")
            u = self.pair_embed(pairwise_features(p4, mask).to(x.dtype))
            attn_mask = u.masked_fill(~attn_mask, float("-inf"))
        for block in self.blocks:
            h = block(h, attn_mask)
        cls = self.cls_token.expand(x.shape[0], 1, -1).to(h.dtype)  # float32 under autocast, like h
        cls_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)[:, None, None, :]
        for block in self.class_blocks:
            cls = block(cls, h, cls_mask)
        return self.head(self.ln_f(cls[:, 0]))
