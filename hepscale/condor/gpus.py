"""GPU memory a training run needs: ``gpus_minimum_memory`` of its HTCondor job.

An upper estimate from the model's shape and the batch, before any data exists (the token
vocabulary is not known when the DAG is written): weights, gradients and the two Adam moments
in float32 (16 bytes per parameter, embeddings counted as half the non-embedding parameters on
top), the activations kept for the backward pass of one micro-batch (per layer ``S b d (34 + 5 h
S / d)`` 16-bit values, doubled for float32), and 1 GiB for the CUDA context; times 1.25, rounded
up to GiB, and never below the site's ``gpu.min_memory_mb``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["gpu_memory_mb", "model_shape"]

_MIB = 1024 * 1024


def model_shape(cfg: Any) -> tuple[int, int, int]:
    """``(n_layer, n_head, d_model)`` of a run config, as its task counts them
    (:meth:`hepscale.tasks.spec.TaskSpec.model_shape`: a tagger's layers include the
    class-attention blocks)."""
    from hepscale.tasks import DEFAULT_TASK, task_spec

    return task_spec(getattr(cfg, "task", DEFAULT_TASK)).model_shape(cfg)


def gpu_memory_mb(cfg: Any, *, minimum: int = 0) -> int:
    """``gpus_minimum_memory`` (MB) for training the run ``cfg`` on one GPU (see the module docstring)."""
    from hepscale.tasks import DEFAULT_TASK, task_spec

    spec = task_spec(getattr(cfg, "task", DEFAULT_TASK))
    n_layer, n_head, d = spec.model_shape(cfg)
    seq = spec.seq_len(cfg)
    micro = math.ceil(cfg.data.batch_size / max(int(getattr(cfg.data, "grad_accum", 1)), 1))
    params = 1.5 * 12 * n_layer * d * d
    state = 16 * params
    activations = 2 * 2 * n_layer * seq * micro * d * (34 + 5 * n_head * seq / d)
    total = 1.25 * (state + activations) + 1024 * _MIB
    return max(int(minimum), 1024 * math.ceil(total / (1024 * _MIB)))
