"""Readers of other jet sources into the same jet dataset: JetClass ROOT files, Aspen Open Jets HDF5.

``hepscale convert JetClass_*.root --output jetclass.parquet``
``hepscale convert AspenOpenJets_*.h5 --output aoj.parquet``

Observables are recomputed from the constituents with :mod:`hepscale.jets.observables`, as for
every other source; the source's own jet-level values are not used.

- JetClass (tree ``tree``): constituents from ``part_px, part_py, part_pz, part_energy``,
  ``part_charge``, the particle-type flags ``part_is*`` (turned into PDG ids: e, mu with the
  sign of the charge, photon 22, charged hadron +-211, neutral hadron 130) and
  ``part_d0val, part_dzval`` with their uncertainties ``part_d0err, part_dzerr`` (mm in
  JetClass, converted to cm as in NanoAOD: constituent fields ``d0, dz, d0err, dzerr``). Labels:
  JetClass-I one-hot ``label_*`` -> :data:`hepscale.jets.dataset.LABELS` (same order);
  JetClass-II integer ``jet_label`` kept as is (``label_scheme: jetclass2`` in the metadata).
- Aspen Open Jets (HDF5): ``PFCands`` (N, 150, 11: px, py, pz, E, d0, d0Err, dz, dzErr, charge,
  pdgId, PUPPI weight; zero-padded, entries with E = 0 are padding; d0, dz and their
  uncertainties in cm, stored as ``d0, d0err, dz, dzerr``), ``event_info`` (run, lumi, event).
  Four-momenta are multiplied by the PUPPI weight (CMS AK8 jets are PUPPI jets;
  ``puppi=False`` to keep them unweighted); candidates of weight 0 are dropped. Labels are -1
  (collision data).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from hepscale.jets.dataset import LABELS, DatasetError, build_jets, write_jets

logger = logging.getLogger(__name__)

__all__ = ["read_jetclass", "read_aspen", "convert", "JETCLASS1_LABELS"]

JETCLASS1_LABELS = tuple(f"label_{name}" for name in LABELS)
_JETCLASS_PARTICLES = ("part_px", "part_py", "part_pz", "part_energy")
_ASPEN_KEYS = ("PFCands", "event_info")
_MM_TO_CM = 0.1
#: constituent field -> JetClass branch (mm), one per :data:`hepscale.jets.dataset.OPTIONAL_CONSTITUENT_FIELDS`
_JETCLASS_DISPLACEMENT = {"d0": "part_d0val", "dz": "part_dzval", "d0err": "part_d0err", "dzerr": "part_dzerr"}
#: constituent field -> column of Aspen Open Jets' PFCands (cm)
_ASPEN_DISPLACEMENT = {"d0": 4, "dz": 6, "d0err": 5, "dzerr": 7}


class SourceError(DatasetError):
    """An input file of another source lacks a branch or key, or holds unusable values."""


def _require_finite(values: np.ndarray, what: str) -> None:
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise SourceError(f"{what} has {int(np.count_nonzero(~np.isfinite(values)))} non-finite value(s) (NaN or inf)")


def read_jetclass(path: str | os.PathLike[str], *, max_constituents: int = 128, tree: str = "tree") -> tuple[ak.Array, dict[str, Any]]:
    """Read a JetClass (I or II) ROOT file into jet dataset records.

    Returns
    -------
    (jets, metadata)
        ``metadata`` has ``label_scheme`` (``jetclass`` or ``jetclass2``).
    """
    import uproot

    p = str(path)
    if not os.path.exists(p):
        raise SourceError(f"{p}: file does not exist")
    try:
        f = uproot.open(p)
    except Exception as err:  # uproot raises several types for non-ROOT or truncated files
        raise SourceError(f"{p}: not a readable ROOT file ({type(err).__name__}: {err})") from err
    with f:
        if tree not in f:
            raise SourceError(f"{p}: no TTree {tree!r}")
        t = f[tree]
        keys = set(t.keys())
        missing = [b for b in _JETCLASS_PARTICLES if b not in keys]
        if missing:
            raise SourceError(f"{p}: tree {tree!r} lacks branch(es) {', '.join(missing)}")
        if "jet_label" in keys:
            scheme, label_branches = "jetclass2", ["jet_label"]
        elif all(b in keys for b in JETCLASS1_LABELS):
            scheme, label_branches = "jetclass", list(JETCLASS1_LABELS)
        else:
            raise SourceError(f"{p}: no truth label: expected jet_label (JetClass-II) or {', '.join(JETCLASS1_LABELS)}")
        optional = [b for b in ("part_charge", *_JETCLASS_DISPLACEMENT.values(), "part_isElectron", "part_isMuon",
                                "part_isPhoton", "part_isChargedHadron", "part_isNeutralHadron") if b in keys]
        try:
            a = t.arrays(list(_JETCLASS_PARTICLES) + optional + label_branches)
        except Exception as err:
            raise SourceError(f"{p}: cannot read tree {tree!r} ({type(err).__name__}: {err})") from err
    for b in _JETCLASS_PARTICLES + tuple(optional):
        _require_finite(ak.to_numpy(ak.flatten(a[b])), f"{p}: branch {b}")
    fields: dict[str, Any] = {
        "px": a.part_px, "py": a.part_py, "pz": a.part_pz, "energy": a.part_energy,
    }
    charge = a.part_charge if "part_charge" in optional else 0 * a.part_px
    fields["charge"] = ak.values_astype(charge, np.int64)
    if "part_isPhoton" in optional:
        pid = (
            -11 * fields["charge"] * a.part_isElectron
            + -13 * fields["charge"] * a.part_isMuon
            + 22 * a.part_isPhoton
            + 211 * fields["charge"] * a.part_isChargedHadron
            + 130 * a.part_isNeutralHadron
        )
        fields["pid"] = ak.values_astype(pid, np.int64)
    for name, branch in _JETCLASS_DISPLACEMENT.items():
        if branch in optional:
            fields[name] = a[branch] * _MM_TO_CM
    cons = ak.zip(fields)
    empty = ak.num(cons, axis=1) == 0
    if ak.any(empty):
        logger.warning("%s: %d jet(s) without constituents are left out", p, int(ak.sum(empty)))
    keep = ~ak.to_numpy(empty)
    if scheme == "jetclass2":
        labels = ak.to_numpy(a.jet_label).astype(np.int64)
    else:
        onehot = np.column_stack([ak.to_numpy(a[b]) for b in JETCLASS1_LABELS])
        labels = np.argmax(onehot, axis=1).astype(np.int64)
        labels[onehot.sum(axis=1) != 1] = -1
    jets = build_jets(
        cons[keep], label=labels[keep], source=Path(p).name, event=np.arange(len(keep))[keep], jet_index=0,
        max_constituents=max_constituents,
    )
    return jets, {"label_scheme": scheme, "jets_without_constituents": int((~keep).sum()), "jets_read": len(keep)}


def read_aspen(path: str | os.PathLike[str], *, max_constituents: int = 128, puppi: bool = True) -> tuple[ak.Array, dict[str, Any]]:
    """Read an Aspen Open Jets HDF5 file into jet dataset records (labels -1: collision data)."""
    import h5py

    p = str(path)
    if not os.path.exists(p):
        raise SourceError(f"{p}: file does not exist")
    try:
        f = h5py.File(p, "r")
    except OSError as err:
        raise SourceError(f"{p}: not a readable HDF5 file ({err})") from err
    with f:
        missing = [k for k in _ASPEN_KEYS if k not in f]
        if missing:
            raise SourceError(f"{p}: HDF5 key(s) {', '.join(missing)} missing (has {', '.join(f.keys())})")
        pf = np.asarray(f["PFCands"][...], dtype=np.float64)
        info = np.asarray(f["event_info"][...])
    if pf.ndim != 3 or pf.shape[2] < 11:
        raise SourceError(f"{p}: key PFCands has shape {pf.shape}, expected (n_jets, n_particles, 11)")
    if info.shape[0] != pf.shape[0]:
        raise SourceError(f"{p}: event_info has {info.shape[0]} rows, PFCands {pf.shape[0]}")
    _require_finite(pf, f"{p}: key PFCands")
    weight = pf[:, :, 10] if puppi else np.ones(pf.shape[:2])
    mask = (pf[:, :, 3] != 0) & (weight > 0)
    counts = mask.sum(axis=1)
    sel = pf[mask]
    w = weight[mask]
    cons = ak.unflatten(
        ak.zip({
            "px": sel[:, 0] * w, "py": sel[:, 1] * w, "pz": sel[:, 2] * w, "energy": sel[:, 3] * w,
            **{name: sel[:, column] for name, column in _ASPEN_DISPLACEMENT.items()},
            "charge": sel[:, 8].astype(np.int64), "pid": sel[:, 9].astype(np.int64),
        }),
        counts,
    )
    keep = counts > 0
    if not keep.all():
        logger.warning("%s: %d jet(s) without constituents are left out", p, int((~keep).sum()))
    jets = build_jets(
        cons[keep], label=-1, source=Path(p).name, event=info[keep, 2].astype(np.int64), jet_index=0,
        max_constituents=max_constituents,
    )
    return jets, {"label_scheme": "none", "puppi_weighted": puppi, "jets_without_constituents": int((~keep).sum()),
                  "jets_read": int(len(keep))}


def _detect(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return "aspen"
    if suffix == ".root":
        return "jetclass"
    raise SourceError(f"{path}: cannot tell the format from the suffix {suffix!r}; use --format")


def convert(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    fmt: str = "auto",
    max_constituents: int = 128,
    skip_bad_files: bool = False,
    puppi: bool = True,
) -> dict[str, Any]:
    """Convert JetClass / Aspen Open Jets files into one jet dataset file; returns its provenance."""
    parts, inputs_meta, skipped = [], [], []
    schemes = set()
    for path in map(str, inputs):
        kind = _detect(path) if fmt == "auto" else fmt
        try:
            if kind == "jetclass":
                jets, meta = read_jetclass(path, max_constituents=max_constituents)
            elif kind == "aspen":
                jets, meta = read_aspen(path, max_constituents=max_constituents, puppi=puppi)
            else:
                raise SourceError(f"unknown format {kind!r}: expected jetclass or aspen")
        except SourceError as err:
            if not skip_bad_files:
                raise
            logger.warning("skipping %s", err)
            skipped.append({"path": path, "reason": str(err)})
            continue
        parts.append(jets)
        schemes.add(meta["label_scheme"])
        inputs_meta.append({"path": path, "format": kind, **meta})
    if not parts:
        raise SourceError("no input could be read: every file was skipped")
    if len(schemes) > 1:
        raise SourceError(f"inputs mix label schemes {sorted(schemes)}; convert them into separate datasets")
    common = [f for f in parts[0].constituents.fields if all(f in p.constituents.fields for p in parts)]
    parts = [ak.with_field(p, p.constituents[common], "constituents") for p in parts]
    jets = ak.concatenate(parts) if len(parts) > 1 else parts[0]
    provenance = {"inputs": inputs_meta, "skipped_files": skipped, "label_scheme": schemes.pop(),
                  "max_constituents": max_constituents}
    write_jets(output, jets, metadata=provenance)
    provenance["n_jets"] = len(jets)
    return provenance
