"""What a tagging study (``task: tagging``) checks and reads beside a generation study.

A tagging study trains jet taggers (training configs with ``task: classification``,
:mod:`hepscale.train.tagger_config`) on the train/validation/test splits of its classes
(``data.tagging``, :func:`hepscale.tagging.data.prepare_tagging_data`) over a grid of tagger
sizes (``configs/taggers.yaml``), input feature sets (``grid.features``), particles per jet
(``grid.max_particles``) and jet budgets (``grid.jets``, ``grid.unique_jets``). The rest of the
study (grid expansion, plan, job commands, executor, DAG, collection, fits) is shared with the
generation study and switches on ``study.task`` where the two differ.

- :func:`check_tagging_sections`: no tokenizer or SWD reference, a valid ``data.tagging`` (the
  classes and fractions of :func:`hepscale.tagging.data.prepare_tagging_data`);
- :func:`check_grid_keys`: the grid keys of one task are refused in the other, naming the key to
  use instead;
- :func:`check_tagging_inputs`: the feature sets and multiplicities of the grid, and the classes
  and feature sets against what the data source can give (jets generated with Pythia 8 have no
  track displacement, so no ``full`` feature set);
- :func:`check_jets_fields`: the same against the jet dataset itself, before it is split;
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepscale.study.config import TASK_KEYS, StudyError

if TYPE_CHECKING:
    from hepscale.study.config import StudyConfig

__all__ = ["PROCESS_LABELS", "check_tagging_sections", "check_grid_keys", "check_tagging_inputs",
           "check_jets_fields", "source_fields", "jets_fields"]

#: the truth labels (:mod:`hepscale.jets.truth`) the jets of each generated process can carry: its
#: own boson or top when the decay is contained in the jet (a W of a top alone: ``Wqq``), else QCD
PROCESS_LABELS: dict[str, tuple[str, ...]] = {
    "qcd": ("QCD",),
    "ttbar": ("Tbqq", "Wqq", "QCD"),
    "wqq": ("Wqq", "QCD"),
    "zqq": ("Zqq", "QCD"),
    "hbb": ("Hbb", "QCD"),
}

#: ``bad(field, message)``: the error of one field of the study file (:func:`hepscale.study.config.load_study`)
Checker = Callable[[str, str], Exception]


def check_tagging_sections(study: StudyConfig, bad: Checker) -> None:
    """The data sections of a tagging study, before the defaults fill them in: no tokenizer and
    no SWD reference; ``data.tagging`` with at least two known, distinct classes and three
    positive split fractions that add up to one.

    Raises
    ------
    Exception
        ``bad(field, message)`` naming the first wrong field.
    """
    from hepscale.jets.dataset import LABELS

    d = study.data
    if d.tokenizer is not None:
        raise bad("data.tokenizer", "a tagging study reads its jets as particles and has no tokenizer; remove the "
                  "section (the classes and splits are set in data.tagging)")
    if d.reference is not None:
        raise bad("data.reference", "a tagging study has no SWD reference: its test split is set by "
                  "data.tagging.fractions")
    t = d.tagging
    if t is None:
        return
    if len(t.classes) < 2:
        raise bad("data.tagging.classes", f"expected at least two classes (the background first), got {t.classes}")
    for i, name in enumerate(t.classes):
        if name not in LABELS and not (name.isdigit() and d.generate is None):  # "17": a label of another scheme
            raise bad(f"data.tagging.classes[{i}]", f"{name!r} is not a truth label ({', '.join(LABELS)}, or an "
                      "integer label of a converted dataset such as JetClass-II)")
        if name in t.classes[:i]:
            raise bad(f"data.tagging.classes[{i}]", f"{name!r} is listed twice")
    if len(t.fractions) != 3 or any(not (math.isfinite(f) and f > 0) for f in t.fractions):
        raise bad("data.tagging.fractions", f"expected three positive fractions (train, validation, test), "
                  f"got {t.fractions}")
    if abs(sum(t.fractions) - 1.0) > 1e-6:
        raise bad("data.tagging.fractions", f"expected fractions that add up to 1, got {t.fractions} "
                  f"(sum {sum(t.fractions):.6g})")


def check_grid_keys(study: StudyConfig, bad: Checker) -> None:
    """The grid keys of the other task are refused, naming the key to use instead; the axes
    ``features`` and ``max_particles`` belong to a tagging study."""
    g = study.grid
    keys = TASK_KEYS[study.task]
    other = TASK_KEYS["tagging" if study.task == "generation" else "generation"]
    unit = "jets" if study.task == "tagging" else "tokens"
    for mine, theirs in ((keys.data, other.data), (keys.largest, other.largest)):
        if getattr(g, theirs) is not None:
            raise bad(f"grid.{theirs}", f"a {study.task} study counts {unit}: use grid.{mine}")
    if getattr(g, other.unique) != [None]:
        raise bad(f"grid.{other.unique}", f"a {study.task} study counts {unit}: use grid.{keys.unique}")
    if study.task == "generation":
        for axis in ("features", "max_particles"):
            if getattr(g, axis) is not None:
                raise bad(f"grid.{axis}", "only a tagging study (task: tagging) has this axis")


def feature_sets(study: StudyConfig, base: Any) -> list[tuple[str, str]]:
    """The input feature sets of the study's runs as ``(field, name)``: ``grid.features[i]``, or
    the base training config's ``data.features``."""
    if study.grid.features is not None:
        return [(f"grid.features[{i}]", f) for i, f in enumerate(study.grid.features)]
    return [(f"{study.train.config}: data.features", str(base.data.features))]


