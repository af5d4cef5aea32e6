"""Train one generative jet model (one run): ``hepscale train CONFIG [key=value ...] --output RUNDIR [--resume]``.

The run folder ``RUNDIR`` holds

- ``config.yaml``: the resolved :class:`TrainConfig` (written at the first start);
- ``tokenizer.json``: a copy of the token dataset's binning (the sampler reads it);
- ``metrics.jsonl``: one JSON line per evaluation with ``step``, ``tokens`` (D so far),
  ``positions``, ``epoch`` (D / U), ``train_loss`` (mean since the previous evaluation),
  ``val_loss``, ``lr`` and the timing fields ``tokens_per_s``, ``positions_per_s``,
  ``elapsed_s``;
- ``checkpoints/ckpt.pt``: the latest checkpoint, replaced atomically, complete (model,
  optimizer, RNG states, data position, running train-loss sums, resolved config, model
  config, code version); loaded with ``torch.load(weights_only=True)``;
- ``result.json``: written last and atomically when the run has finished (a run without it
  is not finished). Keys: ``run_id, status, model, model_config, n_params_non_embedding,
  n_params_total, steps, batch_size, seq_len, tokens_seen, unique_tokens, epochs,
  positions_seen, flops, flops_total_params, flops_n, flops_formula, final_val_loss,
  final_train_loss, val_loss_per_position, world_size, elapsed_s, tokenizer, code_version,
  config``.

Tokens and compute
------------------
Each training example is one jet, ``start, constituents..., stop``, truncated to
``seq_len + 1`` tokens and padded to ``seq_len`` input positions; the loss ignores padding.
``tokens_seen`` (D) counts the real tokens of the jets consumed; ``unique_tokens`` (U)
those of the fixed training subset (the first jets of ``train.bin`` whose tokens fit into
``data.unique_tokens``, all jets when unset), so ``epochs = D / U``. The subset is visited
in a new seeded permutation each epoch. Compute is ``C = 6 N B S n_steps`` (``B`` jets per
step, ``S = seq_len`` positions, padding included): ``flops`` uses ``N = N_non_embedding``,
``flops_total_params`` ``N = N_total``.

A budget is exactly one of ``budget.steps``, ``budget.tokens`` (D; steps =
ceil(D / (B * mean jet length)) so that the schedule knows its end) or ``budget.flops``.

Interruption
------------
SIGTERM or SIGUSR1 sets a flag; at the next step boundary the trainer writes a checkpoint
and exits with :data:`CHECKPOINT_EXIT_CODE` (85). Use it as HTCondor's
``checkpoint_exit_code = 85`` and rerun the same command with ``--resume``: on CPU the
resumed run ends with bitwise the same weights and metrics as an uninterrupted one.
``--resume`` on a folder without a checkpoint starts the run, so one command serves both.

Multi-GPU: ``torchrun --nproc-per-node G -m hepscale.train CONFIG --output RUNDIR``
(DDP, NCCL on CUDA, gloo on CPU). ``data.batch_size`` is the global number of jets per
optimizer step, split over processes and ``data.grad_accum`` micro-steps, so a run gives
the same model (up to floating-point summation order) for any number of processes.

Exit codes: 0 finished, 85 checkpointed on request, 2 configuration or data error,
3 training failed (non-finite loss or weights; the last good checkpoint is kept).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepscale.config import ConfigError, to_dict
from hepscale.errors import EXIT_CHECKPOINT, EXIT_DIVERGED
from hepscale.models.gpt import (
    GPT,
    n_params_non_embedding,
    n_params_total,
)
from hepscale.tokens.tokenizer import TokenData, TokenizerError, load_tokens
from hepscale.train.budget import (
    FLOPS_FORMULA,
    steps_for_budget,
    training_flops,
    unique_subset,
)
from hepscale.train.config import (
    RUNTIME_FIELDS,
    TrainConfig,
    TrainError,
    load_run_config,
    model_config_for,
    run_id,
)
from hepscale.train.optim import build_optimizer, lr_at

__all__ = [
    "CHECKPOINT_EXIT_CODE",
    "TrainConfig",
    "TrainError",
    "CheckpointError",
    "TrainingDiverged",
    "JetBatcher",
    "train",
    "run_id",
    "load_checkpoint",
    "model_config_for",
    "main",
]

logger = logging.getLogger(__name__)

#: exit status after a checkpoint requested by SIGTERM/SIGUSR1 (HTCondor ``checkpoint_exit_code``)
CHECKPOINT_EXIT_CODE = EXIT_CHECKPOINT
#: exit status of a training failure (non-finite loss)
TRAIN_FAILED_EXIT_CODE = EXIT_DIVERGED
CHECKPOINT_FORMAT = "hepscale-train-checkpoint-v1"
TIMING_FIELDS = ("tokens_per_s", "positions_per_s", "elapsed_s")


class CheckpointError(TrainError):
    """A checkpoint file is missing, unreadable or does not belong to this run."""


class TrainingDiverged(TrainError):
    """The loss or the weights became non-finite (exit code 3); no checkpoint is written."""

    exit_code = EXIT_DIVERGED


# ---------------------------------------------------------------------------- data
class JetBatcher:
    """Padded jet batches from a fixed subset of a token split, one seeded permutation per epoch.

    The position in the data is ``(epoch, cursor)``; batches depend only on it and the seed.

    Parameters
    ----------
    data
        Token split.
    n_jets
        Size of the subset (the first ``n_jets`` jets).
    seq_len
        Input positions S; jets are cut to S + 1 tokens.
    pad
        Padding token.
    seed
        Seed of the epoch permutations.
    """

    def __init__(self, data: TokenData, *, n_jets: int, seq_len: int, pad: int, seed: int) -> None:
        self.data = data
        self.n_jets = n_jets
        self.seq_len = seq_len
        self.pad = pad
        self.seed = seed
        self.epoch = 0
        self.cursor = 0
        self._perm_epoch = -1
        self._perm = np.zeros(0, dtype=np.int64)
        self.lengths = np.minimum(np.diff(data.offsets[: n_jets + 1]), seq_len + 1)

    @property
    def unique_tokens(self) -> int:
        """Real tokens (capped at S + 1 per jet) in the subset: U."""
        return int(self.lengths.sum())

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._perm_epoch != epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_jets)
            self._perm_epoch = epoch
        return self._perm

    def next_ids(self, n: int) -> np.ndarray:
        """The next ``n`` jet indices (advancing the position, across epochs)."""
        out = []
        while n > 0:
            perm = self._permutation(self.epoch)
            take = perm[self.cursor : self.cursor + n]
            out.append(take)
            n -= len(take)
            self.cursor += len(take)
            if self.cursor >= self.n_jets:
                self.epoch += 1
                self.cursor = 0
        return np.concatenate(out)

    def make_batch(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Inputs and targets (int64, shape (len(ids), S)) and the number of real tokens."""
        S = self.seq_len
        starts = self.data.offsets[ids]
        lens = np.minimum(self.data.offsets[ids + 1] - starts, S + 1)
        ar = np.arange(S + 1)
        valid = ar[None, :] < lens[:, None]
        idx = np.where(valid, starts[:, None] + ar[None, :], starts[:, None])
        seq = np.where(valid, np.asarray(self.data.tokens[idx.ravel()]).reshape(idx.shape), self.pad).astype(np.int64)
        return seq[:, :-1], seq[:, 1:], int(lens.sum())

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])


