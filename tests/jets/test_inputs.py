"""Inputs of ``hepscale process``: PFNano layouts, coffea filesets, event weights, lumi mask and triggers."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot
from _pfnano import process_file, raw_pt_differences, write_stored_layout

from hepscale.errors import ConfigError, DataError
from hepscale.jets.inputs import (
    InputFile,
    check_file,
    event_weights,
    make_chunks,
    read_fileset,
    resolve_inputs,
)
from processors.jets import JetProcessor, JetProcessorConfig


@pytest.fixture(scope="module")
def stored_file(pfnano_file, tmp_path_factory):
    """The sample file in the older PFNano layout (constituents stored in FatJetPFCands_*)."""
    return write_stored_layout(pfnano_file, tmp_path_factory.mktemp("stored") / "pfnano_2017_layout.root")


def test_layouts_are_detected(pfnano_file, stored_file, generated_samples):
    assert check_file(pfnano_file).layout == "pfnano"
    assert check_file(generated_samples["qcd"]).layout == "pfcands"
    stored = check_file(stored_file, constituents="pfnano")
    assert stored.error is None and stored.layout == "pfnano-stored"
    assert stored.optional_fields == ("d0", "dz", "d0err", "dzerr")
    assert stored.record()["layout"] == "pfnano-stored"


def test_stored_constituents_reproduce_the_raw_fatjet_pt(pfnano_file, stored_file):
    """PUPPI-weighted stored AK8 constituents give back CMS's raw AK8 jet pT, and the same jets as the newer layout."""
    jets = process_file(stored_file, constituents="pfnano")["jets"]
    diff = raw_pt_differences(stored_file, jets)
    assert len(jets) == 20 and np.all(np.isfinite(diff))
    assert np.median(diff) < 5e-3 and diff.max() < 1e-2
    indexed = process_file(pfnano_file, constituents="pfnano")["jets"]
    for name in ("pt", "eta", "mass", "tau21", "n_constituents"):
        np.testing.assert_allclose(ak.to_numpy(jets[name]), ak.to_numpy(indexed[name]), rtol=1e-9)
    unweighted = process_file(stored_file, constituents="pfnano", puppi="off")["jets"]
    assert np.median(raw_pt_differences(stored_file, unweighted)) > 5 * np.median(diff)  # the weights matter


def test_reclustering_the_older_layout_is_a_clear_error(stored_file):
    err = check_file(stored_file).error
    assert str(stored_file) in err and "older PFNano layout" in err and "--constituents pfnano" in err


def test_fileset_carries_its_trees_and_metadata(pfnano_file, stored_file, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "local.root").symlink_to(pfnano_file)
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({
        "QCD_1400to1800": {"files": {"sub/local.root": "Events"}, "metadata": {"xsec": 0.33, "era": "2018"}},
        "QCD_old": {"files": {str(stored_file): {"object_path": "Events", "steps": [[0, 10]]}},
                    "metadata": {"isData": False}},
    }))
    files = read_fileset(fileset)
    assert [f.path for f in files] == [str(tmp_path / "sub" / "local.root"), str(stored_file)]
    assert [f.dataset for f in files] == ["QCD_1400to1800", "QCD_old"]
    assert files[0].metadata == {"xsec": 0.33, "era": "2018"}
    assert resolve_inputs([fileset]) == files
    checks = [check_file(f, constituents="pfnano") for f in files]
    chunks = make_chunks(checks, chunksize=4)
    assert [c.dataset for c in chunks] == ["QCD_1400to1800"] * 3 + ["QCD_old"] * 3
    assert chunks[0].metadata == {"xsec": 0.33, "era": "2018", "sumw": 10.0, "is_data": False, "layout": "pfnano"}
    assert checks[0].record()["metadata"] == {"xsec": 0.33, "era": "2018"}
    limited = make_chunks(checks, chunksize=4, max_chunks=2)
    assert [(c.dataset, c.start, c.stop) for c in limited] == [
        ("QCD_1400to1800", 0, 4), ("QCD_1400to1800", 4, 8), ("QCD_old", 0, 4), ("QCD_old", 4, 8)]


@pytest.mark.parametrize("content, message", [
    ({"ds": {"files": {"x.root": "Events"}, "metadata": [1]}}, "'metadata' should be a mapping"),
    ({"ds": {"files": {"x.root": 3}}}, "should name its tree"),
    ({"ds": {"files": {"x.root": "Events"}, "xsec": 1.0}}, "unknown key(s) ['xsec']"),
    ({"ds": ["x.root"]}, "expected a mapping with 'files'"),
])
def test_malformed_filesets_name_the_dataset_and_key(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataError) as err:
        read_fileset(path)
    assert str(path) in str(err.value) and "'ds'" in str(err.value) and message in str(err.value)


def test_a_wrong_tree_name_is_named(pfnano_file):
    err = check_file(InputFile(str(pfnano_file), tree="events")).error
    assert str(pfnano_file) in err and "no TTree 'events'" in err


