"""GPT decoder for jet generation, in one file (nanoGPT style).

Pre-LayerNorm transformer blocks (attention and a 4x GELU MLP, no biases by default),
causal attention through :func:`torch.nn.functional.scaled_dot_product_attention`, learned
or rotary (RoPE) positions, token embedding tied to the output head. The loss is the
next-token cross entropy averaged over target tokens that are not padding.

Parameter counts (``bias=False``, ``d = d_model``, ``L = n_layer``, ``V`` vocabulary,
``S`` block size)::

    N_non_embedding = 12 L d^2 + 2 L d + d      (attention 4 d^2, MLP 8 d^2, LayerNorm weights)
    N_embedding     = V d (+ S d for learned positions) (+ V d for an untied output head)
    N_total         = N_non_embedding + N_embedding

"Non-embedding" follows Kaplan et al. (2020): every parameter except the token and
position embeddings (an untied output head counts as embedding too).

FLOPs per token of one training step (forward + backward) are ``6 N`` (Kaplan's
approximation); :func:`flops_per_token` adds the attention term ``6 L S d`` on request.
The study's compute is ``C = 6 N B S n_steps`` with ``N = N_total`` (parameters including the
embeddings, the generation study's definition; ``budget.flops_params``); ``result.json`` also
gives it with ``N_non_embedding``.

Sizes of the scaling study (Pico ... XXL) are in the size table ``configs/models.yaml``
(:func:`model_sizes`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from hepscale.models.sizes import (
    GPTConfig,
    flops_per_token,
    model_sizes,
    n_params_non_embedding,
    n_params_total,
    size_config,
)

__all__ = [
    "GPTConfig",
    "GPT",
    "KVCache",
    "model_sizes",
    "size_config",
    "n_params_non_embedding",
    "n_params_total",
    "count_parameters",
    "flops_per_token",
]


def count_parameters(model: nn.Module, *, non_embedding: bool = False) -> int:
    """Count the parameters of ``model`` by its tensors (shared tensors counted once)."""
    seen: set[int] = set()
    skip: set[int] = set()
    if non_embedding and isinstance(model, GPT):
        skip = {id(p) for p in model.embedding_parameters()}
    n = 0
    for p in model.parameters():
        if id(p) in seen or id(p) in skip:
            continue
        seen.add(id(p))
        n += p.numel()
    return n


# ---------------------------------------------------------------------------- modules
class KVCache:
    """Key/value cache for incremental decoding, allocated once and written in place.

    Holds tensors of shape (n_layer, capacity, n_head, max_len, head_size), the number of
    positions filled (``pos``) and the number of live sequences (``batch``): a forward pass with
    the cache takes exactly ``batch`` sequences, which use rows ``0 ... batch - 1``. The tensors are
    never reallocated: :meth:`keep` moves the rows of the sequences that go on to the front (a
    batch drops its finished sequences) and :meth:`reset` starts a new batch in the same buffers.
    """

    def __init__(
        self, cfg: GPTConfig, batch: int, *, max_len: int | None = None, device: Any = None, dtype: Any = None
    ) -> None:
        n = max_len or cfg.block_size
        shape = (cfg.n_layer, batch, cfg.n_head, n, cfg.d_model // cfg.n_head)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0
        self.max_len = n
        self.capacity = batch
        self.batch = batch

    def reset(self, batch: int | None = None) -> None:
        """Start a new batch of ``batch`` sequences (default: the capacity) at position 0."""
        batch = self.capacity if batch is None else batch
        if not 1 <= batch <= self.capacity:
            raise ValueError(f"a batch of {batch} sequences does not fit a KV cache of {self.capacity}")
        self.pos = 0
        self.batch = batch

    def keep(self, rows: torch.Tensor) -> None:
        """Keep the sequences ``rows`` (int64 indices into the live rows, ascending), in this order.

        Their keys and values move in place to rows ``0 ... len(rows) - 1``; ``batch`` becomes
        ``len(rows)``.
        """
        n, p = rows.numel(), self.pos
        if n == 0:
            raise ValueError("a KV cache keeps at least one sequence")
        for buf in (self.k, self.v):
            # the gather copies the kept rows out first: source and destination rows overlap
            buf[:, :n, :, :p] = buf[:, : self.batch, :, :p].index_select(1, rows)
        self.batch = n


def _rope_tables(head_size: int, positions: torch.Tensor, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (base ** (torch.arange(0, head_size, 2, device=positions.device, dtype=torch.float32) / head_size))
    ang = positions.to(torch.float32)[:, None] * inv[None, :]  # (T, hs/2)
    return ang.cos(), ang.sin()


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., 0::2].float(), x[..., 1::2].float()
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    return out.to(x.dtype)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_head = cfg.n_head
        self.head_size = cfg.d_model // cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        *,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        k = k.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        if rope is not None:
            q, k = _apply_rope(q, *rope), _apply_rope(k, *rope)
        drop = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        else:
            if B != cache.batch:
                raise ValueError(f"a batch of {B} sequences with a KV cache holding {cache.batch}")
            p = cache.pos
            k_cache, v_cache = cache.k[layer, :B], cache.v[layer, :B]  # views of the live rows
            k_cache[:, :, p : p + T] = k
            v_cache[:, :, p : p + T] = v
            k_all, v_all = k_cache[:, :, : p + T], v_cache[:, :, : p + T]
            if T == 1:
                y = F.scaled_dot_product_attention(q, k_all, v_all)
            elif p == 0:
                y = F.scaled_dot_product_attention(q, k_all, v_all, is_causal=True)
            else:  # a chunk after a prefix: query i sees keys up to p + i
                mask = torch.ones(T, p + T, dtype=torch.bool, device=x.device).tril(diagonal=p)
                y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), **kwargs)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Decoder-only transformer over token sequences.

    Parameters
    ----------
    cfg
        The architecture.
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.block_size, cfg.d_model) if cfg.pos_emb == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=cfg.bias and not cfg.tie_embeddings)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def embedding_parameters(self) -> list[nn.Parameter]:
        """Token and position embeddings, and the output head when it is untied."""
        params = [self.wte.weight]
        if self.wpe is not None:
            params.append(self.wpe.weight)
        if not self.cfg.tie_embeddings:
            params += list(self.lm_head.parameters())
        return params

    def hidden(self, idx: torch.Tensor, *, cache: KVCache | None = None, last_only: bool = False) -> torch.Tensor:
        """The final hidden states (after ``ln_f``), the input of the output head: (B, T, d_model).

        ``cache`` as in :meth:`forward` (``cache.pos`` advances by T); ``last_only``: the last
        position only, (B, 1, d_model).
        """
        T = idx.size(1)
        start = cache.pos if cache is not None else 0
        if start + T > self.cfg.block_size:
            raise ValueError(f"sequence of {start + T} positions exceeds block_size {self.cfg.block_size}")
        x = self.wte(idx)
        rope = None
        positions = torch.arange(start, start + T, device=idx.device)
        if self.wpe is not None:
            x = x + self.wpe(positions)
        else:
            rope = _rope_tables(self.cfg.d_model // self.cfg.n_head, positions, self.cfg.rope_base)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, rope=rope, cache=cache, layer=i)
        if cache is not None:
            cache.pos += T
        return self.ln_f(x[:, -1:] if last_only else x)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        reduction: Literal["mean", "none"] = "mean",
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and (optionally) loss.

        Parameters
        ----------
        idx
            Input tokens, int64, shape (B, T).
        targets
            Next tokens, shape (B, T); ``cfg.pad_token`` targets are ignored.
        cache
            KV cache for incremental decoding: ``idx`` holds the positions
            ``cache.pos ... cache.pos + T - 1``, and ``cache.pos`` advances by T.
        reduction
            ``"mean"`` over non-pad targets, or ``"none"`` for per-token losses (B, T) (0 at pad).
        last_only
            Without targets: compute the output head only at the last position (logits (B, 1, V)).

        Returns
        -------
        logits, loss
            Logits of shape (B, T, vocab_size); loss (float32) or None.
        """
        h = self.hidden(idx, cache=cache, last_only=targets is None and last_only)
        logits = self.lm_head(h)  # bf16 under autocast; cross_entropy runs in float32 there
        if targets is None:
            return logits, None
        loss = F.cross_entropy(
            logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=self.cfg.pad_token, reduction=reduction
        )
        if reduction == "none":
            loss = loss.view(idx.shape)
        return logits, loss
