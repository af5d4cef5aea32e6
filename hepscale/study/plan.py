"""``study plan``: N, D, U, epochs, steps and C of every run before anything runs.

Each task counts its own (:meth:`hepscale.tasks.spec.TaskSpec.plan_rows`), with the same
accounting as the trainer (:mod:`hepscale.train.budget`) and the same model shapes; nothing here
imports torch. The GPU-hour estimate uses the compute with all layers and the assumed sustained
throughput ``plan.sustained_flops``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepscale.study.config import StudyConfig
from hepscale.study.grid import Run

__all__ = ["PlanRow", "plan_rows", "format_plan"]


@dataclass
class PlanRow:
    """One run in the plan: N (non-embedding and total), D and U (``tokens``, ``unique_tokens``:
    in the study's data unit, e.g. tokens or jets; U None: all of the training split, unknown
    before the data exists), epochs, steps, C (FLOPs with the N of ``budget.flops_params``;
    ``flops_total`` with N total), and the values of the task's grid axes (``axes``, e.g. a
    tagging run's ``features`` and ``max_particles``)."""

    run_id: str
    model: str
    n_params: int
    n_params_total: int
    tokens: float
    unique_tokens: float | None
    epochs: float | None
    steps: int
    flops: float
    flops_total: float
    lr: float
    seed: int
    axes: dict[str, Any] = field(default_factory=dict)


def plan_rows(
    study: StudyConfig, runs: Sequence[Run], *, study_dir: str | os.PathLike[str] | None = None
) -> list[PlanRow]:
    """N, D, U, epochs, steps and C of every run, as the study's task counts them
    (:meth:`hepscale.tasks.spec.TaskSpec.plan_rows`), from its prepared data in ``study_dir``
    (default: the study's folder) when it exists."""
    return study.spec.plan_rows(study, runs, Path(study_dir if study_dir is not None else study.folder))


def _num(x: float | None) -> str:
    return "all" if x is None else f"{x:.3g}"


def _axis(x: Any) -> Any:
    return "-" if x is None else x


def _epochs(x: float | None) -> str:
    return "?" if x is None else f"{x:.3g}"


def format_plan(study: StudyConfig, rows: Sequence[PlanRow]) -> str:
    """The plan table with total compute and a GPU-hour estimate."""
    spec = study.spec
    # the task's axes: numbers right-aligned (as the other numbers), names left-aligned
    first = rows[0].axes if rows else {}
    axes = [(a, h, (">" if isinstance(first.get(a), (int, float)) else "<") + str(max(len(h), 4)))
            for a, h in spec.plan_axes().items()]
    header = f"{'run_id':<16}  {'model':<5} " + "".join(f"{h:{w}} " for _, h, w in axes)
    header += f"{'N':>9} {'D':>9} {'U':>9} {'epochs':>7} {'steps':>8} {'C':>9} {'lr':>8} seed"
    lines = [f"study {study.name}: {len(rows)} runs -> {study.folder}", header, "-" * len(header)]
    for r in rows:
        line = f"{r.run_id:<16}  {r.model:<5} " + "".join(f"{_axis(r.axes.get(a)):{w}} " for a, _, w in axes)
        lines.append(line + f"{r.n_params:>9.3g} {r.tokens:>9.3g} {_num(r.unique_tokens):>9} {_epochs(r.epochs):>7} "
                     f"{r.steps:>8d} {r.flops:>9.3g} {r.lr:>8.2g} {r.seed}")
    total = sum(r.flops for r in rows)
    total_incl = sum(r.flops_total for r in rows)
    hours = total_incl / study.plan.sustained_flops / 3600.0
    kinds = sorted({r.flops == r.flops_total for r in rows})
    legend, with_all = spec.plan_legend("all layers" if kinds == [True] else "as budget.flops_params says")
    lines += [
        "-" * len(header),
        legend,
        f"total compute C {total:.3g} FLOPs, {total_incl:.3g} {with_all}",
        (f"estimate {hours:.3g} GPU-hours at an assumed sustained {study.plan.sustained_flops:.3g} FLOP/s "
         "(plan.sustained_flops), from the compute with embeddings"),
    ]
    return "\n".join(lines)
