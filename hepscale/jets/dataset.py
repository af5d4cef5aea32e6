"""The jet dataset: one record per jet, written as parquet with provenance in its metadata.

Schema (units GeV, radians):

- jet fields: ``pt, eta, phi, mass, msoftdrop, tau1, tau2, tau3, tau21, tau32, d2``
  (float64, see :mod:`hepscale.jets.observables`), ``n_constituents`` (int64, all constituents
  of the jet, before any truncation), ``label`` (int64, see :data:`LABELS`), ``source``
  (input file name), ``event`` (event number in that file, int64), ``jet_index`` (index
  of the jet in its event, pT ordered) and ``weight`` (float64: the event weight, 1 for
  collision data and unweighted samples, ``genWeight * xsec * lumi / sumw`` for simulation
  with a cross-section, see :func:`hepscale.jets.inputs.event_weights`);
- ``constituents``: a list per jet sorted by descending pT, at most ``max_constituents``
  (default 128), of records ``pt, eta, phi, deta, dphi, energy, pid, charge`` and, where
  every input of the dataset has them, the track impact parameters ``d0, dz`` and their
  uncertainties ``d0err, dzerr`` (all in cm, as in NanoAOD; :data:`OPTIONAL_CONSTITUENT_FIELDS`),
  as the source stores them for particles without a track: 0 in JetClass, -1 in (PF)NanoAOD
  (neutral candidates and charged ones without track details).
  ``deta = eta - jet eta`` and ``dphi`` is the azimuthal difference to the jet axis wrapped
  into [-pi, pi).

Where weights are used: the processor's histograms (and figures) are filled with them, so that
pT-binned samples stitch into one spectrum. The tokens, the training data and the SWD are not
weighted: a generative model learns, and is compared with, the sample of jets as it was drawn
(train the generation study on one process, or on an unweighted mixture).

Observables are computed from all constituents before truncation. Provenance (inputs,
cutflow, generator settings, code version) is stored as JSON under the key ``hepscale``
of the parquet file's key-value metadata and read back by :func:`read_metadata`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepscale.errors import DataError
from hepscale.jets.observables import OBSERVABLES, constituent_p4, jet_observables

__all__ = [
    "LABELS",
    "LABEL_NAMES",
    "JET_FIELDS",
    "CONSTITUENT_FIELDS",
    "OPTIONAL_CONSTITUENT_FIELDS",
    "DatasetError",
    "build_jets",
    "write_jets",
    "read_jets",
    "read_metadata",
    "observable_matrix",
    "dataset_files",
]

#: Truth labels, in the order of JetClass-I's one-hot ``label_*`` branches.
LABELS: dict[str, int] = {
    "QCD": 0, "Hbb": 1, "Hcc": 2, "Hgg": 3, "H4q": 4, "Hqql": 5, "Zqq": 6, "Wqq": 7, "Tbqq": 8, "Tbl": 9,
}
LABEL_NAMES: dict[int, str] = {v: k for k, v in LABELS.items()}

JET_FIELDS = OBSERVABLES + ("label", "source", "event", "jet_index", "weight")
CONSTITUENT_FIELDS = ("pt", "eta", "phi", "deta", "dphi", "energy", "pid", "charge")
#: constituent fields stored where every input has them (cm): impact parameters and their uncertainties; the
#: one definition, used by the readers and the processing as well
OPTIONAL_CONSTITUENT_FIELDS = ("d0", "dz", "d0err", "dzerr")

_META_KEY = b"hepscale"


class DatasetError(DataError):
    """A jet dataset file is missing, unreadable or does not follow the schema."""


def _wrap_phi(x: Any) -> Any:
    return (x + np.pi) % (2 * np.pi) - np.pi


def _source_strings(source: str | Sequence[str], n_jets: int) -> ak.Array:
    """Per-jet source names as an awkward string array, typed ``string`` also when there are no jets.

    An empty list would be typed ``unknown`` (a ``null`` parquet column), and the jets of a chunk
    without selected jets could then not be merged with the others.
    """
    names = [source] * n_jets if isinstance(source, str) else [str(s) for s in source]
    if len(names) != n_jets:
        raise ValueError(f"source has {len(names)} entries for {n_jets} jets")
    return ak.Array(names) if names else ak.Array([""])[:0]


def build_jets(
    constituents: ak.Array,
    *,
    label: Any = 0,
    source: str | Sequence[str] = "",
    event: Any = -1,
    jet_index: Any = 0,
    weight: Any = 1.0,
    max_constituents: int = 128,
    observable_options: Mapping[str, float] | None = None,
) -> ak.Array:
    """Build jet dataset records from per-jet constituent lists.

    Parameters
    ----------
    constituents
        Awkward array (n_jets, var) of records with ``pt, eta, phi`` and ``mass`` or
        ``energy`` (or ``px, py, pz, energy``); optional ``pid, charge`` and
        :data:`OPTIONAL_CONSTITUENT_FIELDS` (``d0, dz, d0err, dzerr``, cm).
    label, event, jet_index, weight
        Scalar or array of shape (n_jets,).
    source
        Input file name, scalar or one per jet.
    max_constituents
        Constituents kept per jet after sorting by pT (observables use all of them).
    observable_options
        Keyword arguments of :func:`hepscale.jets.observables.jet_observables`.

    Returns
    -------
    ak.Array
        Records following the schema of this module, with the same types for any number of
        jets (zero included), so that the tables of any two chunks can be merged.
    """
    if max_constituents < 1:
        raise ValueError(f"max_constituents must be at least 1, got {max_constituents}")
    n_jets = len(constituents)
    obs = jet_observables(constituents, **dict(observable_options or {}))
    px, py, pz, energy = constituent_p4(constituents)
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / ak.where(pt > 0, pt, 1e-12))
    phi = np.arctan2(py, px)
    order = ak.argsort(pt, axis=1, ascending=False)
    fields: dict[str, Any] = {"pt": pt, "eta": eta, "phi": phi}
    fields["deta"] = eta - obs["eta"]
    fields["dphi"] = _wrap_phi(phi - obs["phi"])
    fields["energy"] = energy
    cfields = set(constituents.fields)
    fields["pid"] = ak.values_astype(constituents.pid, np.int64) if "pid" in cfields else ak.values_astype(0 * pt, np.int64)
    fields["charge"] = (
        ak.values_astype(constituents.charge, np.int64) if "charge" in cfields else ak.values_astype(0 * pt, np.int64)
    )
    for name in OPTIONAL_CONSTITUENT_FIELDS:
        if name in cfields:
            fields[name] = ak.values_astype(constituents[name], np.float64)
    cons = ak.zip({k: v[order][:, :max_constituents] for k, v in fields.items()})
    cons = ak.zip({k: ak.values_astype(cons[k], np.float64) if k not in ("pid", "charge") else cons[k] for k in cons.fields})

    def per_jet(value: Any, dtype: Any) -> np.ndarray:
        arr = np.asarray(ak.to_numpy(value) if isinstance(value, ak.Array) else value)
        if arr.ndim == 0:
            return np.full(n_jets, arr.item(), dtype=dtype)
        if arr.shape[0] != n_jets:
            raise ValueError(f"per-jet array has {arr.shape[0]} entries for {n_jets} jets")
        return arr.astype(dtype)

    record: dict[str, Any] = {name: obs[name] for name in OBSERVABLES}
    record["label"] = per_jet(label, np.int64)
    record["source"] = _source_strings(source, n_jets)
    record["event"] = per_jet(event, np.int64)
    record["jet_index"] = per_jet(jet_index, np.int64)
    record["weight"] = per_jet(weight, np.float64)
    record["constituents"] = cons
    return ak.zip(record, depth_limit=1)


def write_jets(
    path: str | os.PathLike[str],
    jets: ak.Array,
    *,
    metadata: Mapping[str, Any] | None = None,
    compression: str = "zstd",
) -> Path:
    """Write a jet dataset to one parquet file, atomically, with ``metadata`` as provenance JSON.

    ``compression``: parquet codec (``"zstd"``; ``"none"`` for intermediate files).
    """
    import pyarrow.parquet as pq

    from hepscale._io import atomic_path
    from hepscale._version import code_version

    missing = [f for f in JET_FIELDS + ("constituents",) if f not in jets.fields]
    if missing:
        raise DatasetError(f"jets to write to {path} lack field(s) {missing}")
    table = ak.to_arrow_table(jets, extensionarray=False)
    meta = dict(metadata or {})
    meta.setdefault("code_version", code_version())
    meta.setdefault("n_jets", len(jets))
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[_META_KEY] = json.dumps(meta, default=str).encode()
    table = table.replace_schema_metadata(schema_meta)
    out = Path(path)
    with atomic_path(out, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression=compression)
    return out


def dataset_files(path: str | os.PathLike[str]) -> list[Path]:
    """The parquet files of a jet dataset given as a file or a directory (``jets.parquet`` or ``*.parquet``)."""
    p = Path(path)
    if p.is_dir():
        if (p / "jets.parquet").is_file():
            return [p / "jets.parquet"]
        files = sorted(f for f in p.glob("*.parquet") if not f.name.startswith("."))
        if not files:
            raise DatasetError(f"directory {p} holds no jet dataset (no jets.parquet or *.parquet files)")
        return files
    if not p.exists():
        raise DatasetError(f"jet dataset {p} does not exist")
    return [p]


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Provenance metadata of a jet dataset file (the first file for a directory)."""
    import pyarrow.parquet as pq

    f = dataset_files(path)[0]
    try:
        file_meta = pq.read_metadata(f).metadata or {}  # file key-value metadata (schema metadata included)
    except Exception as err:  # pyarrow raises several unrelated types for corrupt files
        raise DatasetError(f"cannot read parquet file {f}: {err}") from err
    raw = file_meta.get(_META_KEY)
    return json.loads(raw) if raw else {}


