"""Optimizers and learning-rate schedule for the trainer.

- AdamW (:class:`torch.optim.AdamW`), weight decay on matrices only (nanoGPT rule).
- Ranger = RAdam + Lookahead (Wright 2019), as used in jet-ML training (e.g. ParticleNet /
  ParT recipes): :class:`torch.optim.RAdam` with decoupled weight decay, wrapped in
  :class:`Lookahead`, which every ``k`` steps moves slow weights a fraction ``alpha``
  towards the fast weights and restarts the fast weights from them.
- Linear warmup then cosine decay to ``min_lr`` (:func:`lr_at`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["Lookahead", "build_optimizer", "lr_at"]


class Lookahead:
    """Lookahead wrapper around an optimizer (Zhang et al. 2019).

    Parameters
    ----------
    base
        The inner ("fast") optimizer.
    k
        Fast steps between synchronisations.
    alpha
        Step of the slow weights towards the fast weights, in (0, 1].
    """

    def __init__(self, base: torch.optim.Optimizer, *, k: int = 6, alpha: float = 0.5) -> None:
        if k < 1 or not 0.0 < alpha <= 1.0:
            raise ValueError(f"lookahead needs k >= 1 and 0 < alpha <= 1, got k={k}, alpha={alpha}")
        self.base = base
        self.k = k
        self.alpha = alpha
        self.counter = 0
        self.slow = [[p.detach().clone() for p in g["params"]] for g in base.param_groups]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.base.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        self.base.step()
        self.counter += 1
        if self.counter % self.k == 0:
            for group, slows in zip(self.base.param_groups, self.slow):
                for p, s in zip(group["params"], slows):
                    s.add_(p.detach() - s, alpha=self.alpha)
                    p.copy_(s)

    def state_dict(self) -> dict[str, Any]:
        return {"base": self.base.state_dict(), "counter": self.counter, "slow": [list(s) for s in self.slow]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base.load_state_dict(state["base"])
        self.counter = int(state["counter"])
        with torch.no_grad():
            for mine, theirs in zip(self.slow, state["slow"]):
                for s, t in zip(mine, theirs):
                    s.copy_(t)


def build_optimizer(
    named_params: Iterable[tuple[str, torch.nn.Parameter]],
    *,
    name: str,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    eps: float = 1e-8,
    lookahead_k: int = 6,
    lookahead_alpha: float = 0.5,
) -> Any:
    """AdamW or Ranger over two groups: decayed matrices and non-decayed vectors/gains.

    Parameters
    ----------
    name
        ``"adamw"`` or ``"ranger"``.
    """
    seen: set[int] = set()
    decay, no_decay = [], []
    for _, p in named_params:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, foreach=True)
    if name == "ranger":
        base = torch.optim.RAdam(groups, lr=lr, betas=betas, eps=eps, decoupled_weight_decay=True, foreach=True)
        return Lookahead(base, k=lookahead_k, alpha=lookahead_alpha)
    raise ValueError(f"optim.name must be 'adamw' or 'ranger', got {name!r}")


def lr_at(step: int, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup, then cosine to ``min_lr``."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    span = max(1, total_steps - warmup_steps)
    progress = (step - warmup_steps) / span
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)
