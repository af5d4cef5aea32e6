"""The trainer: one loop for every task (:class:`hepscale.train.task.Task`), top to bottom.

``train(cfg, run_dir)`` runs one run into its run folder (:class:`hepscale.runs.folder.RunFolder`):

- ``config.yaml`` (the resolved config) and the task's files at the first start;
- ``metrics.jsonl``: one line per evaluation with ``step``, ``tokens`` (D so far), ``positions``
  (steps B S), ``epoch`` (D / U), ``train_loss`` (mean since the previous evaluation),
  ``val_loss``, the task's metrics, ``lr`` and the timing fields :data:`TIMING_FIELDS`;
- the checkpoint (:mod:`hepscale.train.checkpoint`), replaced atomically every
  ``checkpoint.every`` steps, at the end and on request;
- ``result.json``, written last and atomically when the run has finished: ``run_id, status,
  model, model_config, n_params_non_embedding, n_params_total, steps, batch_size, seq_len,
  tokens_seen, unique_tokens, epochs, positions_seen, flops, flops_total_params, flops_non_embedding, flops_n,
  flops_formula, final_val_loss, final_train_loss``, the task's final metrics (generation:
  ``val_loss_per_position``), ``world_size, elapsed_s``, the task's result keys (generation:
  ``tokenizer``), ``code_version, config``.

Budgets and compute follow :mod:`hepscale.train.budget`. ``data.batch_size`` B is the global
number of items per optimizer step, split over the processes and ``data.grad_accum`` micro-steps.

Interruption: SIGTERM, SIGUSR1 or SIGINT (or ``stop_after_steps``) makes the trainer checkpoint
at the next step boundary and return :data:`~hepscale.errors.EXIT_CHECKPOINT` (85); so does
``checkpoint_exit_s`` (HTCondor's self-checkpointing: checkpoint and exit once that many seconds
have passed since ``train`` was called, so that HTCondor spools the checkpoint and restarts the
job, which resumes from it); ``resume=True``
continues from the checkpoint, and on CPU the resumed run ends with bitwise the same weights and
metrics as an uninterrupted one. A non-finite loss or weight raises :class:`TrainingDiverged`
(exit code 3) and keeps the last good checkpoint. The main process holds the run folder's lock
while it trains.

Resume after a crash: a half-written last line of ``metrics.jsonl`` is dropped (with a warning),
temporary checkpoint files of a killed writer are removed, and the final checkpoint carries the
final evaluation, so that a run killed between its final checkpoint and ``result.json`` writes
the complete ``result.json`` on resume. Resuming a finished run with another config is an error
naming the fields that differ.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from hepscale.config import ConfigError, to_dict
from hepscale.errors import EXIT_CHECKPOINT, EXIT_DIVERGED, EXIT_OK
from hepscale.runs.folder import RunFolder
from hepscale.train.budget import pick_flops, steps_for_budget
from hepscale.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    check_finished_config,
    config_diff,
    load_checkpoint,
    plain,
    remove_stale_temporaries,
    write_checkpoint,
)
from hepscale.train.config import TrainConfig, TrainError, run_id
from hepscale.train.distributed import Runtime, StopFlag, setup_runtime
from hepscale.train.optim import build_optimizer, lr_at
from hepscale.train.result import task_flops, write_result
from hepscale.train.task import Evaluation, Task, TrainData

__all__ = [
    "TIMING_FIELDS", "TrainingDiverged", "Run", "TrainState", "train", "setup", "restore", "train_step", "evaluate",
    "check_finite", "save_checkpoint", "write_result", "task_for",
]

logger = logging.getLogger(__name__)

#: fields of a ``metrics.jsonl`` line that depend on the machine's speed
TIMING_FIELDS = ("tokens_per_s", "positions_per_s", "elapsed_s")


class TrainingDiverged(TrainError):
    """The loss or the weights became non-finite (exit code 3); no checkpoint is written."""

    exit_code = EXIT_DIVERGED


@dataclass
class Run:
    """What :func:`setup` builds: fixed for the run."""

    cfg: TrainConfig
    folder: RunFolder
    task: Task
    rt: Runtime
    data: TrainData
    raw_model: torch.nn.Module  # the task's model
    model: torch.nn.Module  # the model the steps run (compiled, DDP-wrapped)
    optimizer: Any
    total_steps: int
    micro: int  # items per micro-batch and process
    n_params: tuple[int, int]  # N non-embedding, N total
    run_id: str
    config: dict[str, Any]  # the resolved config as a dict


@dataclass
class TrainState:
    """What changes while training; a checkpoint stores it, a resume restores it."""

    loss_sum: torch.Tensor  # sum over steps of the mean micro-batch loss, since the last evaluation (on the device)
    loss_n: int = 0  # steps in loss_sum
    step: int = 0  # optimizer steps done
    tokens: int = 0  # D: data units consumed
    elapsed: float = 0.0  # training time, s, at the last checkpoint
    last_train: float | None = None  # mean training loss at the last evaluation
    last_val: float | None = None  # validation loss at the last evaluation
    final: Evaluation | None = None  # the final evaluation (when it ran in this process)
    # timing of this process: elapsed time and the throughput window (evaluations and checkpoints left out)
    elapsed_base: float = 0.0
    t_start: float = field(default_factory=time.perf_counter)
    t_window: float = field(default_factory=time.perf_counter)
    window_tokens: int = 0
    window_steps: int = 0

    def elapsed_now(self) -> float:
        """Training time of the run so far, s."""
        return self.elapsed_base + time.perf_counter() - self.t_start


# ---------------------------------------------------------------------------- the run
def train(
    cfg: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    task: Task | None = None,
    resume: bool = False,
    progress: bool | None = None,
    checkpoint_exit_s: float | None = None,
) -> int:
    """Train (or resume) one run into ``run_dir``.

    Parameters
    ----------
    cfg
        The resolved configuration.
    run_dir
        The run folder (created).
    task
        What is trained (None: :class:`~hepscale.tasks.generation.trainer.GenerationTask` of ``cfg``).
    resume
        Continue from the run's checkpoint when it exists (start otherwise).
    progress
        Show a tqdm bar (None: only on a terminal).
    checkpoint_exit_s
        Checkpoint and return :data:`~hepscale.errors.EXIT_CHECKPOINT` at the first step boundary
        after this many seconds (None: never; the last step always finishes the run instead).

    Returns
    -------
    int
        :data:`~hepscale.errors.EXIT_OK` when the run finished (or had finished),
        :data:`~hepscale.errors.EXIT_CHECKPOINT` after a checkpoint on request.

    Raises
    ------
    TrainError, CheckpointError, ConfigError, DataError
        On bad inputs; :class:`TrainingDiverged` on a non-finite loss or weight.
    """
    from tqdm import tqdm

    t_called = time.monotonic()
    if checkpoint_exit_s is not None and not checkpoint_exit_s > 0:
        raise ConfigError(f"the checkpoint exit interval must be > 0 seconds, got {checkpoint_exit_s}")
    if task is None:
        task = task_for(cfg)
    folder = RunFolder(run_dir)
    if resume and folder.finished:
        check_finished_config(folder, to_dict(cfg))
        logger.info("run %s has finished already (%s exists)", folder.path, folder.RESULT)
        return EXIT_OK
    if not resume and folder.started:
        raise TrainError(
            f"run folder {folder.path} already holds a run; pass --resume to continue it or choose another --output"
        )
    stop = StopFlag()
    with stop.installed(), contextlib.ExitStack() as held:  # from the start: an early SIGTERM still ends in a checkpoint
        rt = setup_runtime(device=cfg.device, dtype=cfg.dtype)
        data = task.load(rt)
        if rt.dist.main:
            held.enter_context(folder.lock())  # one trainer per run folder
        run, state = setup(cfg, folder, task, rt, data, resume=resume)

        status = EXIT_OK
        show = None if progress is None else not progress
        bar = tqdm(total=run.total_steps, initial=state.step, desc="train", unit="step", disable=show if rt.dist.main else True)
        with bar:
            while state.step < run.total_steps:
                lr = train_step(run, state)
                bar.update(1)
                done = state.step >= run.total_steps
                if state.step % cfg.eval.every == 0 or done:
                    evaluate(run, state, lr=lr, final=done)
                    bar.set_postfix(train=f"{state.last_train:.4f}", val=f"{state.last_val:.4f}")
                requested = stop.requested or (
                    cfg.stop_after_steps is not None and state.step >= cfg.stop_after_steps and not done
                ) or (checkpoint_exit_s is not None and not done and time.monotonic() - t_called >= checkpoint_exit_s)
                if rt.dist.enabled:
                    requested = rt.dist.reduce_sum(float(requested), device=rt.device)[0] > 0
                if done or requested or state.step % cfg.checkpoint.every == 0:
                    save_checkpoint(run, state)
                if requested and not done:
                    logger.warning("checkpointed at step %d on request or after the checkpoint exit interval; "
                                   "exiting with code %d", state.step, EXIT_CHECKPOINT)
                    status = EXIT_CHECKPOINT
                    break

        if status == EXIT_OK and rt.dist.main:
            write_result(run, state)
        rt.dist.close()
    return status


def task_for(cfg: Any) -> Task:
    """The trainer's task of a run configuration, from the spec of its ``task``
    (:meth:`hepscale.tasks.spec.TaskSpec.trainer_task`; a config without one: the default task)."""
    from hepscale.tasks import DEFAULT_TASK, task_spec

    return task_spec(getattr(cfg, "task", DEFAULT_TASK)).trainer_task(cfg)


def setup(
    cfg: TrainConfig, folder: RunFolder, task: Task, rt: Runtime, data: TrainData, *, resume: bool
) -> tuple[Run, TrainState]:
    """Budget, model, optimizer and state: from the checkpoint on resume, else a new run folder.

    Raises
    ------
    ConfigError
        When the batch does not split over the processes and micro-steps, or on a bad budget.
    CheckpointError
        When the checkpoint is unreadable or belongs to another run.
    """
    B, A = cfg.data.batch_size, cfg.data.grad_accum
    if B % (rt.dist.world * A):
        raise ConfigError(
            f"data.batch_size={B} must be divisible by the number of processes ({rt.dist.world}) x data.grad_accum ({A})"
        )
    n_ne, n_tot = task.param_counts()
    total_steps = steps_for_budget(
        cfg.budget, batch_size=B, mean_units=data.mean_units,
        flops_per_step=pick_flops(*task_flops(task, n_ne, n_tot, batch_size=B, steps=1), cfg.budget.flops_params),
    )

    torch.manual_seed(cfg.seed)
    raw_model = task.build_model().to(rt.device)
    o = cfg.optim
    optimizer = build_optimizer(
        raw_model.named_parameters(), name=o.name, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay,
        eps=o.eps, lookahead_k=o.lookahead_k, lookahead_alpha=o.lookahead_alpha,
    )
    run = Run(
        cfg=cfg, folder=folder, task=task, rt=rt, data=data, raw_model=raw_model, model=raw_model, optimizer=optimizer,
        total_steps=total_steps, micro=B // (rt.dist.world * A), n_params=(n_ne, n_tot), run_id=run_id(cfg),
        config=to_dict(cfg),
    )
    state = TrainState(loss_sum=torch.zeros((), device=rt.device))
    if rt.dist.main:  # under the run folder's lock: no other writer of the checkpoint
        remove_stale_temporaries(folder.checkpoint)
    if resume and folder.checkpoint.exists():
        restore(run, state)
    elif rt.dist.main:
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_config(run.config)
        task.write_files(folder)
        folder.reset_metrics()

    if cfg.compile:
        run.model = torch.compile(run.model)  # type: ignore[assignment]
    if rt.dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        run.model = DDP(run.model, device_ids=[rt.dist.local_rank] if rt.cuda else None)
    state.elapsed_base = state.elapsed
    state.t_start = state.t_window = time.perf_counter()
    return run, state


def restore(run: Run, state: TrainState) -> None:
    """Load the run's checkpoint into the model, optimizer, data position, RNG and ``state``.

    The metrics lines after the checkpoint's step are dropped (they are recomputed).

    Raises
    ------
    CheckpointError
        When the checkpoint is unreadable, belongs to another config or inputs, or does not fit.
    """
    path, rt = run.folder.checkpoint, run.rt
    ckpt = load_checkpoint(path)
    diff = config_diff(run.config, ckpt["config"])
    if diff:
        raise CheckpointError(f"checkpoint {path} belongs to another config: {'; '.join(diff)}")
    run.task.check_checkpoint(ckpt, path)
    try:
        run.raw_model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} does not fit the model/optimizer: {err}") from err
    run.data.load_state(ckpt["data"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if rt.cuda and ckpt["rng"].get("cuda"):
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    state.step, state.tokens, state.elapsed = int(ckpt["step"]), int(ckpt["tokens_seen"]), float(ckpt["elapsed_s"])
    state.loss_sum = ckpt["train_acc"]["loss_sum"].to(rt.device)
    state.loss_n = int(ckpt["train_acc"]["loss_n"])
    final = ckpt.get("final_evaluation")
    if final is not None:  # training had finished: result.json gets the final evaluation's keys
        state.final = Evaluation(float(final["loss"]), dict(final["metrics"]), dict(final["result"]))
        state.last_val, state.last_train = state.final.loss, final["train_loss"]
    if rt.dist.main:
        run.folder.reset_metrics(up_to_step=state.step, drop_incomplete_last=True)
    logger.info("resumed %s at step %d", run.folder.path, state.step)


# ---------------------------------------------------------------------------- one step
def train_step(run: Run, state: TrainState) -> float:
    """One optimizer step over ``data.batch_size`` items (all processes, all micro-steps); returns its lr."""
    cfg, rt, o = run.cfg, run.rt, run.cfg.optim
    A = cfg.data.grad_accum
    lr = lr_at(state.step, lr=o.lr, min_lr=o.lr * o.min_lr_ratio, warmup_steps=o.warmup_steps,
               total_steps=run.total_steps)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    ids = run.data.next_ids(cfg.data.batch_size)
    units = run.data.units(ids)
    mine = ids.reshape(A, rt.dist.world, run.micro)[:, rt.dist.rank]
    for a in range(A):
        last = a == A - 1 or not rt.dist.enabled
        with contextlib.nullcontext() if last else run.model.no_sync():  # type: ignore[operator]
            loss = run.task.loss(run.model, mine[a])
            (loss / A).backward()
        state.loss_sum += loss.detach() / A
    state.loss_n += 1
    if o.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.raw_model.parameters(), o.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    state.step += 1
    state.tokens += units
    state.window_tokens += units
    state.window_steps += 1
    return lr


# ---------------------------------------------------------------------------- evaluation
def evaluate(run: Run, state: TrainState, *, lr: float, final: bool) -> Evaluation:
    """Evaluate the model, append the line of ``metrics.jsonl`` and restart the training-loss sums.

    Raises
    ------
    TrainingDiverged
        On a non-finite training loss, weight or validation loss.
    """
    rt, B, S = run.rt, run.cfg.data.batch_size, run.task.seq_len
    if rt.cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - state.t_window
    train_sum, train_n = rt.dist.reduce_sum(float(state.loss_sum), float(state.loss_n), device=rt.device)
    check_finite(run, state, "training")
    state.last_train = train_sum / max(train_n, 1)
    run.raw_model.eval()
    with torch.no_grad():
        ev = run.task.evaluate(run.raw_model, final=final)
    run.raw_model.train()
    state.last_val = ev.loss
    if not math.isfinite(ev.loss):
        raise TrainingDiverged(
            f"non-finite validation loss at step {state.step}; the last good checkpoint {run.folder.checkpoint} is kept"
        )
    if final:
        state.final = ev
    state.loss_sum = torch.zeros((), device=rt.device)
    state.loss_n = 0
    line = {
        "step": state.step, "tokens": state.tokens, "positions": state.step * B * S,
        "epoch": state.tokens / run.data.unique_units, "train_loss": state.last_train, "val_loss": ev.loss,
        **ev.metrics, "lr": lr, "tokens_per_s": state.window_tokens / dt if dt > 0 else None,
        "positions_per_s": state.window_steps * B * S / dt if dt > 0 else None, "elapsed_s": state.elapsed_now(),
    }
    if rt.dist.main:
        run.folder.append_metrics(line)
    logger.info("step %d: train %.4f val %.4f lr %.3g", state.step, state.last_train, ev.loss, lr)
    state.window_tokens, state.window_steps = 0, 0
    state.t_window = time.perf_counter()
    return ev


def check_finite(run: Run, state: TrainState, where: str) -> None:
    """Raise :class:`TrainingDiverged` when the training-loss sum or a weight is not finite."""
    bad_loss = not math.isfinite(float(state.loss_sum))
    bad_w = not all(bool(torch.isfinite(p).all()) for p in run.raw_model.parameters())
    if bad_loss or bad_w:
        what = "training loss" if bad_loss else "model weights"
        raise TrainingDiverged(
            f"non-finite {what} at step {state.step} ({where}); the last good checkpoint {run.folder.checkpoint} is kept"
        )


# ---------------------------------------------------------------------------- checkpoint
def save_checkpoint(run: Run, state: TrainState) -> None:
    """Write the checkpoint (main process) after checking that loss and weights are finite.

    The time spent here is left out of the throughput window.
    """
    from hepscale._version import code_version

    t_save = time.perf_counter()
    state.elapsed = state.elapsed_now()
    check_finite(run, state, "before writing a checkpoint")
    if run.rt.dist.main:
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "step": state.step,
            "tokens_seen": state.tokens,
            "elapsed_s": state.elapsed,
            "total_steps": run.total_steps,
            "model": run.raw_model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if run.rt.cuda else [],
            },
            "data": run.data.state(),
            "train_acc": {"loss_sum": state.loss_sum.detach().cpu().clone(), "loss_n": state.loss_n},
            "model_config": run.task.model_config(),
            "config": run.config,
            "run_id": run.run_id,
            **({} if state.final is None else {"final_evaluation": plain({
                "loss": state.final.loss, "train_loss": state.last_train, "metrics": state.final.metrics,
                "result": state.final.result,
            })}),
            **run.task.checkpoint_keys(),
            "code_version": dict(code_version()),
        }
        write_checkpoint(run.folder.checkpoint, ckpt)
        logger.info("checkpoint at step %d -> %s", state.step, run.folder.checkpoint)
    state.t_window += time.perf_counter() - t_save
