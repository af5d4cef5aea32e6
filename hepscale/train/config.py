"""The configuration of one training run, without torch.

:class:`TrainConfig` is what ``hepscale train CONFIG key=value ...`` resolves (YAML keys of
``configs/train/``); :func:`run_id` is the stable hash that names the run. The planner of a
study (``hepscale study plan``) reads it without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hepscale.config import ConfigError, load_config, to_dict
from hepscale.errors import HepscaleError

if TYPE_CHECKING:
    from hepscale.models.sizes import GPTConfig
    from hepscale.tokens.tokenizer import Tokenizer

__all__ = [
    "TrainConfig",
    "ModelSection",
    "DataSection",
    "OptimSection",
    "BudgetSection",
    "EvalSection",
    "CheckpointSection",
    "RUNTIME_FIELDS",
    "check_run_fields",
    "TrainError",
    "run_id",
    "load_run_config",
    "run_task",
    "model_config_for",
]

#: config fields that do not change the run (left out of the run id and of the resume check)
RUNTIME_FIELDS = ("stop_after_steps",)


class TrainError(HepscaleError, RuntimeError):
    """Training cannot start or continue; the message says which input or state is wrong."""


# ---------------------------------------------------------------------------- config
@dataclass
class ModelSection:
    """``size``: a name of the size table ``configs/models.yaml`` or ``"custom"`` (then ``n_layer``,
    ``n_head``, ``d_model`` are required). ``vocab_size`` comes from ``tokenizer.json``; when
    set here it must match."""

    size: str = "Pico"
    n_layer: int | None = None
    n_head: int | None = None
    d_model: int | None = None
    vocab_size: int | None = None
    pos_emb: Literal["learned", "rotary"] = "learned"
    dropout: float = 0.0
    bias: bool = False
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        _check("model.dropout", self.dropout, 0.0 <= self.dropout < 1.0, "in [0, 1)")


@dataclass
class DataSection:
    """``tokens``: token dataset folder; ``seq_len``: input positions S; ``batch_size``: jets
    per optimizer step over all processes; ``unique_tokens``: U budget (None: all of train.bin)."""

    tokens: str = ""
    seq_len: int = 129
    batch_size: int = 64
    grad_accum: int = 1
    unique_tokens: int | None = None


@dataclass
class OptimSection:
    """``name``: adamw or ranger; cosine from ``lr`` to ``lr * min_lr_ratio`` after
    ``warmup_steps`` of linear warmup; ``grad_clip`` on the global norm (0: off)."""

    name: Literal["adamw", "ranger"] = "adamw"
    lr: float = 6e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    lookahead_k: int = 6
    lookahead_alpha: float = 0.5

    def __post_init__(self) -> None:
        _check("optim.lr", self.lr, math.isfinite(self.lr) and self.lr > 0, "a finite number > 0")
        _check("optim.min_lr_ratio", self.min_lr_ratio, 0.0 <= self.min_lr_ratio <= 1.0, "in [0, 1]")
        _check("optim.weight_decay", self.weight_decay, self.weight_decay >= 0.0, ">= 0")
        for i, beta in enumerate(self.betas):
            _check(f"optim.betas[{i}]", beta, 0.0 <= beta < 1.0, "in [0, 1)")
        _check("optim.eps", self.eps, self.eps > 0.0, "> 0")
        _check("optim.grad_clip", self.grad_clip, self.grad_clip >= 0.0, ">= 0 (0: no clipping)")
        _check("optim.lookahead_k", self.lookahead_k, self.lookahead_k >= 1, "at least 1")
        _check("optim.lookahead_alpha", self.lookahead_alpha, 0.0 < self.lookahead_alpha <= 1.0, "in (0, 1]")


@dataclass
class BudgetSection:
    """Exactly one of ``steps``, ``tokens`` (D, real tokens) or ``flops`` (C = 6 N B S steps).

    ``flops_params``: the N of the compute C, of a ``flops`` budget and of ``result.json``'s
    ``flops``: ``total`` (with the embeddings, as the generation study defines C, the default)
    or ``non_embedding``; both counts are always in ``result.json``."""

    steps: int | None = None
    tokens: int | None = None
    flops: float | None = None
    flops_params: Literal["total", "non_embedding"] = "total"


@dataclass
class EvalSection:
    """Validation every ``every`` steps on the first ``jets`` jets of ``val.bin``."""

    every: int = 200
    jets: int = 2048
    batch_size: int = 128


@dataclass
class CheckpointSection:
    """Checkpoint every ``every`` steps (and at the end, and on SIGTERM/SIGUSR1/SIGINT)."""

    every: int = 1000


@dataclass
class TrainConfig:
    """Resolved configuration of one run (``hepscale train CONFIG key=value ...``)."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    budget: BudgetSection = field(default_factory=BudgetSection)
    eval: EvalSection = field(default_factory=EvalSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    compile: bool = False
    seed: int = 1337
    #: test and debugging hook: checkpoint and exit 85 after this many steps, as on SIGTERM
    stop_after_steps: int | None = None

    def __post_init__(self) -> None:
        check_run_fields(self, data_budget="tokens", counts=(
            ("data.seq_len", self.data.seq_len), ("data.batch_size", self.data.batch_size),
            ("data.grad_accum", self.data.grad_accum), ("eval.every", self.eval.every), ("eval.jets", self.eval.jets),
            ("eval.batch_size", self.eval.batch_size), ("checkpoint.every", self.checkpoint.every),
        ))


def check_run_fields(cfg: Any, *, data_budget: str, counts: Sequence[tuple[str, int]]) -> None:
    """The checks every task's run config shares: at most one budget (``steps``, ``data_budget``,
    ``flops``), the ``counts`` (field name, value) at least 1, ``optim.warmup_steps`` and ``seed``
    at least 0.

    Raises
    ------
    ConfigError
        Naming the first field that is wrong.
    """
    budgets = [k for k in ("steps", data_budget, "flops") if getattr(cfg.budget, k) is not None]
    if len(budgets) > 1:
        raise ConfigError(f"budget: set exactly one of steps, {data_budget}, flops; got {budgets}")
    for where, value in counts:
        if value < 1:
            raise ConfigError(f"{where} must be at least 1, got {value}")
    if cfg.optim.warmup_steps < 0:
        raise ConfigError(f"optim.warmup_steps must be >= 0, got {cfg.optim.warmup_steps}")
    _check("seed", cfg.seed, cfg.seed >= 0, ">= 0")


def _check(name: str, value: float, ok: bool, expected: str) -> None:
    """Raise a :class:`ConfigError` naming the field ``name`` when ``ok`` is false."""
    if not ok:
        raise ConfigError(f"{name} must be {expected}, got {value!r}")


def run_id(cfg: TrainConfig) -> str:
    """Stable hash (16 hex digits) of the resolved config, without runtime-only fields."""
    data = to_dict(cfg)
    for key in RUNTIME_FIELDS:
        data.pop(key, None)
    if "task" in data:  # the name the task's run ids were first hashed with, so that they stay the same
        from hepscale.tasks import task_spec

        spec = task_spec(data["task"])
        data["task"] = spec.run_id_name or spec.name
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def model_config_for(cfg: TrainConfig, tokenizer: Tokenizer) -> GPTConfig:
    """The :class:`GPTConfig` of a run: size table entry or explicit shape, vocabulary from the tokenizer.

    Raises
    ------
    TrainError
        On an unknown size, a missing explicit shape, or a vocabulary that differs from the tokenizer's.
    """
    from hepscale.models.sizes import GPTConfig, model_sizes

    m = cfg.model
    if m.vocab_size is not None and m.vocab_size != tokenizer.vocab_size:
        raise TrainError(
            f"model.vocab_size={m.vocab_size} does not match the tokenizer vocabulary {tokenizer.vocab_size} "
            f"of {cfg.data.tokens}/tokenizer.json"
        )
    explicit = {"n_layer": m.n_layer, "n_head": m.n_head, "d_model": m.d_model}
    if m.size == "custom":
        missing = [k for k, v in explicit.items() if v is None]
        if missing:
            raise TrainError(f"model.size 'custom' needs model.{', model.'.join(missing)}")
        shape = {k: int(v) for k, v in explicit.items() if v is not None}
    else:
        sizes = model_sizes()
        if m.size not in sizes:
            raise TrainError(f"model.size {m.size!r} is not a size of models.yaml ({', '.join(sizes)}) nor 'custom'")
        given = [k for k, v in explicit.items() if v is not None]
        if given:
            raise TrainError(
                f"model.{given[0]} is set with model.size={m.size!r}; use model.size=custom for an explicit shape"
            )
        shape = sizes[m.size]
    try:
        return GPTConfig(
            vocab_size=tokenizer.vocab_size, block_size=cfg.data.seq_len, pos_emb=m.pos_emb, dropout=m.dropout,
            bias=m.bias, tie_embeddings=m.tie_embeddings, pad_token=tokenizer.pad, **shape,
        )
    except ValueError as err:
        raise TrainError(f"model section: {err}") from err






def run_task(config: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> str:
    """The task of a training YAML and its overrides (:func:`hepscale.tasks.config_task`): an
    alias such as ``classification`` reads as ``tagging``.

    Raises
    ------
    ConfigError
        On a task that is not registered (:mod:`hepscale.tasks`), naming where it was set.
    """
    from hepscale.tasks import config_task

    return config_task(config, overrides)


def load_run_config(config: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> Any:
    """The run configuration from a YAML file and ``key=value`` overrides, as the training config
    class of its task (:meth:`hepscale.tasks.spec.TaskSpec.train_config_class`): a
    :class:`TrainConfig` for generation (whose ``task`` key is implied), a
    :class:`hepscale.tasks.tagging.config.TaggerTrainConfig` for tagging."""
    import dataclasses

    from hepscale.config import from_dict, read_yaml
    from hepscale.tasks import task_spec

    overrides = list(overrides)
    spec = task_spec(run_task(config, overrides))
    cls = spec.train_config_class()
    has_task = any(f.name == "task" for f in dataclasses.fields(cls))
    kept = [o for o in overrides if o.partition("=")[0].strip() != "task"]
    data = dict(read_yaml(config)) if config is not None else {}
    data.pop("task", None)
    if data:
        from_dict(cls, {**data, **({"task": spec.name} if has_task else {})}, where=str(config))  # errors name the file
    if has_task:
        kept.append(f"task={spec.name}")
    return load_config(cls, None, overrides=kept, base=data)
