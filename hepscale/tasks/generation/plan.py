"""The plan of a generation study: N, D, U, epochs, steps and C of every run, without torch.

The numbers come from the same accounting as the trainer (:mod:`hepscale.train.budget`:
:func:`~hepscale.train.budget.unique_subset`, :func:`~hepscale.train.budget.steps_for_budget`,
:class:`~hepscale.train.budget.Accounting`) and the same model shapes
(:func:`hepscale.train.config.model_config_for`, :mod:`hepscale.models.sizes`), on the token
dataset of the study folder when it exists, else with ``plan.mean_jet_tokens`` tokens per jet.

Compute: ``C = 6 N B S n_steps`` with ``N`` including the embeddings, as the generation study
defines it (``budget.flops_params: non_embedding`` for ``N`` non-embedding), as in
``result.json``'s ``flops``; isoFLOP budgets (``grid.flops``) are turned into steps with the same C.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepscale.config import ConfigError

if TYPE_CHECKING:
    from hepscale.study.config import StudyConfig
    from hepscale.study.grid import Run
    from hepscale.study.plan import PlanRow

__all__ = ["plan_rows"]

logger = logging.getLogger(__name__)


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


def plan_rows(study: StudyConfig, runs: Sequence[Run], root: Path) -> list[PlanRow]:
    """N, D, U, epochs, steps and C of every run, from the token dataset when it exists in the
    study folder ``root`` (else with ``plan.mean_jet_tokens`` tokens per jet)."""
    from hepscale.study.data import data_paths
    from hepscale.study.plan import PlanRow
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
    folder = root / data_paths(study)["tokens"]
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
