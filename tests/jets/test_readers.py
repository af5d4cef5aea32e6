from __future__ import annotations

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot

from hepscale.convert import main
from hepscale.jets.readers import (
    _ASPEN_DISPLACEMENT,
    _JETCLASS_DISPLACEMENT,
    JETCLASS1_LABELS,
    SourceError,
    convert,
    read_aspen,
    read_jetclass,
)
from hepscale.jets.dataset import (
    LABELS,
    OPTIONAL_CONSTITUENT_FIELDS,
    read_jets,
    read_metadata,
)
from hepscale.jets.observables import jet_observables


@pytest.fixture(scope="module")
def jetclass_branches(jetclass_file):
    with uproot.open(jetclass_file) as f:
        return f["tree"].arrays()


def test_jetclass2_jets_match_the_file(jetclass_file, jetclass_branches):
    jets, meta = read_jetclass(jetclass_file)
    a = jetclass_branches
    assert meta["label_scheme"] == "jetclass2" and len(jets) == len(a) == 100
    # the constituents are the whole jet: their sum reproduces the stored jet pT and multiplicity
    np.testing.assert_allclose(ak.to_numpy(jets.pt), ak.to_numpy(a.jet_pt), rtol=1e-5)
    np.testing.assert_array_equal(ak.to_numpy(jets.n_constituents), ak.to_numpy(a.jet_nparticles))
    np.testing.assert_array_equal(ak.to_numpy(jets.label), ak.to_numpy(a.jet_label))
    # Delphes' soft-drop mass and (minimised-axes) N-subjettiness: close to ours, not identical
    assert np.median(np.abs(ak.to_numpy(jets.msoftdrop) / ak.to_numpy(a.jet_sdmass) - 1)) < 0.05
    assert np.median(ak.to_numpy(jets.tau1) / ak.to_numpy(a.jet_tau1)) == pytest.approx(1.0, abs=0.1)
    pid = ak.to_numpy(ak.flatten(jets.constituents.pid))
    charge = ak.to_numpy(ak.flatten(jets.constituents.charge))
    assert set(np.unique(np.abs(pid))) <= {11, 13, 22, 130, 211}
    assert np.all(charge[np.abs(pid) == 211] != 0) and np.all(charge[pid == 22] == 0)
    d0 = ak.to_numpy(ak.flatten(jets.constituents.d0))
    assert np.nanmax(np.abs(d0)) < 100  # cm


def test_converted_jetclass_keeps_the_displacement_in_cm(tmp_path, jetclass_file, jetclass_branches):
    """d0, dz, d0err, dzerr of the converted file are the branches / 10 (mm -> cm) of the same particles."""
    out = tmp_path / "jc.parquet"
    convert([jetclass_file], out, max_constituents=40)
    jets = read_jets(out)
    a = jetclass_branches
    assert set(jets.constituents.fields) >= set(OPTIONAL_CONSTITUENT_FIELDS)
    assert tuple(_JETCLASS_DISPLACEMENT) == OPTIONAL_CONSTITUENT_FIELDS
    branches = {"d0": "part_d0val", "dz": "part_dzval", "d0err": "part_d0err", "dzerr": "part_dzerr"}
    checked = 0
    for j in range(len(jets)):
        px, py = np.asarray(a.part_px[j], dtype=np.float64), np.asarray(a.part_py[j], dtype=np.float64)
        order = np.argsort(-np.hypot(px, py), kind="stable")[:40]  # the dataset's descending-pT order
        cons = jets.constituents[j]
        np.testing.assert_allclose(ak.to_numpy(cons.pt), np.hypot(px, py)[order], rtol=1e-6)
        for field, branch in branches.items():
            np.testing.assert_allclose(ak.to_numpy(cons[field]), np.asarray(a[branch][j])[order] / 10, rtol=1e-6,
                                       atol=1e-9, err_msg=f"jet {j} {field}")
        checked += len(order)
    assert checked == int(ak.sum(ak.num(jets.constituents)))
    d0err = ak.to_numpy(ak.flatten(jets.constituents.d0err))
    assert np.all(d0err >= 0) and 0 < d0err.max() < 0.1  # cm: at most 0.6 mm in this file


def test_jetclass1_one_hot_labels(tmp_path, jetclass_branches):
    a = jetclass_branches
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 10, len(a))
    data = {b: a[b] for b in ("part_px", "part_py", "part_pz", "part_energy", "part_charge")}
    for i, name in enumerate(JETCLASS1_LABELS):
        data[name] = (truth == i).astype(np.float32)
    path = tmp_path / "JetClass1.root"
    with uproot.recreate(path) as f:
        f["tree"] = {k: (ak.Array(v) if not isinstance(v, np.ndarray) else v) for k, v in data.items()}
    jets, meta = read_jetclass(path)
    assert meta["label_scheme"] == "jetclass"
    assert not set(OPTIONAL_CONSTITUENT_FIELDS) & set(jets.constituents.fields)  # no part_d0val ...: no d0
    np.testing.assert_array_equal(ak.to_numpy(jets.label), truth)
    assert LABELS["Tbqq"] == JETCLASS1_LABELS.index("label_Tbqq")