def read_jets(path: str | os.PathLike[str], *, columns: Sequence[str] | None = None) -> ak.Array:
    """Read a jet dataset (file or directory) into an awkward array, checking the schema.

    Parameters
    ----------
    columns
        Top-level fields to read (e.g. ``["mass", "tau21"]``); all when None.
    """
    import pyarrow.parquet as pq

    parts = []
    for f in dataset_files(path):
        try:
            table = pq.read_table(f, columns=list(columns) if columns else None)
        except Exception as err:  # pyarrow raises ArrowInvalid, OSError, KeyError ...
            raise DatasetError(f"cannot read jet dataset {f}: {err}") from err
        arr = ak.from_arrow(table)
        need = list(columns) if columns else list(JET_FIELDS) + ["constituents"]
        missing = [c for c in need if c not in arr.fields]
        if missing:
            raise DatasetError(f"jet dataset {f} lacks field(s) {missing}; it has {arr.fields}")
        parts.append(arr)
    return parts[0] if len(parts) == 1 else ak.concatenate(parts)


def observable_matrix(jets: ak.Array, names: Sequence[str]) -> np.ndarray:
    """Stack named per-jet observables into a float64 array of shape (n_jets, len(names)).

    Raises
    ------
    KeyError
        Naming the missing observable and the available ones.
    """
    missing = [n for n in names if n not in jets.fields]
    if missing:
        raise KeyError(f"observable(s) {missing} not in the jet dataset; available: {jets.fields}")
    return np.column_stack([ak.to_numpy(jets[n]).astype(np.float64) for n in names])
