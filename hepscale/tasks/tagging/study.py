"""What a tagging study (``task: tagging``) has and checks beside the sections every study has.

A tagging study trains jet taggers (training configs with ``task: tagging``,
:mod:`hepscale.tasks.tagging.config`) on the train/validation/test splits of its classes
(``data.tagging``, :func:`hepscale.tasks.tagging.data.prepare_tagging_data`) over a grid of tagger
sizes (``configs/taggers.yaml``), input feature sets (``grid.features``), particles per jet
(``grid.max_particles``) and jet budgets (``grid.jets``, ``grid.unique_jets``).

- :class:`TaggingStudy`, :class:`TaggingGrid`, :class:`TaggingData`, :class:`TaggingSection`:
  the study of the task (:meth:`hepscale.tasks.spec.TaskSpec.study_class`);
- :func:`check_tagging_sections`: a valid ``data.tagging`` (the classes and fractions of
  :func:`hepscale.tasks.tagging.data.prepare_tagging_data`);
- :func:`check_tagging_inputs`: the feature sets and multiplicities of the grid, and the classes
  and feature sets against what the data source can give (jets generated with Pythia 8 have no
  track displacement, so no ``full`` feature set);
- :func:`check_jets_fields`: the same against the jet dataset itself, before it is split.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataclasses import dataclass, field

from hepscale.study.config import DataSection, GridSection, StudyConfig, StudyError

if TYPE_CHECKING:
    from hepscale.tasks.spec import Checker

__all__ = ["TaggingSection", "TaggingData", "TaggingGrid", "TaggingStudy", "PROCESS_LABELS",
           "check_tagging_sections", "check_tagging_inputs", "check_jets_fields", "source_fields", "jets_fields"]


@dataclass
class TaggingSection:
    """The tagging dataset of a tagging study (:func:`hepscale.tasks.tagging.data.prepare_tagging_data`):
    ``classes`` (truth-label names of :data:`hepscale.jets.dataset.LABELS`, the background class
    first, e.g. ``[QCD, Tbqq]``), the train/validation/test ``fractions``, the split ``seed`` and
    ``balance`` (as many jets of each class)."""

    classes: list[str] = field(default_factory=lambda: ["QCD", "Tbqq"])
    fractions: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    seed: int = 1
    balance: bool = True


@dataclass
class TaggingData(DataSection):
    """The data of a tagging study: the source, and ``tagging`` (:class:`TaggingSection`)."""

    tagging: TaggingSection = field(default_factory=TaggingSection)


@dataclass
class TaggingGrid(GridSection):
    """The grid of a tagging study: D in jets seen (``jets``), U in unique jets (``unique_jets``),
    the D cap ``max_jets``, and the axes ``features`` (input feature sets, None: the base
    config's) and ``max_particles`` (particles per jet P, None: the base config's)."""

    jets: list[int] | None = None
    unique_jets: list[int | None] = field(default_factory=lambda: [None])
    max_jets: int | None = None
    features: list[str] | None = None
    max_particles: list[int] | None = None


@dataclass
class TaggingStudy(StudyConfig):
    """A tagging study (``task: tagging``)."""

    data: TaggingData = field(default_factory=TaggingData)
    grid: TaggingGrid = field(default_factory=TaggingGrid)

#: the truth labels (:mod:`hepscale.jets.truth`) the jets of each generated process can carry: its
#: own boson or top when the decay is contained in the jet (a W of a top alone: ``Wqq``), else QCD
PROCESS_LABELS: dict[str, tuple[str, ...]] = {
    "qcd": ("QCD",),
    "ttbar": ("Tbqq", "Wqq", "QCD"),
    "wqq": ("Wqq", "QCD"),
    "zqq": ("Zqq", "QCD"),
    "hbb": ("Hbb", "QCD"),
}

def check_tagging_sections(study: TaggingStudy, bad: Checker) -> None:
    """``data.tagging`` of a tagging study: at least two known, distinct classes and three
    positive split fractions that add up to one.

    Raises
    ------
    Exception
        ``bad(field, message)`` naming the first wrong field.
    """
    from hepscale.jets.dataset import LABELS

    d = study.data
    t = d.tagging
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


def feature_sets(study: TaggingStudy, base: Any) -> list[tuple[str, str]]:
    """The input feature sets of the study's runs as ``(field, name)``: ``grid.features[i]``, or
    the base training config's ``data.features``."""
    if study.grid.features is not None:
        return [(f"grid.features[{i}]", f) for i, f in enumerate(study.grid.features)]
    return [(f"{study.train.config}: data.features", str(base.data.features))]


def check_tagging_inputs(study: TaggingStudy, bad: Checker, base: Any) -> None:
    """The inputs of a tagging study's runs: known feature sets and positive particle counts in
    the grid; classes the generated processes can give; feature sets whose fields the data
    source has (checked again on the jets themselves by :func:`check_jets_fields`).

    Parameters
    ----------
    base
        The base training config with the study's shared overrides (a
        :class:`hepscale.tasks.tagging.config.TaggerTrainConfig`).

    Raises
    ------
    Exception
        ``bad(field, message)`` naming the first wrong field.
    """
    from hepscale.tasks.tagging.features import FEATURE_SETS

    g = study.grid
    if g.features is not None and not g.features:
        raise bad("grid.features", "expected at least one feature set")
    for where, name in feature_sets(study, base):
        if name not in FEATURE_SETS:
            raise bad(where, f"{name!r} is not a feature set ({', '.join(FEATURE_SETS)})")
    if g.max_particles is not None and (not g.max_particles or any(p < 1 for p in g.max_particles)):
        raise bad("grid.max_particles", f"expected a non-empty list of positive particle counts, got {g.max_particles}")
    d = study.data
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
    from hepscale.tasks.tagging.features import required_fields

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


def source_fields(study: TaggingStudy) -> tuple[set[str] | None, str]:
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


def check_jets_fields(study: TaggingStudy, jets: str | os.PathLike[str]) -> None:
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
