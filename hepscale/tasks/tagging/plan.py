"""The plan of a tagging study: D = B steps jets seen, U the jets of the unique subset (the
training split of the tagging dataset when it exists, else ``data.unique_jets``), and C the
tagger's own count, :func:`hepscale.models.tagger_sizes.train_flops_per_jet` x D (all layers by
default, as ``budget.flops_params`` says), with N from
:func:`hepscale.models.tagger_sizes.param_counts`. No torch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hepscale.study.grid import Run
    from hepscale.study.plan import PlanRow
    from hepscale.tasks.tagging.study import TaggingStudy

__all__ = ["plan_rows"]

logger = logging.getLogger(__name__)


def _train_jets(folder: Path) -> int | None:
    """Jets of the training split of a tagging dataset, or None before it exists."""
    from hepscale.tasks.tagging.data import INFO_FILE

    if not (folder / INFO_FILE).is_file():
        return None
    from hepscale.tasks.tagging.data import read_info

    return int(sum(read_info(folder)["counts"]["train"].values()))


def plan_rows(study: TaggingStudy, runs: Sequence[Run], root: Path) -> list[PlanRow]:
    """The plan of a tagging study: the tagger's shapes, parameters and FLOPs per jet (no torch);
    U from the tagging dataset of the study folder ``root`` when it exists (else the run's
    ``data.unique_jets``)."""
    from hepscale.study.data import data_paths
    from hepscale.study.plan import PlanRow
    from hepscale.models.tagger_sizes import (
        param_counts,
        tagger_config,
        train_flops_per_jet,
    )
    from hepscale.tasks.tagging.features import FEATURE_SETS
    from hepscale.train.budget import pick_flops, steps_for_budget

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
                            per_jet_c * jets, per_jet_total * jets, cfg.optim.lr, cfg.seed,
                            {"features": d.features, "max_particles": d.max_particles}))
    return rows
