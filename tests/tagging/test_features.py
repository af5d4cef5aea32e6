"""Tagger input features against an independent per-particle computation on real jet datasets."""

from __future__ import annotations

import math
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hepscale.jets.readers import convert
from hepscale.jets.dataset import read_jets
from hepscale.tasks.tagging.features import (
    FEATURE_SETS,
    LOG_FLOOR,
    FeatureError,
    build_inputs,
    check_features,
    required_fields,
)


@pytest.fixture(scope="module")
def jetclass_path(jetclass_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jetclass") / "jetclass.parquet"
    convert([jetclass_file], out, max_constituents=128)
    return out


@pytest.fixture(scope="module")
def pythia_path(processed_samples: Path) -> Path:
    return processed_samples / "jets.parquet"


def _log(v: float) -> float:
    return math.log(max(v, LOG_FLOOR))


#: ParT's pf_features preprocessing (weaver, data/JetClass/JetClass_full.yaml): [var, centre, scale]
PART_SCALES = {"log_pt": (1.7, 0.7), "log_e": (2.0, 0.7), "log_pt_rel": (-4.7, 0.7), "log_e_rel": (-4.7, 0.7),
               "delta_r": (0.2, 4.0)}


def reference(jet: dict, feature_set: str, p: int, jet_energy: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and four-momenta of one jet (a python record), particle by particle, with ``math``."""
    names = FEATURE_SETS[feature_set]
    x, p4 = np.zeros((p, len(names))), np.zeros((p, 4))
    e_jet = jet_energy if jet_energy is not None else math.hypot(jet["pt"] * math.cosh(jet["eta"]), jet["mass"])
    for i, c in enumerate(jet["constituents"][:p]):
        a = abs(c["pid"])
        values = {
            "deta": c["deta"], "dphi": c["dphi"], "log_pt": _log(c["pt"]), "log_e": _log(c["energy"]),
            "log_pt_rel": _log(c["pt"] / jet["pt"]), "log_e_rel": _log(c["energy"] / e_jet),
            "delta_r": math.sqrt(c["deta"] ** 2 + c["dphi"] ** 2), "charge": c["charge"],
            "is_electron": a == 11, "is_muon": a == 13, "is_photon": a == 22,
            "is_charged_hadron": c["charge"] != 0 and a not in (11, 13),
            "is_neutral_hadron": c["charge"] == 0 and a not in (11, 13, 22),
        }
        if "d0" in c:
            values.update({"tanh_d0": math.tanh(c["d0"]), "d0err": c["d0err"], "tanh_dz": math.tanh(c["dz"]),
                           "dzerr": c["dzerr"]})
        for name, (centre, scale) in PART_SCALES.items():
            values[name] = (values[name] - centre) * scale
        x[i] = [float(values[n]) for n in names]
        p4[i] = [c["pt"] * math.cos(c["phi"]), c["pt"] * math.sin(c["phi"]), c["pt"] * math.sinh(c["eta"]),
                 c["energy"]]
    return x, p4


def check_against_reference(jets: ak.Array, feature_set: str, p: int, *, jet_energy: np.ndarray | None = None,
                            n_check: int | None = None) -> None:
    inputs = build_inputs(jets, feature_set, p, source="test")
    n = len(jets)
    assert inputs.x.shape == (n, p, len(FEATURE_SETS[feature_set])) and inputs.x.dtype == np.float32
    assert inputs.mask.shape == (n, p) and inputs.mask.dtype == np.bool_
    assert inputs.p4.shape == (n, p, 4) and inputs.p4.dtype == np.float32
    assert inputs.labels.dtype == np.int64 and np.array_equal(inputs.labels, ak.to_numpy(jets.label))
    assert np.all(np.isfinite(inputs.x)) and np.all(np.isfinite(inputs.p4))
    records = ak.to_list(jets[:n_check] if n_check else jets)
    for j, jet in enumerate(records):
        k = min(len(jet["constituents"]), p)
        assert inputs.mask[j].tolist() == [True] * k + [False] * (p - k)
        x, p4 = reference(jet, feature_set, p, None if jet_energy is None else float(jet_energy[j]))
        np.testing.assert_allclose(inputs.x[j], x, rtol=2e-5, atol=2e-6, err_msg=f"jet {j}")
        np.testing.assert_allclose(inputs.p4[j], p4, rtol=2e-5, atol=1e-4, err_msg=f"jet {j}")


def test_feature_sets_nest_and_name_their_inputs() -> None:
    assert [len(FEATURE_SETS[s]) for s in ("kin", "kinpid", "full")] == [7, 13, 17]
    assert FEATURE_SETS["kinpid"][:7] == FEATURE_SETS["kin"] and FEATURE_SETS["full"][:13] == FEATURE_SETS["kinpid"]
    assert FEATURE_SETS["full"][13:] == ("tanh_d0", "d0err", "tanh_dz", "dzerr")
    assert set(required_fields("full")) - set(required_fields("kinpid")) == {"d0", "d0err", "dz", "dzerr"}
    assert set(required_fields("kinpid")) - set(required_fields("kin")) == {"pid", "charge"}
    with pytest.raises(FeatureError, match="unknown feature set 'pid'"):
        required_fields("pid")
    check_features(required_fields("full"), "full", source="x.parquet")
    with pytest.raises(FeatureError, match=r"x.parquet: feature set 'full' needs constituent field\(s\) \['d0err', "
                                           r"'dzerr'\]"):
        check_features([f for f in required_fields("full") if not f.endswith("err")], "full", source="x.parquet")


@pytest.mark.parametrize("feature_set", ["kin", "kinpid", "full"])
@pytest.mark.parametrize("p", [16, 160])  # truncating every jet / padding every jet (at most 128 constituents)
def test_jetclass_features_match_a_particle_loop(jetclass_path: Path, jetclass_file: Path, feature_set: str,
                                                 p: int) -> None:
    jets = read_jets(jetclass_path)
    with uproot.open(jetclass_file) as f:  # jet energy from the file's particles, not from the dataset's jet fields
        jet_energy = ak.to_numpy(ak.sum(f["tree"]["part_energy"].array(), axis=1))
    check_against_reference(jets, feature_set, p, jet_energy=jet_energy)


def test_jetclass_particle_flags_are_the_files(jetclass_path: Path, jetclass_file: Path) -> None:
    """The five flags, charge and displacement of each particle reproduce JetClass' own branches."""
    inputs = build_inputs(read_jets(jetclass_path), "full", 128)
    names = FEATURE_SETS["full"]
    with uproot.open(jetclass_file) as f:
        a = f["tree"].arrays()
    branches = {"is_electron": "part_isElectron", "is_muon": "part_isMuon", "is_photon": "part_isPhoton",
                "is_charged_hadron": "part_isChargedHadron", "is_neutral_hadron": "part_isNeutralHadron",
                "charge": "part_charge", "d0err": "part_d0err", "dzerr": "part_dzerr"}
    for j in range(len(a)):
        pt = np.hypot(np.asarray(a.part_px[j], dtype=np.float64), np.asarray(a.part_py[j], dtype=np.float64))
        order = np.argsort(-pt, kind="stable")[:128]
        k = len(order)
        for name, branch in branches.items():
            expected = np.asarray(a[branch][j], dtype=np.float64)[order] * (0.1 if branch.endswith("err") else 1.0)
            np.testing.assert_allclose(inputs.x[j, :k, names.index(name)], expected, rtol=1e-6, atol=1e-9)
        d0 = np.asarray(a.part_d0val[j], dtype=np.float64)[order] / 10
        np.testing.assert_allclose(inputs.x[j, :k, names.index("tanh_d0")], np.tanh(d0), rtol=1e-5, atol=1e-8)
    flags = inputs.x[..., names.index("is_electron"):names.index("is_neutral_hadron") + 1]
    assert np.array_equal(flags.sum(axis=-1), inputs.mask.astype(np.float32))  # one flag per real particle


@pytest.mark.parametrize("feature_set", ["kin", "kinpid"])
def test_pythia_features_match_a_particle_loop(pythia_path: Path, feature_set: str) -> None:
    jets = read_jets(pythia_path)
    assert len(jets) > 300
    check_against_reference(jets, feature_set, 24, n_check=120)
    check_against_reference(jets[::7], feature_set, 200)  # every particle, padded


def test_full_features_need_the_track_displacement(pythia_path: Path) -> None:
    jets = read_jets(pythia_path)
    with pytest.raises(FeatureError) as err:
        build_inputs(jets, "full", 32, source=str(pythia_path))
    message = str(err.value)
    assert "'full'" in message and str(pythia_path) in message
    assert "['d0', 'd0err', 'dz', 'dzerr']" in message
    with pytest.raises(FeatureError, match="jets.parquet: unknown feature set 'fulll'"):
        build_inputs(jets, "fulll", 32, source="jets.parquet")


def test_zero_momenta_give_finite_clamped_logs() -> None:
    cons = [{"pt": 0.0, "eta": 0.1, "phi": 0.2, "deta": 0.1, "dphi": 0.2, "energy": 0.0, "pid": 22, "charge": 0},
            {"pt": 5.0, "eta": 0.0, "phi": 0.0, "deta": 0.0, "dphi": 0.0, "energy": 5.0, "pid": 211, "charge": 1}]
    jets = ak.Array([{"pt": 5.0, "eta": 0.0, "mass": 0.0, "label": 0, "constituents": cons},
                     {"pt": 0.0, "eta": 0.0, "mass": 0.0, "label": 8, "constituents": cons[:1]},
                     {"pt": 1.0, "eta": 0.0, "mass": 0.0, "label": 8, "constituents": []}])
    inputs = build_inputs(jets, "kinpid", 3)
    assert np.all(np.isfinite(inputs.x))
    names = FEATURE_SETS["kinpid"]
    floor = math.log(LOG_FLOOR)
    for name in ("log_pt", "log_e", "log_pt_rel", "log_e_rel"):
        centre, scale = PART_SCALES[name]
        for j in (0, 1):
            assert inputs.x[j, 0, names.index(name)] == pytest.approx((floor - centre) * scale, rel=1e-6)
    assert inputs.x[0, 1, names.index("log_pt_rel")] == pytest.approx(4.7 * 0.7, rel=1e-6)
    assert inputs.x[0, 1, names.index("log_pt")] == pytest.approx((math.log(5.0) - 1.7) * 0.7, rel=1e-6)
    assert inputs.mask.tolist() == [[True, True, False], [True, False, False], [False, False, False]]
    assert not inputs.x[~inputs.mask].any() and not inputs.p4[~inputs.mask].any()


def test_labels_raw_class_index_or_mapped(jetclass_path: Path) -> None:
    jets = read_jets(jetclass_path)[:10]
    raw = ak.to_numpy(jets.label)
    assert np.array_equal(build_inputs(jets, "kin", 4).labels, raw)
    mapping = {int(v): i for i, v in enumerate(np.unique(raw))}
    mapped = build_inputs(jets, "kin", 4, label_map=mapping).labels
    assert np.array_equal(mapped, [mapping[int(v)] for v in raw])
    with_index = ak.with_field(jets, np.arange(10) % 2, "class_index")
    assert np.array_equal(build_inputs(with_index, "kin", 4).labels, np.arange(10) % 2)
    with pytest.raises(FeatureError, match=rf"jc: label\(s\) \[{int(raw[0])}\] are not in the label map"):
        build_inputs(jets, "kin", 4, source="jc", label_map={k: v for k, v in mapping.items() if k != int(raw[0])})
    empty = build_inputs(jets[:0], "kin", 4)
    assert empty.x.shape == (0, 4, 7) and empty.labels.shape == (0,)


def test_inputs_do_not_depend_on_the_chunking(jetclass_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hepscale.tasks.tagging.features as features

    jets = read_jets(jetclass_path)
    whole = build_inputs(jets, "full", 64)
    monkeypatch.setattr(features, "_CHUNK_JETS", 7)  # 100 jets in 15 chunks, the last of 2
    chunked = build_inputs(jets, "full", 64)
    for name in ("x", "mask", "p4", "labels"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name
