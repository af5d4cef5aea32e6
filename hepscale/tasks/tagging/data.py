"""The tagging dataset: labelled jets of chosen classes, balanced and split by jet into train/val/test.

:func:`prepare_tagging_data` reads a jet dataset (:mod:`hepscale.jets.dataset`) and writes a
folder with

- ``train.parquet``, ``val.parquet``, ``test.parquet``: jet dataset files (the same record
  schema, read with :func:`load_split` or :func:`hepscale.jets.dataset.read_jets`) with one more
  int64 jet field, ``class_index`` (0 .. n_classes - 1, the position of the jet's class in
  ``classes``);
- ``info.json`` (:func:`read_info`), written last: a folder without it is not a finished
  tagging dataset.

The steps, all seeded by ``seed`` (one ``numpy.random.default_rng(seed)`` in this order):

1. jets whose ``label`` is not one of the classes are left out and counted per label
   (``dropped.not_in_classes``);
2. with ``balance``, every class is downsampled at random to the count of the smallest
   (``dropped.balance`` per class);
3. each class is shuffled and cut by ``fractions`` (train, val, test) into
   pieces at ``round(cumsum(fractions) * n_class)``, so every split has the class proportions
   of the whole to within one jet per class (balanced classes: equal counts in every split);
4. each split is shuffled: its order is random, never the file order (jet datasets are
   written file by file, i.e. sorted by process).

Class names are the JetClass-I names of :data:`hepscale.jets.dataset.LABELS` (``QCD``, ``Hbb``,
..., ``Tbl``) or, for datasets with other label schemes (JetClass-II's 188 integer labels), the
integer label written as a string (``"17"``). Binary taggers list the background first and the
signal second (``("QCD", "Tbqq")``).

``info.json`` holds: ``classes``; ``class_labels`` (the dataset label of each class);
``label_to_class`` (``{str(label): class index}``); ``counts`` (``{split: {class: jets}}``) and
``n_jets`` (``{split: jets}``); ``input_counts`` (jets per label name in the input); ``dropped``
(``not_in_classes`` and ``balance``, each ``{label name: jets}``); ``seed``, ``fractions``,
``balance``; ``input`` (path, label scheme and the size and mtime of each file);
``constituent_fields``; ``code_version``.

:func:`unique_subset` chooses the U training jets of a run (``data.unique_jets``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hepscale.config import ConfigError
from hepscale.errors import DataError

if TYPE_CHECKING:
    import awkward as ak

__all__ = ["SPLITS", "INFO_FILE", "ClassSpec", "TaggingDataError", "class_map", "prepare_tagging_data", "load_split",
           "read_info", "unique_subset"]

logger = logging.getLogger(__name__)

#: the splits of a tagging dataset, in order; each is ``<split>.parquet`` in the folder
SPLITS = ("train", "val", "test")
#: the description of a tagging dataset, written last
INFO_FILE = "info.json"
#: version of the folder's layout, in ``info.json``
FORMAT_VERSION = 1


class TaggingDataError(DataError):
    """A tagging dataset cannot be made or read as asked (the message names the file, class or split)."""


@dataclass(frozen=True)
class ClassSpec:
    """The classes of a tagger, in output order (binary: background first, signal second).

    ``classes``: names of :data:`hepscale.jets.dataset.LABELS` or integer labels as strings.
    """

    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))


def _label_name(label: int, scheme: str | None = None) -> str:
    from hepscale.jets.dataset import LABEL_NAMES

    if label == -1:
        return "unknown"
    if scheme in (None, "jetclass") and label in LABEL_NAMES:
        return LABEL_NAMES[label]
    return str(label)


def class_map(classes: Sequence[str] | ClassSpec, labels_present: Iterable[int], *, source: str = "the jet dataset",
              label_scheme: str | None = None) -> dict[int, int]:
    """Dataset label -> class index for ``classes`` (in their order).

    Parameters
    ----------
    classes
        Class names (:data:`hepscale.jets.dataset.LABELS`, e.g. ``("QCD", "Tbqq")``) or integer
        labels as strings (``"17"``), or a :class:`ClassSpec`.
    labels_present
        The labels the dataset holds (e.g. ``np.unique(jets.label)``).
    source
        The dataset, for messages.
    label_scheme
        The dataset's ``label_scheme`` (provenance metadata); class names stand for JetClass-I
        labels, so with ``"jetclass2"`` only integer labels are accepted.

    Returns
    -------
    dict[int, int]
        ``{dataset label: class index}``.

    Raises
    ------
    ConfigError
        Fewer than two classes, a class given twice, an unknown class name (naming the known ones).
    TaggingDataError
        A class with no jets in ``source``, or class names for a dataset of another label scheme.
    """
    from hepscale.jets.dataset import LABELS

    names = list(classes.classes if isinstance(classes, ClassSpec) else (str(c) for c in classes))
    if len(names) < 2:
        raise ConfigError(f"classes: a tagger needs at least two classes, got {names}")
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise ConfigError(f"classes: {twice} given more than once in {names}")
    labels: list[int] = []
    for name in names:
        if name in LABELS:
            if label_scheme not in (None, "jetclass"):
                raise TaggingDataError(f"{source}: class name {name!r} stands for a JetClass-I label, but the "
                                       f"dataset's labels follow the {label_scheme!r} scheme; give integer labels")
            labels.append(LABELS[name])
        elif name.lstrip("-").isdigit() and int(name) >= 0:
            labels.append(int(name))
        else:
            raise ConfigError(f"classes: unknown class {name!r}; expected names of {list(LABELS)} or integer labels")
    present = {int(v) for v in labels_present}
    absent = [n for n, lab in zip(names, labels) if lab not in present]
    if absent:
        have = sorted(_label_name(v, label_scheme) for v in present)
        raise TaggingDataError(f"{source}: no jets of class(es) {absent} (the dataset holds {have})")
    return {lab: i for i, lab in enumerate(labels)}


def _cuts(n: int, fractions: Sequence[float]) -> np.ndarray:
    """Split boundaries of ``n`` items: ``round(cumsum(fractions) * n)``, the last exactly ``n``."""
    bounds = np.rint(np.cumsum(fractions) * n).astype(np.int64)
    bounds[-1] = n
    return np.concatenate([[0], bounds])


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(f) for f in fractions)
    if len(values) != len(SPLITS):
        raise ConfigError(f"fractions: expected {len(SPLITS)} values (train, val, test), got {list(values)}")
    if any(not np.isfinite(f) or f <= 0 for f in values):
        raise ConfigError(f"fractions: every split needs a positive fraction, got {list(values)}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(f"fractions: must sum to 1, got {list(values)} (sum {sum(values):.6g})")
    return values


def _input_record(path: Path, files: Sequence[Path], scheme: str | None) -> dict[str, Any]:
    entries = []
    for f in files:
        st = f.stat()
        entries.append({"path": str(f.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return {"path": str(path.resolve()), "label_scheme": scheme, "files": entries}


def _balance(per_class: list[np.ndarray], names: Sequence[str], rng: np.random.Generator, *,
             source: Path) -> dict[str, int]:
    """Downsample every class's jet indices (in place) to the smallest class; the jets dropped per class."""
    dropped_balance = {}
    smallest = min(len(idx) for idx in per_class)
    for i, idx in enumerate(per_class):
        dropped_balance[names[i]] = len(idx) - smallest
        if len(idx) > smallest:
            per_class[i] = np.sort(rng.choice(idx, size=smallest, replace=False))
    if any(dropped_balance.values()):
        logger.info("%s: balancing to %d jets per class drops %s", source, smallest, dropped_balance)
    return dropped_balance


