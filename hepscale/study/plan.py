"""``study plan``: N, D, U, epochs, steps and C of every run before anything runs.

The numbers come from the same accounting as the trainer (:mod:`hepscale.train.budget`:
:func:`~hepscale.train.budget.unique_subset`, :func:`~hepscale.train.budget.steps_for_budget`,
:class:`~hepscale.train.budget.Accounting`) and the same model shapes
(:func:`hepscale.train.config.model_config_for`, :mod:`hepscale.models.sizes`), on the token
dataset of the study folder when it exists, else with ``plan.mean_jet_tokens`` tokens per jet.
Nothing here imports torch.

Compute: ``C = 6 N B S n_steps`` with ``N`` including the embeddings, as the generation study
defines it (``budget.flops_params: non_embedding`` for ``N`` non-embedding), as in
``result.json``'s ``flops``; isoFLOP budgets (``grid.flops``) are turned into steps with the same
C. The GPU-hour estimate uses ``N`` including embeddings and the assumed sustained throughput
``plan.sustained_flops``.

A tagging study counts jets: D = B steps jets seen, U the jets of the unique subset (the
training split of the tagging dataset when it exists, else ``data.unique_jets``), and C the
tagger's own count, :func:`hepscale.models.tagger_sizes.train_flops_per_jet` x D (all layers by
default, as ``budget.flops_params`` says), with N from :func:`hepscale.models.tagger_sizes.param_counts`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepscale.config import ConfigError
from hepscale.study.config import StudyConfig
from hepscale.study.data import data_paths
from hepscale.study.grid import Run

__all__ = ["PlanRow", "plan_rows", "format_plan"]

logger = logging.getLogger(__name__)


@dataclass
class PlanRow:
    """One run in the plan: N (non-embedding and total), D and U (``tokens``, ``unique_tokens``:
    in the study's data unit, tokens or jets; U None: all of the training split, unknown before
    the data exists), epochs, steps, C (FLOPs, 6 N B S steps with the N of ``budget.flops_params``,
    or the tagger's own count; ``flops_total`` with N total); tagging runs also their ``features`` and
    ``max_particles`` P."""

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
    features: str | None = None
    max_particles: int | None = None


def _token_lengths(folder: Path, seq_len: int) -> Any:
    """Data units of every training jet (its tokens, capped at ``seq_len + 1`` as the trainer
    does), or None before the token dataset exists."""
    import numpy as np

    offsets = folder / "train_offsets.npy"
    if not offsets.is_file():
        return None
    return np.minimum(np.diff(np.load(offsets, allow_pickle=False)), seq_len + 1)


def _unique_subset(lengths: Any, unique: int | None, run_id: str) -> int:
    from hepscale.train.budget import unique_subset

    try:
        return unique_subset(lengths, unique)
    except ConfigError as err:  # the plan still shows the run; the trainer will refuse it
        logger.warning("run %s: %s", run_id, err)
        return len(lengths)


def plan_rows(
    study: StudyConfig, runs: Sequence[Run], *, study_dir: str | os.PathLike[str] | None = None
) -> list[PlanRow]:
    """N, D, U, epochs, steps and C of every run, from the token dataset when it exists in
    ``study_dir`` (else with ``plan.mean_jet_tokens`` tokens per jet); a tagging study's from the
    tagging dataset when it exists (else U is the run's ``data.unique_jets``)."""
    if study.task == "tagging":
        return _tagging_rows(study, runs, Path(study_dir if study_dir is not None else study.folder))
    from hepscale.models.sizes import n_params_non_embedding, n_params_total
    from hepscale.tokens.tokenizer import Tokenizer, TokenizerConfig
    from hepscale.train.budget import (
        Accounting,
        pick_flops,
        steps_for_budget,
        training_flops,
    )
    from hepscale.train.config import model_config_for

    tokenizer = Tokenizer(TokenizerConfig(**(study.data.tokenizer or {})))
    folder = Path(study_dir if study_dir is not None else study.folder) / data_paths(study)["tokens"]
    rows = []
    for run in runs:
        cfg = run.config
        S, B = cfg.data.seq_len, cfg.data.batch_size
        m = model_config_for(cfg, tokenizer)
        n_ne, n_tot = n_params_non_embedding(m), n_params_total(m)
        lengths = _token_lengths(folder, S)
        unique: float | None
        if lengths is not None and len(lengths):
            n_sub = _unique_subset(lengths, cfg.data.unique_tokens, run.run_id)
            mean_len = float(lengths[:n_sub].mean())
            unique = float(lengths[:n_sub].sum())
        else:
            mean_len = study.plan.mean_jet_tokens
            unique = None if cfg.data.unique_tokens is None else float(cfg.data.unique_tokens)
        per_step = pick_flops(training_flops(n_ne, batch_size=B, seq_len=S, steps=1),
                              training_flops(n_tot, batch_size=B, seq_len=S, steps=1), cfg.budget.flops_params)
        steps = steps_for_budget(cfg.budget, batch_size=B, mean_units=mean_len, flops_per_step=per_step)
        tokens = float(cfg.budget.tokens) if cfg.budget.tokens is not None else steps * B * mean_len
        acc = Accounting(n_params=n_ne, n_params_total=n_tot, steps=steps, batch_size=B, seq_len=S, tokens=tokens,
                         unique=unique, flops_params=cfg.budget.flops_params)
        rows.append(PlanRow(run.run_id, run.model, acc.n_params, acc.n_params_total, acc.tokens, acc.unique,
                            acc.epochs, acc.steps, acc.flops, acc.flops_total, cfg.optim.lr, cfg.seed))
    return rows


def _train_jets(folder: Path) -> int | None:
    """Jets of the training split of a tagging dataset, or None before it exists."""
    from hepscale.study.data import TAGGING_INFO

    if not (folder / TAGGING_INFO).is_file():
        return None
    from hepscale.tagging.data import read_info

    return int(sum(read_info(folder)["counts"]["train"].values()))


def _tagging_rows(study: StudyConfig, runs: Sequence[Run], root: Path) -> list[PlanRow]:
    """The plan of a tagging study: the tagger's shapes, parameters and FLOPs per jet (no torch)."""
    from hepscale.models.tagger_sizes import (
        param_counts,
        tagger_config,
        train_flops_per_jet,
    )
    from hepscale.tagging.features import FEATURE_SETS
    from hepscale.train.budget import pick_flops, steps_for_budget

    assert study.data.tagging is not None
    n_classes = len(study.data.tagging.classes)
    n_train = _train_jets(root / data_paths(study)["tagging"])
    rows = []
    for run in runs:
        cfg = run.config
        m, d, B = cfg.model, cfg.data, cfg.data.batch_size
        custom = {k: getattr(m, k) for k in ("d_model", "n_head", "n_layer", "n_class_layer")
                  if getattr(m, k) is not None}
        shape = tagger_config(m.size, n_features=len(FEATURE_SETS[d.features]), n_classes=n_classes,
                              max_particles=d.max_particles, pairwise=m.pairwise, dropout=m.dropout, **custom)
        n_ne, n_tot = param_counts(shape)
        per_jet, per_jet_total = train_flops_per_jet(shape)
        per_jet_c = pick_flops(per_jet, per_jet_total, cfg.budget.flops_params)
        steps = steps_for_budget(cfg.budget, batch_size=B, mean_units=1.0, flops_per_step=per_jet_c * B)
        unique: float | None = None if d.unique_jets is None else float(d.unique_jets)
        if n_train is not None:
            if d.unique_jets is not None and d.unique_jets > n_train:  # the trainer will refuse it
                logger.warning("run %s: data.unique_jets=%d exceeds the %d jets of the training split", run.run_id,
                               d.unique_jets, n_train)
            unique = float(n_train if d.unique_jets is None else min(d.unique_jets, n_train))
        jets = float(steps * B)
        rows.append(PlanRow(run.run_id, run.model, n_ne, n_tot, jets, unique, jets / unique if unique else None, steps,
                            per_jet_c * jets, per_jet_total * jets, cfg.optim.lr, cfg.seed, d.features,
                            d.max_particles))
    return rows


def _num(x: float | None) -> str:
    return "all" if x is None else f"{x:.3g}"


def _epochs(x: float | None) -> str:
    return "?" if x is None else f"{x:.3g}"


def format_plan(study: StudyConfig, rows: Sequence[PlanRow]) -> str:
    """The plan table with total compute and a GPU-hour estimate."""
    tagging = study.task == "tagging"
    header = f"{'run_id':<16}  {'model':<5} "
    if tagging:
        header += f"{'features':<8} {'P':>4} "
    header += f"{'N':>9} {'D':>9} {'U':>9} {'epochs':>7} {'steps':>8} {'C':>9} {'lr':>8} seed"
    lines = [f"study {study.name}: {len(rows)} runs -> {study.folder}", header, "-" * len(header)]
    for r in rows:
        line = f"{r.run_id:<16}  {r.model:<5} "
        if tagging:
            line += f"{r.features:<8} {r.max_particles:>4} "
        lines.append(line + f"{r.n_params:>9.3g} {r.tokens:>9.3g} {_num(r.unique_tokens):>9} {_epochs(r.epochs):>7} "
                     f"{r.steps:>8d} {r.flops:>9.3g} {r.lr:>8.2g} {r.seed}")
    total = sum(r.flops for r in rows)
    total_incl = sum(r.flops_total for r in rows)
    hours = total_incl / study.plan.sustained_flops / 3600.0
    kinds = sorted({r.flops == r.flops_total for r in rows})
    which = "all layers" if kinds == [True] else "as budget.flops_params says"
    if tagging:
        legend = ("N: non-embedding parameters; P: particles per jet; D: jets seen; U: unique jets ('all': the whole "
                  f"training split); C: the tagger's training FLOPs per jet x D ({which})")
        with_all = "FLOPs with the embedding layers"
    else:
        legend = ("N: non-embedding parameters; D: tokens seen; U: unique tokens ('all': all of train.bin); "
                  "C = 6 N B S steps (FLOPs, " + ("N with embeddings" if kinds == [True] else which) + ")")
        with_all = "FLOPs with embeddings and output head"
    lines += [
        "-" * len(header),
        legend,
        f"total compute C {total:.3g} FLOPs, {total_incl:.3g} {with_all}",
        (f"estimate {hours:.3g} GPU-hours at an assumed sustained {study.plan.sustained_flops:.3g} FLOP/s "
         "(plan.sustained_flops), from the compute with embeddings"),
    ]
    return "\n".join(lines)