def check_tagging_inputs(study: StudyConfig, bad: Checker, base: Any) -> None:
    """The inputs of a tagging study's runs: known feature sets and positive particle counts in
    the grid; classes the generated processes can give; feature sets whose fields the data
    source has (checked again on the jets themselves by :func:`check_jets_fields`).

    Parameters
    ----------
    base
        The base training config with the study's shared overrides (a
        :class:`hepscale.train.tagger_config.TaggerTrainConfig`).

    Raises
    ------
    Exception
        ``bad(field, message)`` naming the first wrong field.
    """
    from hepscale.tagging.features import FEATURE_SETS

    g = study.grid
    if g.features is not None and not g.features:
        raise bad("grid.features", "expected at least one feature set")
    for where, name in feature_sets(study, base):
        if name not in FEATURE_SETS:
            raise bad(where, f"{name!r} is not a feature set ({', '.join(FEATURE_SETS)})")
    if g.max_particles is not None and (not g.max_particles or any(p < 1 for p in g.max_particles)):
        raise bad("grid.max_particles", f"expected a non-empty list of positive particle counts, got {g.max_particles}")
    d = study.data
    assert d.tagging is not None
    if d.generate is not None:
        reachable = {label for p in d.generate.processes for label in PROCESS_LABELS.get(p, ())}
        for i, name in enumerate(d.tagging.classes):
            if name not in reachable:
                makers = [p for p, labels in PROCESS_LABELS.items() if name in labels]
                raise bad(f"data.tagging.classes[{i}]", f"no jet of data.generate.processes {d.generate.processes} "
                          f"is labelled {name!r}" + (f" (add one of {makers})" if makers else
                                                     " (the embedded generator makes no such jets)"))
    fields, source = source_fields(study)
    if fields is None:
        return
    for where, name in feature_sets(study, base):
        missing = _missing(name, fields)
        if missing:
            raise bad(where, f"feature set {name!r} needs the constituent field(s) {', '.join(missing)}, which "
                      f"{source} does not have" + (_HINT if d.generate is not None else ""))


_HINT = (" (jets generated with Pythia 8 have no track displacement d0, dz and their uncertainties: use the "
         "feature sets kin or kinpid, or jets from a source with tracks, e.g. JetClass through 'hepscale convert')")


def _missing(feature_set: str, fields: Iterable[str]) -> list[str]:
    from hepscale.tagging.features import required_fields

    have = set(fields)
    return [f for f in required_fields(feature_set) if f not in have]


def jets_fields(path: str | os.PathLike[str]) -> set[str]:
    """The constituent fields of a jet dataset (parquet file or folder), read from its schema.

    Raises
    ------
    DatasetError
        When the file cannot be read or has no constituent list.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hepscale.jets.dataset import DatasetError, dataset_files

    first = dataset_files(path)[0]
    try:
        schema = pq.read_schema(first)
    except Exception as err:  # pyarrow raises several unrelated types for corrupt files
        raise DatasetError(f"cannot read the schema of {first}: {err}") from err
    index = schema.get_field_index("constituents")
    kind = schema.field(index).type if index >= 0 else None
    while kind is not None and (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        kind = kind.value_type
    if kind is None or not pa.types.is_struct(kind):
        raise DatasetError(f"{first}: no 'constituents' list of records")
    return {kind.field(i).name for i in range(kind.num_fields)}


def source_fields(study: StudyConfig) -> tuple[set[str] | None, str]:
    """The constituent fields the study's data source gives, and the source in words: generated
    jets have those of every jet dataset (Pythia 8 gives no track displacement); an existing jet
    dataset its own; events to process are known only once processed (None)."""
    from hepscale.jets.dataset import CONSTITUENT_FIELDS

    d = study.data
    if d.generate is not None:
        return set(CONSTITUENT_FIELDS), "data.generate (Pythia 8)"
    if d.jets and Path(d.jets).exists():
        return jets_fields(d.jets), f"data.jets {d.jets}"
    return None, "data.events" if d.events else f"data.jets {d.jets}"


def check_jets_fields(study: StudyConfig, jets: str | os.PathLike[str]) -> None:
    """Every feature set of the study's runs against the constituent fields of the jets ``jets``.

    Raises
    ------
    StudyError
        Naming the feature set, the missing fields and the jet dataset.
    """
    from hepscale.train.config import load_run_config

    base = load_run_config(study.train.config, study.train.overrides)
    fields = jets_fields(jets)
    for where, name in feature_sets(study, base):
        missing = _missing(name, fields)
        if missing:
            raise StudyError(f"study {study.name}: {where}: feature set {name!r} needs the constituent field(s) "
                             f"{', '.join(missing)}, which the jets of {jets} do not have")