def test_weights_normalise_each_dataset_to_its_cross_section(pfnano_file, stored_file, tmp_path):
    """genWeight * xsec * lumi / sumw per jet, checked against the file's branches; histograms carry the weights."""
    scaled = write_stored_layout(pfnano_file, tmp_path / "scaled.root", gen_weight_scale=2.5, runs_sumw=40.0)
    xsec, lumi = 7.5, 1000.0
    out = process_file(InputFile(str(scaled), dataset="ds", metadata={"xsec": xsec}), constituents="pfnano",
                       luminosity=lumi)
    jets = out["jets"]
    with uproot.open(scaled) as f:
        gen = dict(zip(f["Events"]["event"].array(library="np"), f["Events"]["genWeight"].array(library="np")))
    expected = np.array([gen[e] for e in ak.to_numpy(jets.event)], dtype=np.float64) * xsec * lumi / 40.0
    np.testing.assert_allclose(ak.to_numpy(jets.weight), expected, rtol=1e-12)
    assert not np.allclose(expected, 1.0)
    assert out["hists"]["pt"].sum().value == pytest.approx(expected.sum(), rel=1e-12)
    data = process_file(InputFile(str(scaled), dataset="ds", metadata={"isData": True}), constituents="pfnano")
    assert np.all(ak.to_numpy(data["jets"].weight) == 1.0)
    bare = process_file(stored_file, constituents="pfnano")  # no cross-section: the bare generator weight
    assert np.all(ak.to_numpy(bare["jets"].weight) == 1.0)  # this sample's genWeight is 1


def test_pt_binned_samples_stitch_by_cross_section(pfnano_file, tmp_path):
    """Two samples of one process with different sizes (sum of weights) give the same weighted yield per pb."""
    small = write_stored_layout(pfnano_file, tmp_path / "small.root", runs_sumw=10.0)
    large = write_stored_layout(pfnano_file, tmp_path / "large.root", runs_sumw=1000.0)
    y_small = process_file(InputFile(str(small), dataset="a", metadata={"xsec": 2.0}), constituents="pfnano")
    y_large = process_file(InputFile(str(large), dataset="b", metadata={"xsec": 200.0}), constituents="pfnano")
    h_small, h_large = y_small["hists"]["pt"].values(), y_large["hists"]["pt"].values()
    np.testing.assert_allclose(h_small, h_large, rtol=1e-12)
    assert h_small.sum() > 0


@pytest.mark.parametrize("metadata, message", [({"xsec": -1.0}, "positive cross-section"),
                                               ({"xsec": "1 pb"}, "positive cross-section"),
                                               ({"xsec": 1.0, "sumw": 0.0}, "no positive sum of generator weights")])
def test_bad_weight_metadata_is_named(metadata, message):
    with pytest.raises(DataError, match=message):
        event_weights({"dataset": "ds", **metadata}, np.ones(3), luminosity=1.0)


def test_lumi_mask_and_triggers_select_collision_events(pfnano_file, tmp_path):
    path = write_stored_layout(pfnano_file, tmp_path / "data.root", lumi_blocks=np.arange(101, 111))
    with uproot.open(path) as f:
        ev = f["Events"].arrays(["run", "luminosityBlock", "event", "HLT_AK8PFHT900_TrimMass50", "HLT_AK8PFJetFwd40"],
                                library="np")
    golden = tmp_path / "golden.json"  # certified: sections 101-103 and 106-107 of the run
    golden.write_text(json.dumps({str(int(ev["run"][0])): [[101, 103], [106, 107]], "999999": [[1, 1000]]}))
    lumi = ev["luminosityBlock"]
    in_mask = ((lumi >= 101) & (lumi <= 103)) | ((lumi >= 106) & (lumi <= 107))
    fired = ev["HLT_AK8PFHT900_TrimMass50"] | ev["HLT_AK8PFJetFwd40"]
    assert in_mask.sum() == 5 and 0 < (in_mask & fired).sum() < 5 and (in_mask & ev["HLT_AK8PFJetFwd40"]).any()
    inp = InputFile(str(path), dataset="data", metadata={"isData": True})
    out = process_file(inp, constituents="pfnano", lumi_mask=str(golden), triggers=["HLT_AK8PFHT900_TrimMass50", "AK8PFJetFwd40"])
    flow = out["cutflow"]
    assert flow["events_read"] == 10 and flow["events_lumi_mask"] == int(in_mask.sum())
    assert flow["events_trigger"] == int((in_mask & fired).sum())
    assert flow["events_selected"] + flow["events_rejected"] == 10
    assert set(ak.to_numpy(out["jets"].event)) <= set(ev["event"][in_mask & fired])
    mc = process_file(InputFile(str(path), dataset="mc"), constituents="pfnano", lumi_mask=str(golden))  # no mask
    assert mc["cutflow"]["events_lumi_mask"] == 10
    assert JetProcessor(JetProcessorConfig(lumi_mask=str(golden))).settings_extra()["lumi_mask_sha1"]
    with pytest.raises(DataError, match="trigger branch HLT_NoSuchPath is missing"):
        process_file(inp, constituents="pfnano", triggers=["NoSuchPath"])
    with pytest.raises(ConfigError, match="lumi_mask: .*missing.json"):
        JetProcessor(JetProcessorConfig(lumi_mask=str(tmp_path / "missing.json")))


