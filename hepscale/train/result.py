"""``result.json`` of a finished training run, written by the trainer (:mod:`hepscale.train.loop`).

The record holds ``run_id, status, task, model, model_config, n_params_non_embedding, n_params_total,
steps, batch_size, seq_len, tokens_seen, unique_tokens, data_unit, items_seen, unique_items,
epochs, positions_seen, flops,
flops_total_params, flops_n, flops_formula, final_val_loss, final_train_loss``, the task's final
metrics (``Task.final_metric_keys``), ``world_size, elapsed_s``, the task's result keys,
``code_version`` and ``config``; :class:`hepscale.runs.folder.RunFolder` validates and writes it.

D and U are written twice: neutrally, as ``items_seen`` and ``unique_items`` in the task's
``data_unit`` (tokens, jets, ...), and under the names every existing run folder and runs table
has, ``tokens_seen`` and ``unique_tokens`` (whatever the unit), which the fits read by default.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hepscale.train.budget import FLOPS_FORMULA, pick_flops, training_flops

if TYPE_CHECKING:
    from hepscale.runs.folder import RunFolder
    from hepscale.train.loop import Run, TrainState
    from hepscale.train.task import Task

__all__ = ["write_result", "task_flops"]

logger = logging.getLogger(__name__)


def task_flops(task: Task, n_ne: int, n_tot: int, *, batch_size: int, steps: int) -> tuple[float, float]:
    """Training FLOPs of ``steps`` steps of ``batch_size`` items, ``(N non-embedding, N total)``:
    the task's own count per item when it has one, else ``6 N B S steps``."""
    own = task.train_flops_per_item()
    if own is not None:
        return own[0] * batch_size * steps, own[1] * batch_size * steps
    S = task.seq_len
    return (training_flops(n_ne, batch_size=batch_size, seq_len=S, steps=steps),
            training_flops(n_tot, batch_size=batch_size, seq_len=S, steps=steps))


def write_result(run: Run, state: TrainState) -> dict[str, Any]:
    """Write ``result.json`` of the finished run (main process); returns the record."""
    from hepscale._version import code_version

    from hepscale.tasks import DEFAULT_TASK, task_spec

    cfg, task, folder = run.cfg, run.task, run.folder
    spec = task_spec(getattr(cfg, "task", DEFAULT_TASK))
    B, S, steps = cfg.data.batch_size, task.seq_len, state.step
    n_ne, n_tot = run.n_params
    flops_ne, flops_total = task_flops(task, n_ne, n_tot, batch_size=B, steps=steps)
    flops_params = cfg.budget.flops_params
    final_metrics: dict[str, Any] = dict.fromkeys(task.final_metric_keys)
    if state.final is not None:
        final_metrics.update(state.final.result)
    result = {
        "run_id": run.run_id,
        "status": "finished",
        "task": spec.name,
        "model": cfg.model.size,
        "model_config": task.model_config(),
        "n_params_non_embedding": n_ne,
        "n_params_total": n_tot,
        "steps": steps,
        "batch_size": B,
        "seq_len": S,
        "tokens_seen": state.tokens,
        "unique_tokens": run.data.unique_units,
        "data_unit": spec.unit,
        "items_seen": state.tokens,
        "unique_items": run.data.unique_units,
        "epochs": state.tokens / run.data.unique_units,
        "positions_seen": steps * B * S,
        "flops": pick_flops(flops_ne, flops_total, flops_params),
        "flops_total_params": flops_total,
        "flops_non_embedding": flops_ne,
        "flops_n": flops_params,
        "flops_formula": task.flops_formula or FLOPS_FORMULA,
        "final_val_loss": state.last_val if state.last_val is not None else _last_metric(folder, "val_loss"),
        "final_train_loss": state.last_train if state.last_train is not None else _last_metric(folder, "train_loss"),
        **final_metrics,
        "world_size": run.rt.dist.world,
        "elapsed_s": state.elapsed_now(),
        **task.result_keys(),
        "code_version": dict(code_version()),
        "config": run.config,
    }
    folder.write_result(result)
    logger.info("run %s finished: val loss %s", folder.path, result["final_val_loss"])
    return result


def _last_metric(folder: RunFolder, key: str) -> Any:
    lines = folder.read_metrics()
    return lines[-1].get(key) if lines else None
