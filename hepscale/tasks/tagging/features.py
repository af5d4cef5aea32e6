"""Tagger input features: the three feature sets of the jet tagging study, defined once.

The sets follow the Particle Transformer (Qu, Li, Qian, ICML 2022, arXiv:2202.03772), each
adding to the one before. Per particle i of a jet J (the dataset's constituents, highest pT
first; natural logarithms; ``ln`` of a value below :data:`LOG_FLOOR` is ``ln(LOG_FLOOR)``,
so that a particle or jet of zero pT or energy never gives -inf or NaN):

``kin`` (7), kinematics:

=================  =====================================================================
``deta``           eta_i - eta_J (the dataset's ``deta``)
``dphi``           phi_i - phi_J wrapped into [-pi, pi) (the dataset's ``dphi``)
``log_pt``         ln pT_i  (GeV)
``log_e``          ln E_i  (GeV)
``log_pt_rel``     ln(pT_i / pT_J)
``log_e_rel``      ln(E_i / E_J)
``delta_r``        sqrt(deta^2 + dphi^2)
=================  =====================================================================

``kinpid`` (13): ``kin`` and the particle identification, from the dataset's ``charge`` and
PDG id ``pid``; the five flags are exclusive (exactly one is 1 for a real particle):

=======================  ==========================================================
``charge``               electric charge (-1, 0, +1)
``is_electron``          \\|pid\\| == 11
``is_muon``              \\|pid\\| == 13
``is_photon``            \\|pid\\| == 22 (and not one of the above)
``is_charged_hadron``    charge != 0 and \\|pid\\| not in (11, 13)
``is_neutral_hadron``    charge == 0 and \\|pid\\| not in (11, 13, 22)
=======================  ==========================================================

``full`` (17): ``kinpid`` and the track displacement (ParT's choice of functions), with the
dataset's units, cm (the dataset stores JetClass' mm as cm; values as the source stores
them for particles without a track: 0 in JetClass, -1 in (PF)NanoAOD):

=============  ================================================
``tanh_d0``    tanh(d0 / cm)
``d0err``      d0 uncertainty (cm)
``tanh_dz``    tanh(dz / cm)
``dzerr``      dz uncertainty (cm)
=============  ================================================

Jet quantities: pT_J is the jet record's ``pt``; E_J its ``energy`` field when the records have
one, else ``sqrt((pT_J cosh eta_J)^2 + m_J^2)`` from its ``pt, eta, mass`` (the jet dataset's
jets are the sums of all their constituents, so this is the sum of the constituents' energies).
The logarithms and ``delta_r`` are then standardised with ParT's fixed shifts and scales
(:data:`STANDARDISATION`, from weaver's JetClass configs: ``(x - centre) * scale``), so that every
feature is of order one before the model's per-particle LayerNorm; without this the
logarithms (up to ~6) swamp the angles (~0.1) and small taggers stall at ln 2.

:func:`build_inputs` turns jets into :class:`TaggerInputs` (numpy, no torch): the first
``max_particles`` particles of each jet, zero-padded and masked, and their four-momenta for
pairwise features.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hepscale.errors import DataError

if TYPE_CHECKING:
    import awkward as ak

__all__ = ["FEATURE_SETS", "LOG_FLOOR", "STANDARDISATION", "FeatureError", "TaggerInputs", "required_fields", "check_features",
           "build_inputs"]

_KIN = ("deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "delta_r")
_PID = ("charge", "is_electron", "is_muon", "is_photon", "is_charged_hadron", "is_neutral_hadron")
_DISPLACEMENT = ("tanh_d0", "d0err", "tanh_dz", "dzerr")

#: feature set name -> ordered feature names (the last axis of :attr:`TaggerInputs.x`)
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "kin": _KIN,
    "kinpid": _KIN + _PID,
    "full": _KIN + _PID + _DISPLACEMENT,
}

_KIN_FIELDS = ("pt", "eta", "phi", "energy", "deta", "dphi")  # eta, phi: the four-momenta p4
#: constituent fields each feature set reads (every set also needs the jet's pt, eta and mass or energy)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "kin": _KIN_FIELDS,
    "kinpid": _KIN_FIELDS + ("pid", "charge"),
    "full": _KIN_FIELDS + ("pid", "charge", "d0", "d0err", "dz", "dzerr"),
}

#: smallest argument of the logarithms (GeV for ln pT and ln E; a ratio for the relative ones)
LOG_FLOOR = 1e-8


class FeatureError(DataError):
    """Jets lack the fields of a feature set, or the feature set is unknown (the message names both and the file)."""


@dataclass
class TaggerInputs:
    """Model inputs of ``n_jets`` jets, at most P particles each (highest pT first).

    Attributes
    ----------
    x
        float32 [n_jets, P, F]: the features of :data:`FEATURE_SETS` ``[feature_set]`` in that
        order; zeros in padded slots.
    mask
        bool [n_jets, P]: True for a real particle (the first ``min(n, P)`` slots of a jet of n).
    p4
        float32 [n_jets, P, 4]: (px, py, pz, E) in GeV of each particle, from its pt, eta, phi and
        energy; zeros in padded slots (for pairwise features).
    labels
        int64 [n_jets]: see :func:`build_inputs`.
    """

    x: np.ndarray
    mask: np.ndarray
    p4: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.mask.shape[0])


def _check_name(feature_set: str, source: str) -> None:
    if feature_set not in FEATURE_SETS:
        raise FeatureError(f"{source}: unknown feature set {feature_set!r}; expected one of {list(FEATURE_SETS)}")


def required_fields(feature_set: str) -> tuple[str, ...]:
    """The constituent fields of the jet dataset that ``feature_set`` reads.

    Raises
    ------
    FeatureError
        When ``feature_set`` is not a name of :data:`FEATURE_SETS`.
    """
    _check_name(feature_set, "feature set")
    return _REQUIRED[feature_set]


def check_features(fields: Iterable[str], feature_set: str, *, source: str) -> None:
    """Check that constituents with ``fields`` have every input of ``feature_set``.

    Parameters
    ----------
    fields
        The constituent fields of a jet dataset (e.g. ``jets.constituents.fields``).
    source
        The file (or split) the jets come from, for the message.

    Raises
    ------
    FeatureError
        Naming the feature set, the missing fields and ``source``; or an unknown feature set.
    """
    _check_name(feature_set, source)
    have = list(fields)
    missing = [f for f in _REQUIRED[feature_set] if f not in have]
    if missing:
        raise FeatureError(f"{source}: feature set {feature_set!r} needs constituent field(s) {missing}, which the "
                           f"jets lack (they have {have}); choose a feature set without them (e.g. 'kin', 'kinpid')")


def _log(values: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(values, LOG_FLOOR))


def _jet_energy(jets: ak.Array, source: str) -> np.ndarray:
    import awkward as ak

    if "energy" in jets.fields:
        return np.asarray(ak.to_numpy(jets["energy"]), dtype=np.float64)
    missing = [f for f in ("pt", "eta", "mass") if f not in jets.fields]
    if missing:
        raise FeatureError(f"{source}: the jets lack field(s) {missing} (jet energy for the relative features)")
    pt, eta, mass = (np.asarray(ak.to_numpy(jets[f]), dtype=np.float64) for f in ("pt", "eta", "mass"))
    return np.sqrt((pt * np.cosh(eta)) ** 2 + mass ** 2)


def _labels(jets: ak.Array, label_map: Mapping[int, int] | None, source: str) -> np.ndarray:
    import awkward as ak

    n = len(jets)
    if label_map is None:
        for name in ("class_index", "label"):
            if name in jets.fields:
                return np.asarray(ak.to_numpy(jets[name]), dtype=np.int64)
        return np.full(n, -1, dtype=np.int64)
    if "label" not in jets.fields:
        raise FeatureError(f"{source}: the jets have no field 'label' to map to class indices")
    raw = np.asarray(ak.to_numpy(jets["label"]), dtype=np.int64)
    unknown = sorted(set(np.unique(raw).tolist()) - {int(k) for k in label_map})
    if unknown:
        raise FeatureError(f"{source}: label(s) {unknown} are not in the label map {dict(label_map)}")
    keys = np.array(sorted(int(k) for k in label_map), dtype=np.int64)
    values = np.array([int(label_map[k]) for k in keys], dtype=np.int64)
    return values[np.searchsorted(keys, raw)] if n else np.zeros(0, dtype=np.int64)


#: jets computed at a time by :func:`build_inputs`
_CHUNK_JETS = 2048  # temporaries of 2 MiB: in cache
#: features that are not zero for a particle whose fields are all zero
_NONZERO_AT_ZERO = frozenset({"log_pt", "log_e", "log_pt_rel", "log_e_rel", "delta_r", "is_neutral_hadron"})
#: ParT's fixed standardisation (weaver's JetClass configs): feature -> (centre, scale), x -> (x - centre) * scale
STANDARDISATION: dict[str, tuple[float, float]] = {
    "log_pt": (1.7, 0.7),
    "log_e": (2.0, 0.7),
    "log_pt_rel": (-4.7, 0.7),
    "log_e_rel": (-4.7, 0.7),
    "delta_r": (0.2, 4.0),
}


def _fill(jets: ak.Array, jet_e: np.ndarray, names: tuple[str, ...], x: np.ndarray, mask: np.ndarray,
          p4: np.ndarray) -> None:
    """Write the features ``names``, mask and four-momenta of ``jets`` into the views ``x``, ``mask``, ``p4``."""
    import awkward as ak

    cons, p = jets["constituents"], x.shape[1]
    counts = np.asarray(ak.to_numpy(ak.num(cons, axis=1)), dtype=np.int64)
    mask[:] = np.arange(p)[None, :] < counts[:, None]
    # where each particle goes in the padded [n, P] arrays: its jet and its place in the jet (the first P kept)
    row = np.repeat(np.arange(len(counts)), counts)
    place = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = place < p
    row, place = row[keep], place[keep]

    def col(name: str, dtype: type = np.float64) -> np.ndarray:
        out = np.zeros((len(counts), p), dtype=dtype)
        out[row, place] = np.asarray(ak.to_numpy(ak.flatten(cons[name], axis=1)), dtype=dtype)[keep]
        return out

    pt, energy, deta, dphi = col("pt"), col("energy"), col("deta"), col("dphi")
    jet_pt = np.asarray(ak.to_numpy(jets["pt"]), dtype=np.float64)[:, None]
    jet_e = jet_e[:, None]
    feature: dict[str, Callable[[], np.ndarray]] = {
        "deta": lambda: deta,
        "dphi": lambda: dphi,
        "log_pt": lambda: _log(pt),
        "log_e": lambda: _log(energy),
        "log_pt_rel": lambda: _log(pt / np.where(jet_pt > 0, jet_pt, np.inf)),
        "log_e_rel": lambda: _log(energy / np.where(jet_e > 0, jet_e, np.inf)),
        "delta_r": lambda: np.hypot(deta, dphi),
        "tanh_d0": lambda: np.tanh(col("d0")),
        "d0err": lambda: col("d0err"),
        "tanh_dz": lambda: np.tanh(col("dz")),
        "dzerr": lambda: col("dzerr"),
    }
    if "charge" in names:
        charge, apid = col("charge", np.int64), np.abs(col("pid", np.int64))
        lepton = (apid == 11) | (apid == 13)
        feature.update({
            "charge": lambda: charge,
            "is_electron": lambda: apid == 11,
            "is_muon": lambda: apid == 13,
            "is_photon": lambda: (apid == 22) & ~lepton,
            "is_charged_hadron": lambda: (charge != 0) & ~lepton,
            "is_neutral_hadron": lambda: (charge == 0) & ~lepton & (apid != 22),
        })
    for k, name in enumerate(names):  # one feature at a time: one float64 temporary
        value = feature[name]()
        if name in STANDARDISATION:
            centre, scale = STANDARDISATION[name]
            value = (value - centre) * scale
        # padded slots hold zeros of every field: only these features are not zero there
        x[:, :, k] = np.where(mask, value, 0) if name in _NONZERO_AT_ZERO else value
    phi = col("phi")
    for k, value in enumerate((pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(col("eta")), energy)):
        p4[:, :, k] = value  # zero where pt and energy are (padding)


def build_inputs(jets: ak.Array, feature_set: str, max_particles: int, *, source: str = "jets",
                 label_map: Mapping[int, int] | None = None) -> TaggerInputs:
    """The tagger inputs of ``jets`` with the features of ``feature_set`` (see the module docstring).

    Parameters
    ----------
    jets
        Jet dataset records (:func:`hepscale.jets.dataset.read_jets`, or a split of
        :func:`hepscale.tasks.tagging.data.load_split`): jet ``pt, eta`` and ``mass`` (or ``energy``) and
        ``constituents`` in descending pT with the fields of :func:`required_fields`.
    feature_set
        ``"kin"``, ``"kinpid"`` or ``"full"`` (:data:`FEATURE_SETS`).
    max_particles
        P: the first P particles of each jet (highest pT) are kept, the rest dropped; shorter
        jets are zero-padded (``mask`` False).
    source
        The file (or split) the jets come from, for error messages.
    label_map
        Dataset label -> class index (:func:`hepscale.tasks.tagging.data.class_map`). When given,
        ``labels`` are the mapped ``label`` field (a label outside the map is an error); when
        None, ``labels`` are the ``class_index`` field of a prepared split if the jets have one,
        else the raw dataset ``label`` (-1 for every jet when neither field exists).

    Returns
    -------
    TaggerInputs
        ``x`` [n, P, F] float32, ``mask`` [n, P] bool, ``p4`` [n, P, 4] float32, ``labels`` [n] int64.

    Raises
    ------
    FeatureError
        When the feature set is unknown, or the jets lack a field it needs (naming the feature
        set, the fields and ``source``), or a label is outside ``label_map``.
    ValueError
        When ``max_particles`` is below 1.
    """
    if max_particles < 1:
        raise ValueError(f"max_particles must be at least 1, got {max_particles}")
    _check_name(feature_set, source)
    missing = [f for f in ("pt", "eta", "constituents") if f not in jets.fields]
    if missing:
        raise FeatureError(f"{source}: feature set {feature_set!r} needs jet field(s) {missing}, which the jets lack "
                           f"(they have {jets.fields})")
    check_features(jets["constituents"].fields, feature_set, source=source)
    n, names = len(jets), FEATURE_SETS[feature_set]
    jet_e = _jet_energy(jets, source)
    x = np.zeros((n, max_particles, len(names)), dtype=np.float32)
    mask = np.zeros((n, max_particles), dtype=bool)
    p4 = np.zeros((n, max_particles, 4), dtype=np.float32)
    for start in range(0, n, _CHUNK_JETS):  # bounded float64 temporaries for any number of jets
        stop = min(start + _CHUNK_JETS, n)
        _fill(jets[start:stop], jet_e[start:stop], names, x[start:stop], mask[start:stop], p4[start:stop])
    return TaggerInputs(x=x, mask=mask, p4=p4, labels=_labels(jets, label_map, source))
