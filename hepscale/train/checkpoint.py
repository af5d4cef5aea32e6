"""The training checkpoint: format, reading, writing, and the config check of a resume.

A checkpoint (``RunFolder.checkpoint``) is one ``torch.save`` dict, self-describing (nanoGPT
rule) and readable with ``torch.load(weights_only=True)``:

=======================  ====================================================================
``format``               :data:`CHECKPOINT_FORMAT`
``step``                 optimizer steps done
``tokens_seen``          D so far (data units of the task)
``elapsed_s``            training time so far, s
``total_steps``          the steps of the budget
``model``                the model's ``state_dict``
``optimizer``            the optimizer's ``state_dict``
``rng``                  ``{"torch": CPU RNG state, "cuda": [RNG state per device]}``
``data``                 the position in the training data (``TrainData.state()``)
``train_acc``            ``{"loss_sum", "loss_n"}``: training-loss sums since the last evaluation
``model_config``         the task's model configuration (dict)
``config``               the resolved run config (dict)
``run_id``               the run id
(task keys)              added by the task (generation: ``tokenizer_fingerprint``)
``code_version``         git commit and package version
=======================  ====================================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hepscale.train.config import RUNTIME_FIELDS, TrainError

__all__ = ["CHECKPOINT_FORMAT", "REQUIRED_KEYS", "CheckpointError", "load_checkpoint", "write_checkpoint", "config_diff"]

CHECKPOINT_FORMAT = "hepscale-train-checkpoint-v1"
#: keys :func:`load_checkpoint` requires
REQUIRED_KEYS = ("model", "model_config", "config", "step", "optimizer", "rng", "data")


class CheckpointError(TrainError):
    """A checkpoint file is missing, unreadable or does not belong to this run."""


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (tensors on the CPU).

    Raises
    ------
    CheckpointError
        If the file is missing, corrupt, or not a hepscale training checkpoint.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors for damaged files
        raise CheckpointError(f"checkpoint {p} is corrupt or unreadable ({type(err).__name__}: {err})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {p} is not a hepscale training checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {p} lacks key(s) {missing}")
    return ckpt


def write_checkpoint(path: str | os.PathLike[str], ckpt: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a complete new file or the old one untouched)."""
    import torch

    from hepscale._io import atomic_path

    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(ckpt, tmp)


def config_diff(now: dict[str, Any], saved: dict[str, Any], prefix: str = "") -> list[str]:
    """The config fields that differ between ``now`` and a checkpoint's ``saved`` config.

    Runtime-only fields (:data:`hepscale.train.config.RUNTIME_FIELDS`) are left out; each entry
    reads ``"<dotted.key>: <saved> in the checkpoint, <now> now"``.
    """
    out = []
    for k in sorted(set(now) | set(saved)):
        if not prefix and k in RUNTIME_FIELDS:
            continue
        va, vb = now.get(k), saved.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {vb!r} in the checkpoint, {va!r} now")
    return out
