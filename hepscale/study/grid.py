"""The grid of a study expanded into runs (:func:`expand_runs`).

Each :class:`Run` is the base training config (``train.config``) with ``key=value`` overrides:
the study's shared overrides, the model size, the prepared data of the study (the token
dataset; tagging: the tagging dataset, the input feature set and the particles per jet P), the
learning rate and overrides of the size, the unique-data budget U (tokens; tagging: jets), the
budget (steps, data D or compute C; an epoch budget becomes D = epochs x U) and the seed. Its
id is :func:`hepscale.train.config.run_id` of the resolved config, so a run whose data or
settings change gets a new id.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from hepscale.config import ConfigError
from hepscale.runs.folder import RunFolder
from hepscale.study.config import StudyConfig
from hepscale.study.data import data_paths

__all__ = ["Run", "expand_runs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One run of the grid: its id, model size and the ``key=value`` overrides of the base config."""

    run_id: str
    model: str
    overrides: tuple[str, ...]
    config: Any = field(compare=False, repr=False)

    @property
    def folder(self) -> str:
        """Run folder relative to the study folder (``runs/<run_id>``)."""
        return RunFolder.relative(self.run_id)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def expand_runs(study: StudyConfig, *, train_config: str | os.PathLike[str] | None = None) -> list[Run]:
    """The runs of the grid, in grid order (models outermost, then the task's own axes, e.g. the
    feature sets and particles per jet of a tagging study, budgets, unique-data budgets, seeds),
    duplicates removed.

    Parameters
    ----------
    train_config
        Path of the base training config (default ``study.train.config``).

    Raises
    ------
    ConfigError
        When an override does not fit the training config (the message names the run).
    """
    from hepscale.train.config import load_run_config, run_id

    g = study.grid
    spec = study.spec
    keys = spec.keys
    base = train_config if train_config is not None else study.train.config
    dataset = data_paths(study)[spec.dataset_key]
    budget_key, budgets = next((k, getattr(g, k)) for k in spec.budget_keys if getattr(g, k) is not None)
    largest = getattr(g, keys.largest)
    seeds: list[int | None] = list(g.seeds) or [None]
    inputs = spec.grid_inputs(study)  # the values of the task's own axes (tagging: feature set and P)
    runs: list[Run] = []
    seen: set[str] = set()
    for model, data_ov, budget, unique, seed in itertools.product(g.models, inputs, budgets, getattr(g, keys.unique),
                                                                  seeds):
        ov = [*study.train.overrides, f"model.size={model}", f"{keys.dataset_field}={dataset}", *data_ov]
        if model in g.lr:
            ov.append(f"optim.lr={_fmt(float(g.lr[model]))}")
        ov += list(g.model_overrides.get(model, []))
        ov.append(f"{keys.unique_field}={'null' if unique is None else int(unique)}")
        if budget_key == "epochs":
            assert unique is not None
            key, value = keys.data, str(int(round(budget * unique)))
        elif budget_key == "flops":
            key, value = "flops", _fmt(float(budget))
        else:
            key, value = budget_key, str(int(budget))
        if largest is not None and key == keys.data and int(value) > largest:
            continue
        ov += [f"budget.{k}=null" for k in ("steps", keys.data, "flops") if k != key]
        ov.append(f"budget.{key}={value}")
        if seed is not None:
            ov.append(f"seed={int(seed)}")
        point = " / ".join([model, *(o.split(".", 1)[1] for o in data_ov), f"{budget_key}={budget}"])
        try:
            cfg = load_run_config(base, ov)
        except ConfigError as err:
            raise ConfigError(f"study {study.name}, run {point}: {err}") from err
        rid = run_id(cfg)
        if rid in seen:
            logger.warning("grid point %s repeats run %s; kept once", point, rid)
            continue
        seen.add(rid)
        runs.append(Run(rid, model, tuple(ov), cfg))
    if not runs:
        raise ConfigError(f"study {study.name}: grid.{keys.largest}={largest} leaves no run of the grid")
    return runs