def write_aspen(path, n_jets=30, *, seed=2, nan=False, drop_key=None):
    rng = np.random.default_rng(seed)
    pf = np.zeros((n_jets, 150, 11), dtype=np.float32)
    counts = rng.integers(5, 150, n_jets)
    counts[3] = 0  # a jet with no constituents
    for j, n in enumerate(counts):
        pt = rng.exponential(20, n) + 1
        eta = rng.normal(0.5, 0.2, n)
        phi = rng.normal(-1.0, 0.2, n)
        pf[j, :n, 0], pf[j, :n, 1], pf[j, :n, 2] = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        pf[j, :n, 3] = pt * np.cosh(eta)
        pf[j, :n, 8] = rng.integers(-1, 2, n)
        pf[j, :n, 9] = 211 * pf[j, :n, 8] + 22 * (pf[j, :n, 8] == 0)
        pf[j, :n, 10] = rng.choice([0.0, 0.5, 1.0], n, p=[0.2, 0.2, 0.6])
        pf[j, :n, 4:8] = rng.normal(0.0, [0.01, 0.002, 0.05, 0.004], (n, 4))  # d0, d0Err, dz, dzErr (cm)
    if nan:
        pf[1, 0, 0] = np.nan
    with h5py.File(path, "w") as f:
        keys = {"PFCands": pf, "event_info": np.column_stack([np.ones(n_jets), np.ones(n_jets), np.arange(n_jets) + 100]),
                "jet_kinematics": np.zeros((n_jets, 4)), "jet_tagging": np.zeros((n_jets, 13))}
        for k, v in keys.items():
            if k != drop_key:
                f[k] = v
    return path, pf, counts


def test_aspen_layout_padding_and_puppi(tmp_path):
    path, pf, counts = write_aspen(tmp_path / "aoj.h5")
    jets, meta = read_aspen(path)
    assert len(jets) == 29 and meta["jets_without_constituents"] == 1
    keep = counts > 0
    w = pf[keep, :, 10]
    real = (pf[keep, :, 3] != 0) & (w > 0)
    np.testing.assert_array_equal(ak.to_numpy(jets.n_constituents), real.sum(axis=1))
    px = (pf[keep, :, 0] * w * real).sum(axis=1)
    py = (pf[keep, :, 1] * w * real).sum(axis=1)
    np.testing.assert_allclose(ak.to_numpy(jets.pt), np.hypot(px, py), rtol=1e-5)
    assert ak.all(jets.label == -1) and jets.event.to_list()[:3] == [100, 101, 102]
    # the observables are the shared implementation's, on the same constituents
    j0 = pf[0][(pf[0, :, 3] != 0) & (pf[0, :, 10] > 0)]
    ref = jet_observables(ak.Array([{"px": j0[:, 0] * j0[:, 10], "py": j0[:, 1] * j0[:, 10],
                                     "pz": j0[:, 2] * j0[:, 10], "energy": j0[:, 3] * j0[:, 10]}]))
    assert jets.tau32[0] == pytest.approx(ref["tau32"][0], rel=1e-6)
    unweighted, _ = read_aspen(path, puppi=False)
    assert ak.all(unweighted.n_constituents >= jets.n_constituents)


def test_aspen_keeps_the_displacement_of_each_candidate(tmp_path):
    path, pf, counts = write_aspen(tmp_path / "aoj.h5")
    jets, _ = read_aspen(path, max_constituents=50)
    assert tuple(_ASPEN_DISPLACEMENT) == OPTIONAL_CONSTITUENT_FIELDS
    columns = {"d0": 4, "d0err": 5, "dz": 6, "dzerr": 7}  # PFCands: px, py, pz, E, d0, d0Err, dz, dzErr, ...
    for jet, rows in zip(jets, pf[counts > 0]):
        real = rows[(rows[:, 3] != 0) & (rows[:, 10] > 0)].astype(np.float64)
        order = np.argsort(-np.hypot(real[:, 0], real[:, 1]) * real[:, 10], kind="stable")[:50]
        for field, column in columns.items():
            np.testing.assert_array_equal(np.asarray(jet.constituents[field]), real[order, column])


def test_aspen_bad_input(tmp_path):
    path, _, _ = write_aspen(tmp_path / "nokey.h5", drop_key="PFCands")
    with pytest.raises(SourceError, match="nokey.h5: HDF5 key\\(s\\) PFCands missing"):
        read_aspen(path)
    path, _, _ = write_aspen(tmp_path / "nan.h5", nan=True)
    with pytest.raises(SourceError, match="nan.h5: key PFCands has 1 non-finite"):
        read_aspen(path)


def test_convert_cli_skips_and_records_bad_files(tmp_path, jetclass_file, capsys):
    bad = tmp_path / "broken.root"
    bad.write_bytes(b"\x00" * 100)
    out = tmp_path / "jc.parquet"
    with pytest.raises(SourceError, match="broken.root: not a readable ROOT file"):
        convert([jetclass_file, bad], out)
    assert main([str(jetclass_file), str(bad), "--output", str(out), "--skip-bad-files"]) == 0
    assert "wrote 100 jets" in capsys.readouterr().out
    meta = read_metadata(out)
    assert meta["skipped_files"][0]["path"] == str(bad) and meta["label_scheme"] == "jetclass2"
    assert len(read_jets(out)) == 100