def test_cli_fileset_with_max_chunks(pfnano_file, stored_file, tmp_path, dask_client, capsys):
    from hepscale.jets.dataset import read_jets
    from hepscale.process import main

    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({
        "QCD_2018": {"files": {str(pfnano_file): "Events"}, "metadata": {"xsec": 0.33}},
        "QCD_2017": {"files": {str(stored_file): "Events"}, "metadata": {"xsec": 0.33, "campaign": "UL17"}},
    }))
    common = ["--scheduler", dask_client.scheduler.address, "--constituents", "pfnano", "--no-progress", "--no-plot"]
    assert main([str(fileset), "--output", str(tmp_path / "out"), "--chunksize", "3", "--max-chunks", "2",
                 *common]) == 0
    prov = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert [(i["dataset"], i["layout"]) for i in prov["inputs"]] == [("QCD_2018", "pfnano"),
                                                                     ("QCD_2017", "pfnano-stored")]
    assert prov["inputs"][1]["metadata"] == {"xsec": 0.33, "campaign": "UL17"}
    assert prov["cutflow"]["QCD_2018"]["events_read"] == prov["cutflow"]["QCD_2017"]["events_read"] == 6
    jets = read_jets(tmp_path / "out" / "jets.parquet")
    np.testing.assert_allclose(ak.to_numpy(jets.weight), 0.33 / 10.0)  # genWeight 1, sumw 10, lumi 1 pb^-1
    fileset.write_text(json.dumps({"QCD": {"files": {str(pfnano_file): "Events;1x"}}}))
    assert main([str(fileset), "--output", str(tmp_path / "bad"), *common]) == 2
    err = capsys.readouterr().err
    assert str(pfnano_file) in err and "no TTree 'Events;1x'" in err
    fileset.write_text("{not json")
    assert main([str(fileset), "--output", str(tmp_path / "bad2"), *common]) == 2
    assert f"fileset {fileset}: not a readable JSON file" in capsys.readouterr().err


def test_cli_site_profile_errors_are_named(pfnano_file, tmp_path, capsys):
    """--site: an unknown profile or an unknown key stops with 2 before any worker job is requested."""
    from hepscale.process import main

    args = [str(pfnano_file), "--no-progress", "--no-plot", "--site"]
    assert main([*args, "no-such-site", "--output", str(tmp_path / "a")]) == 2
    assert "site profile 'no-such-site' not found" in capsys.readouterr().err
    profile = tmp_path / "mysite.yaml"
    profile.write_text("name: mysite\ndask_workers: {request_cpus: 1}\n")
    assert main([*args, str(profile), "--output", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "dask_workers" in err and str(profile) in err


def test_resume_never_reuses_chunks_of_another_cross_section(stored_file, tmp_path, dask_client):
    """The fileset metadata decides the weights: a resumed run with a new xsec redoes the chunks of the old one."""
    from hepscale.jets.dataset import read_jets
    from hepscale.jets.processing import process_files, run_chunk, store_result

    processor = JetProcessor(JetProcessorConfig(constituents="pfnano"))

    def inputs(xsec):
        return [InputFile(str(stored_file), dataset="qcd", metadata={"xsec": xsec})]

    def chunks(xsec):
        return make_chunks([check_file(f, constituents="pfnano") for f in inputs(xsec)], chunksize=4)

    def run(xsec, out):
        return process_files(inputs(xsec), out, processor=processor, client=dask_client, chunksize=4,
                             progress=False, plot=False)

    run(3.0, tmp_path / "fresh")
    parts = tmp_path / "resumed" / ".parts"  # a run with xsec 1 stopped after its first chunk
    parts.mkdir(parents=True)
    store_result(parts, run_chunk(chunks(1.0)[0], processor))
    resumed = run(3.0, tmp_path / "resumed")
    assert resumed["chunks"]["cached"] == 0
    w_fresh = ak.to_numpy(read_jets(tmp_path / "fresh" / "jets.parquet").weight)
    np.testing.assert_array_equal(ak.to_numpy(read_jets(tmp_path / "resumed" / "jets.parquet").weight), w_fresh)
    parts.mkdir()  # the same settings are reused
    store_result(parts, run_chunk(chunks(3.0)[0], processor))
    (tmp_path / "resumed" / "jets.parquet").unlink()
    assert run(3.0, tmp_path / "resumed")["chunks"]["cached"] == 1