# ---------------------------------------------------------------------------- checkpoints
def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``.

    Raises
    ------
    CheckpointError
        If the file is missing, corrupt, or not a hepscale training checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors for damaged files
        raise CheckpointError(f"checkpoint {p} is corrupt or unreadable ({type(err).__name__}: {err})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {p} is not a hepscale training checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [k for k in ("model", "model_config", "config", "step", "optimizer", "rng", "data") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {p} lacks key(s) {missing}")
    return ckpt


def _config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if not prefix and k in RUNTIME_FIELDS:
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {vb!r} in the checkpoint, {va!r} now")
    return out


# ---------------------------------------------------------------------------- helpers
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    enabled: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_type: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), True)


def _set_tf32() -> None:
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"
    else:  # older torch
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


class _StopFlag:
    """Set by SIGTERM/SIGUSR1; the training loop checkpoints at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True
        self.signal = signum

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopFlag]:
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        sigs = [signal.SIGTERM] + ([signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else [])
        old = {s: signal.signal(s, self) for s in sigs}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------- training
def train(cfg: TrainConfig, run_dir: str | os.PathLike[str], *, resume: bool = False, progress: bool | None = None) -> int:
    """Train (or resume) one run into ``run_dir``.

    Parameters
    ----------
    cfg
        The resolved configuration.
    run_dir
        The run folder (created).
    resume
        Continue from ``run_dir/checkpoints/ckpt.pt`` when it exists (start otherwise).
    progress
        Show a tqdm bar (None: only on a terminal).

    Returns
    -------
    int
        0 when the run finished, :data:`CHECKPOINT_EXIT_CODE` after a requested checkpoint.

    Raises
    ------
    TrainError, CheckpointError, TokenizerError, ConfigError
        On bad inputs; :class:`TrainError` also on a non-finite loss (no checkpoint is written then).
    """
    stop = _StopFlag()
    with stop.installed():  # from the start, so that an early SIGTERM still ends in a checkpoint
        return _train(cfg, Path(run_dir), resume=resume, progress=progress, stop=stop)


def _train(cfg: TrainConfig, run: Path, *, resume: bool, progress: bool | None, stop: _StopFlag) -> int:
    from tqdm import tqdm

    from hepscale._io import atomic_path, atomic_write_json, atomic_write_text
    from hepscale._version import code_version

    ckpt_path = run / "checkpoints" / "ckpt.pt"
    metrics_path = run / "metrics.jsonl"
    result_path = run / "result.json"
    if not cfg.data.tokens:
        raise ConfigError("data.tokens: the token dataset folder is required (hepscale tokenize ... --output DIR)")
    if resume and result_path.is_file():
        logger.info("run %s has finished already (result.json exists)", run)
        return 0
    if not resume and (ckpt_path.exists() or result_path.exists()):
        raise TrainError(f"run folder {run} already holds a run; pass --resume to continue it or choose another --output")

    # ---- device, precision, processes
    device_type = "cuda" if (cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())) else "cpu"
    if device_type == "cuda" and not torch.cuda.is_available():
        raise TrainError("device: 'cuda' requested but torch.cuda.is_available() is False")
    dist_info = _setup_distributed(device_type)
    device = torch.device(f"cuda:{dist_info.local_rank}" if device_type == "cuda" else "cpu")
    if device_type == "cuda":
        torch.cuda.set_device(device)
        _set_tf32()
    use_bf16 = cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and device_type == "cuda")
    autocast = (
        torch.autocast(device_type=device_type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    )

    # ---- data
    train_data, tokenizer = load_tokens(cfg.data.tokens, "train")
    val_data, _ = load_tokens(cfg.data.tokens, "val")
    mcfg = model_config_for(cfg, tokenizer)
    S, B, A = cfg.data.seq_len, cfg.data.batch_size, cfg.data.grad_accum
    if B % (dist_info.world * A):
        raise ConfigError(
            f"data.batch_size={B} must be divisible by the number of processes ({dist_info.world}) x data.grad_accum ({A})"
        )
    micro = B // (dist_info.world * A)
    lengths = np.minimum(train_data.lengths, S + 1)
    if len(lengths) == 0:
        raise TrainError(f"token dataset {cfg.data.tokens}: train.bin holds no jets")
    n_sub = unique_subset(lengths, cfg.data.unique_tokens, where=f"data.unique_tokens ({cfg.data.tokens}/train.bin)")
    batcher = JetBatcher(train_data, n_jets=n_sub, seq_len=S, pad=tokenizer.pad, seed=cfg.seed)
    n_val = min(cfg.eval.jets, val_data.n_jets)
    if n_val == 0:
        raise TrainError(f"token dataset {cfg.data.tokens}: val.bin holds no jets for validation")

    # ---- budget
    n_ne, n_tot = n_params_non_embedding(mcfg), n_params_total(mcfg)
    total_steps = steps_for_budget(cfg.budget, batch_size=B, mean_units=float(lengths[:n_sub].mean()),
                                   flops_per_step=training_flops(n_ne, batch_size=B, seq_len=S, steps=1))

    # ---- model and optimizer
    torch.manual_seed(cfg.seed)
    raw_model = GPT(mcfg).to(device)
    o = cfg.optim
    optimizer = build_optimizer(
        raw_model.named_parameters(), name=o.name, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay,
        eps=o.eps, lookahead_k=o.lookahead_k, lookahead_alpha=o.lookahead_alpha,
    )
    rid = run_id(cfg)
    cfg_dict = to_dict(cfg)
    state: dict[str, Any] = {"step": 0, "tokens": 0, "elapsed": 0.0, "loss_sum": torch.zeros((), device=device), "loss_n": 0}
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        diff = _config_diff(cfg_dict, ckpt["config"])
        if diff:
            raise CheckpointError(f"checkpoint {ckpt_path} belongs to another config: {'; '.join(diff)}")
        if ckpt["model_config"].get("vocab_size") != mcfg.vocab_size:
            raise CheckpointError(
                f"checkpoint {ckpt_path} has vocabulary {ckpt['model_config'].get('vocab_size')}, the tokenizer of "
                f"{cfg.data.tokens} has {mcfg.vocab_size}"
            )
        if ckpt.get("tokenizer_fingerprint") != tokenizer.fingerprint():
            raise CheckpointError(
                f"checkpoint {ckpt_path} was trained on another binning than {cfg.data.tokens}/tokenizer.json"
            )
        try:
            raw_model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise CheckpointError(f"checkpoint {ckpt_path} does not fit the model/optimizer: {err}") from err
        batcher.load_state(ckpt["data"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device_type == "cuda" and ckpt["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        state.update(step=int(ckpt["step"]), tokens=int(ckpt["tokens_seen"]), elapsed=float(ckpt["elapsed_s"]))
        state["loss_sum"] = ckpt["train_acc"]["loss_sum"].to(device)
        state["loss_n"] = int(ckpt["train_acc"]["loss_n"])
        if dist_info.main:
            kept = [m for m in _read_metrics(metrics_path) if m["step"] <= state["step"]]
            atomic_write_text(metrics_path, "".join(json.dumps(m) + "\n" for m in kept))
        logger.info("resumed %s at step %d", run, state["step"])
    else:
        if dist_info.main:
            run.mkdir(parents=True, exist_ok=True)
            import yaml

            atomic_write_text(run / "config.yaml", yaml.safe_dump(cfg_dict, sort_keys=False))
            atomic_write_json(run / "tokenizer.json", tokenizer.to_dict())
            atomic_write_text(metrics_path, "")

    model: torch.nn.Module = raw_model
    if cfg.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[dist_info.local_rank] if device_type == "cuda" else None)

    def reduce_sum(*values: float) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=device)
        if dist_info.enabled:
            import torch.distributed as dist

            dist.all_reduce(t)
        return t.tolist()

    def evaluate(per_position: bool) -> tuple[float, list[float | None] | None]:
        raw_model.eval()
        pos_sum = torch.zeros(S, dtype=torch.float64, device=device)
        pos_n = torch.zeros(S, dtype=torch.float64, device=device)
        ids = np.arange(dist_info.rank, n_val, dist_info.world)
        val_batcher = JetBatcher(val_data, n_jets=n_val, seq_len=S, pad=tokenizer.pad, seed=0)
        with torch.no_grad():
            for i in range(0, len(ids), cfg.eval.batch_size):
                x, y, _ = val_batcher.make_batch(ids[i : i + cfg.eval.batch_size])
                xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
                with autocast:
                    _, loss = raw_model(xt, yt, reduction="none")
                pos_sum += loss.double().sum(0)
                pos_n += (yt != tokenizer.pad).double().sum(0)
        if dist_info.enabled:
            import torch.distributed as dist

            dist.all_reduce(pos_sum)
            dist.all_reduce(pos_n)
        raw_model.train()
        val = float(pos_sum.sum() / pos_n.sum().clamp(min=1))
        if not per_position:
            return val, None
        per = (pos_sum / pos_n.clamp(min=1)).tolist()
        return val, [p if n > 0 else None for p, n in zip(per, pos_n.tolist())]

    def check_finite(where: str) -> None:
        bad_loss = not math.isfinite(float(state["loss_sum"]))
        bad_w = not all(bool(torch.isfinite(p).all()) for p in raw_model.parameters())
        if bad_loss or bad_w:
            what = "training loss" if bad_loss else "model weights"
            raise TrainingDiverged(
                f"non-finite {what} at step {state['step']} ({where}); the last good checkpoint {ckpt_path} is kept"
            )

    def save_checkpoint() -> None:
        check_finite("before writing a checkpoint")
        if not dist_info.main:
            return
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "step": state["step"],
            "tokens_seen": state["tokens"],
            "elapsed_s": state["elapsed"],
            "total_steps": total_steps,
            "model": raw_model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if device_type == "cuda" else [],
            },
            "data": batcher.state(),
            "train_acc": {"loss_sum": state["loss_sum"].detach().cpu().clone(), "loss_n": state["loss_n"]},
            "model_config": dataclasses.asdict(mcfg),
            "config": cfg_dict,
            "run_id": rid,
            "tokenizer_fingerprint": tokenizer.fingerprint(),
            "code_version": dict(code_version()),
        }
        with atomic_path(ckpt_path, suffix=".pt") as tmp:
            torch.save(ckpt, tmp)
        logger.info("checkpoint at step %d -> %s", state["step"], ckpt_path)

    t_start = t_window = time.perf_counter()  # t_window: throughput window, without eval and checkpoint time
    elapsed_base = state["elapsed"]

    def elapsed() -> float:
        return elapsed_base + time.perf_counter() - t_start

    tokens_window, steps_window = 0, 0
    last_val: float | None = None
    last_train: float | None = None
    per_position: list[float | None] | None = None
    min_lr = o.lr * o.min_lr_ratio
    show = None if progress is None else not progress
    bar = tqdm(
        total=total_steps, initial=state["step"], desc="train", unit="step", disable=True if not dist_info.main else show
    )
    status = 0
    with bar:
        while state["step"] < total_steps:
            step = state["step"]
            lr = lr_at(step, lr=o.lr, min_lr=min_lr, warmup_steps=o.warmup_steps, total_steps=total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            ids = batcher.next_ids(B)
            step_tokens = int(batcher.lengths[ids].sum())
            mine = ids.reshape(A, dist_info.world, micro)[:, dist_info.rank]
            for a in range(A):
                x, y, _ = batcher.make_batch(mine[a])
                xt = torch.from_numpy(x).to(device, non_blocking=True)
                yt = torch.from_numpy(y).to(device, non_blocking=True)
                last = a == A - 1 or not dist_info.enabled
                sync = contextlib.nullcontext() if last else model.no_sync()  # type: ignore[operator]
                with sync:
                    with autocast:
                        _, loss = model(xt, yt)
                    (loss / A).backward()
                state["loss_sum"] += loss.detach() / A
            state["loss_n"] += 1
            if o.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), o.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] = step = step + 1
            state["tokens"] += step_tokens
            tokens_window += step_tokens
            steps_window += 1
            bar.update(1)
            done = step >= total_steps
            if step % cfg.eval.every == 0 or done:
                if device_type == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t_window
                train_sum, train_n = reduce_sum(float(state["loss_sum"]), float(state["loss_n"]))
                check_finite("training")
                last_train = train_sum / max(train_n, 1)
                last_val, per_position = evaluate(per_position=done)
                if not math.isfinite(last_val):
                    raise TrainingDiverged(
                        f"non-finite validation loss at step {step}; the last good checkpoint {ckpt_path} is kept"
                    )
                state["loss_sum"] = torch.zeros((), device=device)
                state["loss_n"] = 0
                line = {
                    "step": step, "tokens": state["tokens"], "positions": step * B * S,
                    "epoch": state["tokens"] / batcher.unique_tokens, "train_loss": last_train, "val_loss": last_val,
                    "lr": lr, "tokens_per_s": tokens_window / dt if dt > 0 else None,
                    "positions_per_s": steps_window * B * S / dt if dt > 0 else None, "elapsed_s": elapsed(),
                }
                if dist_info.main:
                    with open(metrics_path, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(line) + "\n")
                bar.set_postfix(train=f"{last_train:.4f}", val=f"{last_val:.4f}")
                logger.info("step %d: train %.4f val %.4f lr %.3g", step, last_train, last_val, lr)
                tokens_window, steps_window = 0, 0
                t_window = time.perf_counter()
            requested = stop.requested or (cfg.stop_after_steps is not None and step >= cfg.stop_after_steps and not done)
            if dist_info.enabled:
                requested = reduce_sum(float(requested))[0] > 0
            if done or requested or step % cfg.checkpoint.every == 0:
                t_save = time.perf_counter()
                state["elapsed"] = elapsed()
                save_checkpoint()
                t_window += time.perf_counter() - t_save
            if requested and not done:
                logger.warning("checkpointed at step %d on request; exiting with code %d", step, CHECKPOINT_EXIT_CODE)
                status = CHECKPOINT_EXIT_CODE
                break

    if status == 0 and dist_info.main:
        result = {
            "run_id": rid,
            "status": "finished",
            "model": cfg.model.size,
            "model_config": dataclasses.asdict(mcfg),
            "n_params_non_embedding": n_ne,
            "n_params_total": n_tot,
            "steps": state["step"],
            "batch_size": B,
            "seq_len": S,
            "tokens_seen": state["tokens"],
            "unique_tokens": batcher.unique_tokens,
            "epochs": state["tokens"] / batcher.unique_tokens,
            "positions_seen": state["step"] * B * S,
            "flops": training_flops(n_ne, batch_size=B, seq_len=S, steps=state["step"]),
            "flops_total_params": training_flops(n_tot, batch_size=B, seq_len=S, steps=state["step"]),
            "flops_n": "non_embedding",
            "flops_formula": FLOPS_FORMULA,
            "final_val_loss": last_val if last_val is not None else _last_metric(metrics_path, "val_loss"),
            "final_train_loss": last_train if last_train is not None else _last_metric(metrics_path, "train_loss"),
            "val_loss_per_position": per_position,
            "world_size": dist_info.world,
            "elapsed_s": elapsed(),
            "tokenizer": {
                "path": cfg.data.tokens, "vocab_size": tokenizer.vocab_size, "fingerprint": tokenizer.fingerprint()
            },
            "code_version": dict(code_version()),
            "config": cfg_dict,
        }
        atomic_write_json(result_path, result)
        logger.info("run %s finished: val loss %s", run, result["final_val_loss"])
    if dist_info.enabled:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return status


def _last_metric(path: Path, key: str) -> Any:
    lines = _read_metrics(path)
    return lines[-1].get(key) if lines else None


def main(argv: Sequence[str] | None = None) -> int:
    """``hepscale train CONFIG [key=value ...] --output RUNDIR [--resume]``; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="hepscale train",
        description="Train one generative jet model. Exit codes: 0 finished, 85 checkpointed on SIGTERM/SIGUSR1 "
        "(HTCondor checkpoint_exit_code), 2 config/data error, 3 training failed.",
    )
    parser.add_argument("config", help="training config YAML (see configs/train/)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.lr=3e-4 budget.steps=1000")
    parser.add_argument("--output", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue from RUNDIR/checkpoints/ckpt.pt if present")
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_run_config(args.config, args.overrides)
        return train(cfg, args.output, resume=args.resume, progress=None)
    except TrainingDiverged as err:
        print(f"hepscale train: error: {err}", file=sys.stderr)
        return TRAIN_FAILED_EXIT_CODE
    except (ConfigError, TokenizerError, TrainError) as err:
        print(f"hepscale train: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
