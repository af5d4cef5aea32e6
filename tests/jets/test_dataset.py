from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepscale.jets.dataset import (
    CONSTITUENT_FIELDS,
    JET_FIELDS,
    OPTIONAL_CONSTITUENT_FIELDS,
    DatasetError,
    build_jets,
    observable_matrix,
    read_jets,
    read_metadata,
    write_jets,
)


def make_constituents(n_jets=12, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 200, n_jets)
    n = int(counts.sum())
    flat = ak.zip({
        "pt": rng.exponential(10, n) + 0.1, "eta": rng.normal(0.5, 0.3, n), "phi": rng.normal(3.0, 0.3, n),
        "mass": np.zeros(n), "pid": rng.choice([22, 211, -211, 130], n), "charge": rng.integers(-1, 2, n),
    })
    return ak.unflatten(flat, counts)


def test_build_jets_schema_sorting_and_truncation():
    cons = make_constituents()
    jets = build_jets(cons, label=8, source="f.root", event=np.arange(12), max_constituents=64)
    for name in JET_FIELDS:
        assert name in jets.fields
    assert set(CONSTITUENT_FIELDS) <= set(jets.constituents.fields)
    kept = jets.constituents
    assert ak.all(ak.num(kept) == np.minimum(ak.num(cons), 64))
    assert ak.all(jets.n_constituents == ak.num(cons))  # multiplicity counts all constituents
    assert ak.all(kept.pt[:, :-1] >= kept.pt[:, 1:])  # descending pT
    assert ak.max(abs(kept.dphi)) <= np.pi  # wrapped across phi = pi
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(kept.eta - kept.deta - jets.eta)), 0, atol=1e-12)
    dphi_direct = (kept.phi - jets.phi + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(kept.dphi - dphi_direct)), 0, atol=1e-12)


def test_optional_fields_follow_their_constituents_through_a_round_trip(tmp_path):
    """d0, dz, d0err, dzerr are sorted and truncated with the pT of their own particle, and survive parquet."""
    cons = make_constituents(6, seed=3)
    # each particle's displacement encodes its pT, so that a mix-up between particles shows
    extra = {"d0": cons.pt * 1e-3, "dz": -cons.pt * 2e-3, "d0err": cons.pt * 1e-4, "dzerr": cons.pt * 3e-4}
    for name, value in extra.items():
        cons = ak.with_field(cons, value, name)
    jets = read_jets(write_jets(tmp_path / "d.parquet", build_jets(cons, max_constituents=50)))
    kept = jets.constituents
    assert kept.fields == list(CONSTITUENT_FIELDS + OPTIONAL_CONSTITUENT_FIELDS)
    pt = ak.to_numpy(ak.flatten(kept.pt))
    for name, scale in (("d0", 1e-3), ("dz", -2e-3), ("d0err", 1e-4), ("dzerr", 3e-4)):
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(kept[name])), pt * scale, rtol=1e-12)
    without = build_jets(make_constituents(2))
    assert not set(OPTIONAL_CONSTITUENT_FIELDS) & set(without.constituents.fields)


@pytest.mark.parametrize("source", ["f.root", "per-jet"])
def test_no_jets_have_the_types_of_some_jets(source, tmp_path):
    """A chunk without selected jets writes the same parquet schema as one with jets (it is merged with them)."""
    import pyarrow.parquet as pq

    cons = make_constituents(3)
    schemas = []
    for n in (3, 0):
        src = "f.root" if source == "f.root" else [f"f{i}.root" for i in range(n)]
        jets = build_jets(cons[:n], label=np.zeros(n, dtype=np.int64), source=src, event=np.arange(n),
                          jet_index=np.zeros(n, dtype=np.int64))
        schemas.append(pq.read_schema(write_jets(tmp_path / f"{source}{n}.parquet", jets)))
    assert str(schemas[1].field("source").type) == "large_string"
    assert schemas[1].equals(schemas[0], check_metadata=False)
    with pytest.raises(ValueError, match="source has 2 entries for 3 jets"):
        build_jets(cons, source=["a.root", "b.root"])


def test_round_trip_with_metadata(tmp_path):
    jets = build_jets(make_constituents(), label=0, source="f.root")
    path = write_jets(tmp_path / "j.parquet", jets, metadata={"cutflow": {"events_read": 12}})
    back = read_jets(path)
    assert ak.to_list(back) == ak.to_list(jets)
    meta = read_metadata(path)
    assert meta["cutflow"] == {"events_read": 12} and meta["n_jets"] == 12 and "code_version" in meta
    assert read_jets(tmp_path).fields == back.fields  # a folder of parquet files
    m = observable_matrix(back, ["mass", "tau21"])
    assert m.shape == (12, 2) and np.array_equal(m[:, 0], ak.to_numpy(jets.mass))
    with pytest.raises(KeyError, match=r"observable\(s\) \['tau54'\] not in the jet dataset"):
        observable_matrix(back, ["mass", "tau54"])


def test_bad_dataset_files(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_jets(tmp_path / "nope.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 not really")
    with pytest.raises(DatasetError, match="cannot read jet dataset .*junk.parquet"):
        read_jets(junk)
    ak.to_parquet(ak.Array([{"pt": 1.0}]), tmp_path / "other.parquet")
    with pytest.raises(DatasetError, match="other.parquet lacks field"):
        read_jets(tmp_path / "other.parquet")