def _split_classes(per_class: Sequence[np.ndarray], names: Sequence[str], fracs: Sequence[float],
                   rng: np.random.Generator, *, source: Path,
                   balanced: bool) -> tuple[dict[str, list[np.ndarray]], dict[str, dict[str, int]]]:
    """Shuffle each class's jet indices and cut them by ``fracs``: the pieces and counts per split and class.

    Raises :class:`TaggingDataError` if a split would hold no jets of some class.
    """
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    split_counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for i, idx in enumerate(per_class):
        shuffled = rng.permutation(idx)
        cuts = _cuts(len(shuffled), fracs)
        for k, split in enumerate(SPLITS):
            piece = shuffled[cuts[k]:cuts[k + 1]]
            if len(piece) == 0:
                raise TaggingDataError(
                    f"{source}: the {split} split would hold no jets of class {names[i]!r} ({len(idx)} jets of it"
                    f"{' after balancing' if balanced else ''}, fractions {list(fracs)}); more jets are needed")
            parts[split].append(piece)
            split_counts[split][names[i]] = len(piece)
    return parts, split_counts


def prepare_tagging_data(jets_path: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
                         classes: Sequence[str] | ClassSpec, fractions: Sequence[float] = (0.6, 0.2, 0.2),
                         seed: int = 1, balance: bool = True) -> Path:
    """Make a tagging dataset of ``classes`` from the jet dataset ``jets_path`` (see the module docstring).

    Parameters
    ----------
    jets_path
        A jet dataset (parquet file or folder, :func:`hepscale.jets.dataset.read_jets`).
    output_dir
        The folder to write (created; its ``info.json`` is removed first and written last).
    classes
        Class names in output order (see :func:`class_map`), or a :class:`ClassSpec`.
    fractions
        Fractions of each class for train, val and test (positive, sum 1).
    seed
        Seed of the balancing, the split and the shuffles.
    balance
        Downsample every class to the count of the smallest.

    Returns
    -------
    Path
        ``output_dir``.

    Raises
    ------
    ConfigError
        Bad ``classes`` or ``fractions``.
    TaggingDataError
        A class without jets, or a split that would hold no jets of some class (too few jets
        for the fractions).
    DatasetError
        An unreadable jet dataset.
    """
    import awkward as ak

    from hepscale._io import atomic_write_json
    from hepscale._version import code_version
    from hepscale.jets.dataset import (
        dataset_files,
        read_jets,
        read_metadata,
        write_jets,
    )

    fracs = _check_fractions(fractions)
    names = list(classes.classes if isinstance(classes, ClassSpec) else (str(c) for c in classes))
    src, out = Path(jets_path), Path(output_dir)
    files = dataset_files(src)
    scheme = read_metadata(src).get("label_scheme")
    jets = read_jets(src)
    labels = np.asarray(ak.to_numpy(jets["label"]), dtype=np.int64)
    values, counts = np.unique(labels, return_counts=True)
    to_class = class_map(names, values, source=str(src), label_scheme=scheme)
    input_counts = {_label_name(int(v), scheme): int(c) for v, c in zip(values, counts)}
    not_in = {_label_name(int(v), scheme): int(c) for v, c in zip(values, counts) if int(v) not in to_class}
    if not_in:
        logger.info("%s: %d jet(s) of labels not among the classes %s are left out: %s", src, sum(not_in.values()),
                    names, not_in)
    rng = np.random.default_rng(seed)
    per_class = [np.flatnonzero(labels == lab) for lab in to_class]
    dropped_balance = _balance(per_class, names, rng, source=src) if balance else {}
    parts, split_counts = _split_classes(per_class, names, fracs, rng, source=src, balanced=balance)
    out.mkdir(parents=True, exist_ok=True)
    (out / INFO_FILE).unlink(missing_ok=True)  # the folder is unfinished until the new info.json is written
    keys = np.array(sorted(to_class), dtype=np.int64)
    class_of_key = np.array([to_class[k] for k in keys], dtype=np.int64)
    for split in SPLITS:
        order = rng.permutation(np.concatenate(parts[split]))
        table = ak.with_field(jets[order], class_of_key[np.searchsorted(keys, labels[order])], "class_index")
        write_jets(out / f"{split}.parquet", table,
                   metadata={"tagging_split": split, "classes": names, "input": str(src.resolve()), "seed": seed})
    info = {
        "format_version": FORMAT_VERSION,
        "classes": names,
        "class_labels": list(to_class),
        "label_to_class": {str(lab): c for lab, c in to_class.items()},
        "counts": split_counts,
        "n_jets": {s: int(sum(split_counts[s].values())) for s in SPLITS},
        "input_counts": input_counts,
        "n_input": int(len(labels)),
        "dropped": {"not_in_classes": not_in, "balance": dropped_balance},
        "seed": seed,
        "fractions": list(fracs),
        "balance": balance,
        "input": _input_record(src, files, scheme),
        "constituent_fields": list(jets["constituents"].fields),
        "code_version": dict(code_version()),
    }
    atomic_write_json(out / INFO_FILE, info)
    logger.info("%s: tagging dataset of %s: %s", out, names, info["n_jets"])
    return out


