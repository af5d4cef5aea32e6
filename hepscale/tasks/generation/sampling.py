"""Sampling a generative run folder, and scoring jets under its model.

Library of ``hepscale sample RUNDIR --n N --output JETS.parquet [--batch B] [--temperature T]
[--top-k K] [--seed S]`` (:mod:`hepscale.sample`): :func:`load_run` reads a run's model,
tokenizer and checkpoint (checked to belong together), :func:`sample_jets` samples jets with
:func:`hepscale.models.sampling.generate`, :func:`sample_run` writes them to the run's
``samples.parquet`` and :func:`jet_log_likelihood` scores a jet dataset.

Convention: write the samples of a run to ``RUNDIR/samples.parquet`` (``hepscale evaluate
RUNDIR`` looks there); the parquet metadata records the run id, checkpoint step, seed,
temperature and top-k.

``hepscale sample RUNDIR --log-likelihood JETS --output LL.npy`` writes the exact
log-likelihood (natural log, token space: sum over the ``start``-conditioned next-token
log-probabilities up to and including ``stop``, no masking) of every jet of a jet dataset,
float64, shape (n_jets,).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hepscale.devices import resolve_device
from hepscale.models.gpt import GPT, GPTConfig
from hepscale.models.sampling import generate, log_likelihood
from hepscale.tokens.tokenizer import Tokenizer

if TYPE_CHECKING:
    from hepscale.runs.folder import RunFolder

__all__ = ["load_run", "sample_jets", "sample_run", "jet_log_likelihood"]


def load_run(
    run_dir: str | os.PathLike[str], *, device: str | torch.device = "cpu", checkpoint: str | os.PathLike[str] | None = None
) -> tuple[GPT, Tokenizer, dict[str, Any]]:
    """Model (eval mode), tokenizer and checkpoint of a run folder.

    The checkpoint (default: the run's) must belong to the run folder: its ``run_id`` must be
    the run's (``result.json``, else the run id of ``config.yaml``) and its
    ``tokenizer_fingerprint`` that of the run's ``tokenizer.json``.

    Raises
    ------
    CheckpointError, TokenizerError
        If the checkpoint or ``RUNDIR/tokenizer.json`` is missing or inconsistent, or the
        checkpoint belongs to another run or binning (the message names both files).
    ConfigError
        If ``device`` is no device, or CUDA is requested where it is not available (:func:`resolve_device`).
    """
    from hepscale.runs.folder import RunFolder
    from hepscale.train import CheckpointError, load_checkpoint

    dev = resolve_device(device)
    run = RunFolder(run_dir)
    ckpt_path = Path(checkpoint) if checkpoint is not None else run.checkpoint
    ckpt = load_checkpoint(ckpt_path)
    tok = Tokenizer.from_json(run.tokenizer)
    expected_id, id_source = _run_id_of(run)
    if ckpt.get("run_id") != expected_id:
        raise CheckpointError(
            f"checkpoint {ckpt_path} belongs to run {ckpt.get('run_id')!r}, not to run {expected_id!r} of "
            f"{id_source}; sample the run folder the checkpoint was trained in"
        )
    fingerprint = tok.fingerprint()
    if ckpt.get("tokenizer_fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {ckpt_path} was trained on another binning (tokenizer fingerprint "
            f"{ckpt.get('tokenizer_fingerprint')!r}) than {run.tokenizer} describes ({fingerprint!r})"
        )
    mcfg = GPTConfig(**ckpt["model_config"])
    if mcfg.vocab_size != tok.vocab_size:
        raise CheckpointError(
            f"run {run.path}: model vocabulary {mcfg.vocab_size} differs from {run.tokenizer} ({tok.vocab_size})"
        )
    model = GPT(mcfg)
    model.load_state_dict(ckpt["model"])
    model.to(dev).eval()
    return model, tok, ckpt


def _run_id_of(run: RunFolder) -> tuple[str, Path]:
    """The run id of a run folder and the file it comes from: ``result.json``, else ``config.yaml``.

    Raises
    ------
    CheckpointError
        When the folder has neither file (it is no run folder of the trainer).
    """
    from hepscale.train import CheckpointError
    from hepscale.train.config import load_run_config, run_id

    if run.finished:
        record = run.read_result(validate=False)
        if isinstance(record.get("run_id"), str):
            return record["run_id"], run.result
    if run.config.is_file():
        return run_id(load_run_config(run.config)), run.config
    raise CheckpointError(f"run folder {run.path} has neither {run.RESULT} nor {run.CONFIG}: it is no training run")


def sample_jets(
    run_dir: str | os.PathLike[str],
    n: int,
    *,
    batch: int = 256,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
    with_checkpoint: bool = False,
) -> Any:
    """Sample ``n`` jets of a run as a jet dataset (awkward array, :mod:`hepscale.jets.dataset` schema).

    With ``with_checkpoint`` the checkpoint the model came from is returned too: ``(jets, ckpt)``.
    """
    if n < 1:
        raise ValueError(f"the number of jets to sample must be positive, got {n}")
    model, tok, ckpt = load_run(run_dir, device=device)
    seqs = generate(
        model, n, start=tok.start, stop=tok.stop, pad=tok.pad, batch=batch, temperature=temperature, top_k=top_k,
        seed=seed, progress=progress,
    )
    jets = tok.tokens_to_jets(seqs, source=f"{Path(run_dir).name}/samples")
    return (jets, ckpt) if with_checkpoint else jets


def sample_run(
    run_dir: str | os.PathLike[str],
    n: int,
    *,
    output: str | os.PathLike[str] | None = None,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    **kwargs: Any,
) -> Path:
    """Sample ``n`` jets of a run into a jet dataset file (default: the run's ``samples.parquet``).

    The parquet metadata records the run id, checkpoint step, ``n``, seed, temperature and top-k;
    ``kwargs`` (``batch``, ``device``, ``progress``) go to :func:`sample_jets`.

    Returns
    -------
    Path
        The file written.
    """
    from hepscale.jets.dataset import write_jets
    from hepscale.runs.folder import RunFolder

    jets, ckpt = sample_jets(run_dir, n, seed=seed, temperature=temperature, top_k=top_k, with_checkpoint=True,
                             **kwargs)
    meta = {
        "kind": "generated", "run_dir": os.fspath(run_dir), "run_id": ckpt.get("run_id"), "step": ckpt["step"],
        "n": n, "seed": seed, "temperature": temperature, "top_k": top_k,
    }
    target = Path(output) if output is not None else RunFolder(run_dir).samples
    write_jets(target, jets, metadata=meta)
    return target


def jet_log_likelihood(
    run_dir: str | os.PathLike[str], jets: Any, *, batch: int = 256, device: str = "cpu"
) -> np.ndarray:
    """Log-likelihood (nats, float64, shape (n_jets,)) of the tokenized ``jets`` under a run's model."""
    model, tok, _ = load_run(run_dir, device=device)
    tokens, offsets = tok.encode_jets(jets)
    seqs = [np.asarray(tokens[offsets[i] : offsets[i + 1]], dtype=np.int64) for i in range(len(offsets) - 1)]
    return log_likelihood(model, seqs, pad=tok.pad, batch=batch)