def read_info(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``info.json`` of a tagging dataset (see the module docstring for its keys).

    Raises
    ------
    TaggingDataError
        When ``data_dir`` has no readable ``info.json`` (not a finished tagging dataset).
    """
    import json

    path = Path(data_dir) / INFO_FILE
    if not path.is_file():
        raise TaggingDataError(f"{data_dir}: no {INFO_FILE}: not a finished tagging dataset "
                               "(make one with hepscale.tasks.tagging.data.prepare_tagging_data)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TaggingDataError(f"{path}: unreadable ({err})") from err
    if not isinstance(info, dict) or "classes" not in info:
        raise TaggingDataError(f"{path}: not the info of a tagging dataset (no 'classes')")
    return info


def load_split(data_dir: str | os.PathLike[str], split: str) -> ak.Array:
    """The jets of one split of a tagging dataset, in the split's (shuffled) order.

    Parameters
    ----------
    split
        ``"train"``, ``"val"`` or ``"test"``.

    Returns
    -------
    ak.Array
        Jet dataset records with the int64 field ``class_index`` (position of the jet's class
        in ``read_info(data_dir)["classes"]``).

    Raises
    ------
    ValueError
        An unknown split name.
    TaggingDataError
        A folder that is not a finished tagging dataset, or a split file without ``class_index``.
    DatasetError
        An unreadable split file.
    """
    from hepscale.jets.dataset import read_jets

    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    read_info(data_dir)
    path = Path(data_dir) / f"{split}.parquet"
    if not path.is_file():
        raise TaggingDataError(f"{path}: the {split} split of the tagging dataset {data_dir} is missing")
    jets = read_jets(path)
    if "class_index" not in jets.fields:
        raise TaggingDataError(f"{path}: no field 'class_index' (not a split of a tagging dataset)")
    return jets


def unique_subset(n_train_or_labels: int | Sequence[int] | np.ndarray, unique_jets: int | None, *,
                  seed: int) -> np.ndarray:
    """Indices into the training split of the U jets a run trains on (``data.unique_jets`` = U).

    Given the class indices of the training split (``load_split(d, "train")["class_index"]``),
    the subset is class-stratified: each class is shuffled (seeded) and the classes are
    interleaved evenly (the k-th of n_c jets of class c at ``(k + 1/2) / n_c``), and the subset
    is the first U jets of that order. A class of share p of the split (C classes) then has
    ``U p`` jets in the subset to within ``1/2 + p (C - 2) / 2``: rounded exactly for two
    classes, within one jet for balanced classes. Given a number of jets instead, the subset is
    the first U of a seeded permutation. Either way the subsets of a larger U contain those of a
    smaller U (same seed, same split), and the choice is random, never the first rows of a file.

    Parameters
    ----------
    n_train_or_labels
        The class index of every training jet (an int array, split order), or the number of
        training jets.
    unique_jets
        U; None: every training jet.
    seed
        Seed of the choice (the tagging dataset's ``seed`` for runs that should share subsets).

    Returns
    -------
    np.ndarray
        int64 indices into the training split, sorted ascending, U of them (all when None).

    Raises
    ------
    ConfigError
        When U is below 1 or exceeds the training jets (naming ``data.unique_jets``).
    """
    if isinstance(n_train_or_labels, (int, np.integer)):
        n, labels = int(n_train_or_labels), None
    else:
        labels = np.asarray(n_train_or_labels, dtype=np.int64).reshape(-1)
        n = len(labels)
    if unique_jets is None:
        return np.arange(n, dtype=np.int64)
    u = int(unique_jets)
    if u < 1:
        raise ConfigError(f"data.unique_jets must be at least 1, got {unique_jets}")
    if u > n:
        raise ConfigError(f"data.unique_jets={u} exceeds the {n} jets of the training split")
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.permutation(n)[:u]).astype(np.int64)
    keys = np.empty(n, dtype=np.float64)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)  # evenly spaced in (0, 1)
    tie = rng.random(n)  # a random order among jets of equal key
    order = np.lexsort((tie, keys))
    return np.sort(order[:u]).astype(np.int64)
