from __future__ import annotations

import os
import pickle
import shutil

import awkward as ak
import numpy as np
import pyarrow as pa
import pytest

from hepscale.events.pythia import write_nanoaod
from hepscale.jets.dataset import (
    CONSTITUENT_FIELDS,
    OPTIONAL_CONSTITUENT_FIELDS,
    read_jets,
    read_metadata,
)
from hepscale.jets.histograms import read_histograms
from hepscale.jets.processing import (
    PFCANDS_OPTIONAL_FIELDS,
    ProcessingError,
    check_file,
    make_chunks,
    process_files,
    run_chunk,
    store_result,
)
from hepscale.process import main
from processors import JetProcessor, JetProcessorConfig


def write_events(path, pt_lists, *, nan_at=None, gen_weight=None):
    """A NanoAOD-like file with two back-to-back 'jets' of 20 particles per non-empty event.

    ``pt_lists``: particles per event (may be empty: a file with no events); ``nan_at``: flat
    index of a PF candidate whose pT is NaN; ``gen_weight``: per-event genWeight (default 1).
    """
    rng = np.random.default_rng(0)
    columns = {"pt": [], "eta": [], "phi": []}
    for n in pt_lists:
        columns["eta"].append(np.concatenate([rng.normal(0.2, 0.1, n // 2), rng.normal(-0.4, 0.1, n - n // 2)]))
        columns["phi"].append(np.concatenate([rng.normal(0.5, 0.1, n // 2), rng.normal(0.5 + np.pi, 0.1, n - n // 2)]))
        columns["pt"].append(np.full(n, 40.0))
    counts = np.asarray(pt_lists, dtype=np.int64)
    flat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in columns.items()}
    n_total = int(counts.sum())
    flat["mass"] = np.zeros(n_total)
    flat["pdgId"] = np.full(n_total, 211, dtype=np.int32)
    flat["charge"] = np.ones(n_total, dtype=np.int32)
    if nan_at is not None:
        flat["pt"][nan_at] = np.nan
    pf = ak.zip({k: ak.unflatten(v, counts) for k, v in flat.items()})
    n_ev = len(pt_lists)
    weights = np.ones(n_ev) if gen_weight is None else np.asarray(gen_weight, dtype=np.float64)
    events = {"run": np.ones(n_ev, dtype=np.uint32), "luminosityBlock": np.ones(n_ev, dtype=np.uint32),
              "event": np.arange(1, n_ev + 1, dtype=np.uint64), "genWeight": weights.astype(np.float32),
              "PFCands": pf}
    return write_nanoaod(path, events, {"test": True})


@pytest.fixture()
def good_file(tmp_path):
    return write_events(tmp_path / "good.root", [20, 0, 20, 20, 0])


def test_empty_events_are_counted(good_file, tmp_path, dask_client):
    prov = process_files([good_file], tmp_path / "out", processor=JetProcessor(), client=dask_client, progress=False, plot=False)
    flow = prov["cutflow"]["total"]
    assert flow["events_read"] == 5 and flow["events_no_candidates"] == 2
    assert flow["events_selected"] == 3 and flow["events_rejected"] == 2
    jets = read_jets(tmp_path / "out" / "jets.parquet")
    assert len(jets) == 6 and ak.all(jets.n_constituents == 10)
    assert jets.pt[0] == pytest.approx(400, rel=0.02)  # ten collinear-ish 40 GeV particles
    assert ak.all(jets.label == -1)  # no GenPart: unknown truth
    assert not (tmp_path / "out" / ".parts").exists()


@pytest.mark.parametrize("kind", ["missing", "truncated", "text", "no_pfcands", "nan", "nan_weight"])
def test_bad_files_are_named_and_skipped_on_request(kind, good_file, tmp_path, nanoaod_file, dask_client):
    bad = tmp_path / f"bad_{kind}.root"
    if kind == "truncated":
        data = good_file.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
        reason = "bad_truncated.root"
    elif kind == "text":
        bad.write_text("this is not a ROOT file\n")
        reason = "not a readable ROOT file"
    elif kind == "no_pfcands":
        shutil.copy(nanoaod_file, bad)
        reason = "lacks branch(es) PFCands_pt"
    elif kind == "nan":
        write_events(bad, [20, 20], nan_at=3)
        reason = "branch PFCands_pt has 1 non-finite value"
    elif kind == "nan_weight":  # a NaN weight would make NaN histograms
        write_events(bad, [20, 20], gen_weight=[1.0, np.nan])
        reason = "branch genWeight has 1 non-finite value"
    else:
        reason = "file does not exist"
    with pytest.raises(ProcessingError, match=str(bad.name)) as exc:
        process_files([good_file, bad], tmp_path / "stop", processor=JetProcessor(), client=dask_client, progress=False, plot=False)
    assert reason in str(exc.value) and "--skip-bad-files" in str(exc.value)
    prov = process_files([good_file, bad], tmp_path / "skip", processor=JetProcessor(), client=dask_client, progress=False, plot=False,
                         skip_bad_files=True)
    assert [s["path"] for s in prov["skipped_files"]] == [str(bad)]
    assert reason in prov["skipped_files"][0]["reason"]
    meta = read_metadata(tmp_path / "skip" / "jets.parquet")
    assert meta["skipped_files"] == prov["skipped_files"]  # the record travels with the dataset
    assert set(read_jets(tmp_path / "skip" / "jets.parquet").source.to_list()) == {"good.root"}
    assert prov["cutflow"]["total"]["events_read"] == 5


def test_all_files_bad_is_an_error(tmp_path, dask_client):
    with pytest.raises(ProcessingError, match="every file was skipped"):
        process_files([tmp_path / "a.root"], tmp_path / "out", processor=JetProcessor(), client=dask_client, skip_bad_files=True,
                      progress=False, plot=False)


def test_interrupted_run_resumes_from_finished_chunks(generated_samples, tmp_path, dask_client):
    inputs = [generated_samples["qcd"]]
    fresh = process_files(inputs, tmp_path / "fresh", processor=JetProcessor(), client=dask_client, chunksize=150, progress=False, plot=False)
    # a run that stopped after its first chunk left that chunk's outputs behind
    config = JetProcessorConfig()
    chunks = make_chunks([check_file(p) for p in inputs], chunksize=150)
    parts = tmp_path / "resumed" / ".parts"
    parts.mkdir(parents=True)
    res = run_chunk(chunks[0], JetProcessor(config))
    assert res["status"] == "done"
    store_result(parts, res)  # what the client keeps of a finished chunk
    resumed = process_files(inputs, tmp_path / "resumed", processor=JetProcessor(), client=dask_client, chunksize=150, progress=False,
                            plot=False)
    assert {k: resumed["chunks"][k] for k in ("total", "cached", "chunksize")} == {"total": 3, "cached": 1, "chunksize": 150}
    assert 0 < resumed["chunks"]["task_seconds"] < fresh["chunks"]["task_seconds"]  # the cached chunk was not redone
    assert resumed["cutflow"] == fresh["cutflow"]
    a = read_jets(tmp_path / "fresh" / "jets.parquet")
    b = read_jets(tmp_path / "resumed" / "jets.parquet")
    assert ak.to_list(a[["pt", "mass", "tau32", "event"]]) == ak.to_list(b[["pt", "mass", "tau32", "event"]])


def test_cli_process_with_config(good_file, tmp_path, capsys):
    cfg = tmp_path / "sel.yaml"
    cfg.write_text("jet_pt_min: 350.0\nmax_constituents: 4\n")
    assert main([str(good_file), "--output", str(tmp_path / "cli"), "--config", str(cfg), "--workers", "1",
                 "--no-progress", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "processed 5 events -> 6 jets" in out and "events_no_candidates" in out
    jets = read_jets(tmp_path / "cli" / "jets.parquet")
    assert ak.all(ak.num(jets.constituents) == 4) and ak.all(jets.n_constituents == 10)
    cfg.write_text("jet_pt_minimum: 350.0\n")
    assert main([str(good_file), "--output", str(tmp_path / "cli2"), "--config", str(cfg)]) == 2
    assert "unknown key(s) 'jet_pt_minimum'" in capsys.readouterr().err


def test_shipped_ak8_config_is_the_default():
    from pathlib import Path

    from hepscale.config import load_config

    path = Path(__file__).resolve().parents[2] / "configs" / "process" / "ak8.yaml"
    assert load_config(JetProcessorConfig, path) == JetProcessorConfig()


def test_existing_scheduler_address(good_file, tmp_path, dask_client, capsys):
    address = dask_client.scheduler.address
    assert main([str(good_file), "--output", str(tmp_path / "sched"), "--scheduler", address, "--no-progress",
                 "--no-plot"]) == 0
    assert "processed 5 events -> 6 jets" in capsys.readouterr().out


def test_mixed_sources_keep_the_common_constituent_fields(good_file, pfnano_file, tmp_path, dask_client, caplog):
    prov = process_files([pfnano_file, good_file], tmp_path / "mix", processor=JetProcessor(), client=dask_client, progress=False, plot=False)
    assert "constituent field(s) ['d0', 'd0err', 'dz', 'dzerr'] are not in every input" in caplog.text
    jets = read_jets(tmp_path / "mix" / "jets.parquet")
    assert not set(OPTIONAL_CONSTITUENT_FIELDS) & set(jets.constituents.fields)
    assert prov["constituent_fields"] == list(CONSTITUENT_FIELDS)
    # rows follow the input order, whatever order the workers finish in
    assert jets.source.to_list() == ["pfnano_qcd_pt1400to1800_2018mc_10ev.root"] * 20 + ["good.root"] * 6


def test_pfnano_inputs_keep_the_displacement_and_its_uncertainty(pfnano_file, tmp_path, dask_client):
    """One definition of the optional fields; a PFNano file has all of them (PFCands_d0Err ...), and so do its jets."""
    assert tuple(PFCANDS_OPTIONAL_FIELDS) == OPTIONAL_CONSTITUENT_FIELDS == ("d0", "dz", "d0err", "dzerr")
    assert check_file(pfnano_file).optional_fields == OPTIONAL_CONSTITUENT_FIELDS
    prov = process_files([pfnano_file], tmp_path / "pf", processor=JetProcessor(), client=dask_client, progress=False,
                         plot=False)
    assert prov["constituent_fields"] == list(CONSTITUENT_FIELDS + OPTIONAL_CONSTITUENT_FIELDS)
    cons = read_jets(tmp_path / "pf" / "jets.parquet").constituents
    assert cons.fields == list(CONSTITUENT_FIELDS + OPTIONAL_CONSTITUENT_FIELDS)
    d0err, dzerr = ak.to_numpy(ak.flatten(cons.d0err)), ak.to_numpy(ak.flatten(cons.dzerr))
    track = ak.to_numpy(ak.flatten(cons.charge)) != 0
    track &= d0err != -1  # PFNano: -1 for candidates without track details
    assert np.all(d0err[~track] == -1) and np.all(dzerr[~track] == -1)
    assert np.all(d0err[track] > 0) and np.all(dzerr[track] > 0) and 0.001 < np.median(d0err[track]) < 0.1  # cm


def test_resume_never_reuses_a_chunk_of_other_settings(generated_samples, tmp_path, dask_client):
    inputs = [generated_samples["qcd"]]
    # an interrupted run with the default cut (pT > 300 GeV) left its first chunk behind
    chunks = make_chunks([check_file(p) for p in inputs], chunksize=150)
    parts = tmp_path / "out" / ".parts"
    parts.mkdir(parents=True)
    res = run_chunk(chunks[0], JetProcessor())
    assert res["status"] == "done"
    store_result(parts, res)
    old = ak.from_arrow(pa.ipc.open_file(res["table"]).read_all())
    assert ak.any(old.pt < 600) and ak.any(old.pt > 600)  # the stale part holds jets the new cut rejects
    high = JetProcessorConfig(jet_pt_min=600.0)
    prov = process_files(inputs, tmp_path / "out", processor=JetProcessor(high), client=dask_client, chunksize=150,
                         progress=False, plot=False)
    jets = read_jets(tmp_path / "out" / "jets.parquet")
    assert prov["chunks"]["cached"] == 0
    assert len(jets) > 0 and ak.all(jets.pt > 600)
    assert prov["config"]["jet_pt_min"] == 600.0
    assert read_metadata(tmp_path / "out" / "jets.parquet")["config"]["jet_pt_min"] == 600.0
    fresh = process_files(inputs, tmp_path / "fresh", processor=JetProcessor(high), client=dask_client, chunksize=150,
                          progress=False, plot=False)
    assert prov["cutflow"] == fresh["cutflow"] and prov["n_jets"] == len(jets)


def test_chunks_without_selected_jets_are_merged_and_counted(tmp_path, dask_client):
    # 40 particles of 40 GeV in the first event: two 800 GeV jets; 400 GeV jets in the others
    path = write_events(tmp_path / "hard.root", [40, 20, 20])
    prov = process_files([path], tmp_path / "out", processor=JetProcessor(JetProcessorConfig(jet_pt_min=600.0)),
                         client=dask_client, chunksize=1, progress=False, plot=False)
    jets = read_jets(tmp_path / "out" / "jets.parquet")
    assert jets.event.to_list() == [1, 1] and ak.all(jets.pt > 600)
    flow = prov["cutflow"]["total"]
    assert flow["events_read"] == 3 and flow["events_selected"] == 1 and flow["events_rejected"] == 2
    assert flow["jets_pt"] == flow["jets_selected"] == 2  # clustering keeps jets above the cut only
    assert prov["chunks"]["total"] == 3
    assert read_histograms(tmp_path / "out" / "histograms.json")["hard"]["pt"].sum().value == 2


def test_a_file_without_events_beside_a_good_one(good_file, tmp_path, dask_client):
    empty = write_events(tmp_path / "empty.root", [])
    prov = process_files([empty, good_file], tmp_path / "out", processor=JetProcessor(), client=dask_client,
                         progress=False, plot=False)
    jets = read_jets(tmp_path / "out" / "jets.parquet")
    assert len(jets) == 6 and set(jets.source.to_list()) == {"good.root"}
    assert prov["cutflow"]["empty"]["events_read"] == 0 and prov["cutflow"]["total"]["events_read"] == 5
    assert [i["entries"] for i in prov["inputs"]] == [0, 5] and prov["skipped_files"] == []
    # only empty inputs: an empty dataset with the same schema, not an error
    prov = process_files([empty], tmp_path / "only_empty", processor=JetProcessor(), client=dask_client,
                         progress=False, plot=False)
    nothing = read_jets(tmp_path / "only_empty" / "jets.parquet")
    assert len(nothing) == 0 and prov["n_jets"] == 0 and str(nothing.source.type) == "0 * string"


def test_the_same_file_twice_is_an_error_naming_it(good_file, tmp_path, dask_client, capsys, monkeypatch):
    monkeypatch.chdir(good_file.parent)
    with pytest.raises(ProcessingError, match=r"given more than once: .*good.root \(given 3 times"):
        process_files([good_file, "good.root", str(good_file)], tmp_path / "dup", processor=JetProcessor(),
                      client=dask_client, progress=False, plot=False)
    assert main([str(good_file), str(good_file), "--output", str(tmp_path / "cli"), "--no-progress", "--no-plot"]) == 2
    assert f"{good_file} (given 2 times" in capsys.readouterr().err
    assert not (tmp_path / "cli" / "jets.parquet").exists()


def test_a_file_failing_mid_way_leaves_the_inputs(good_file, tmp_path, dask_client):
    bad = write_events(tmp_path / "late_nan.root", [20, 20, 20, 20], nan_at=50)  # a NaN in the third event
    prov = process_files([good_file, bad], tmp_path / "out", processor=JetProcessor(), client=dask_client, chunksize=2,
                         progress=False, plot=False, skip_bad_files=True)
    assert [s["path"] for s in prov["skipped_files"]] == [str(bad)]
    assert "entries 2-4" in prov["skipped_files"][0]["reason"]
    assert [i["path"] for i in prov["inputs"]] == [str(good_file)]
    assert prov["entries"] == prov["cutflow"]["total"]["events_read"] == 5
    assert read_metadata(tmp_path / "out" / "jets.parquet")["inputs"] == prov["inputs"]
    assert set(read_jets(tmp_path / "out" / "jets.parquet").source.to_list()) == {"good.root"}


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_output_that_is_a_file_is_a_clear_error(where, good_file, tmp_path, dask_client, capsys):
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me\n")
    output = taken if where == "file" else taken / "jets"
    with pytest.raises(ProcessingError, match=rf"output folder {output} .*an existing file, not a folder"):
        process_files([good_file], output, processor=JetProcessor(), client=dask_client, progress=False, plot=False)
    assert main([str(good_file), "--output", str(output), "--no-progress", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert f"output folder {output}" in err and "Traceback" not in err
    assert taken.read_text() == "keep me\n"


class _Planted:
    """Unpickling this creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_parts_are_never_unpickled(good_file, tmp_path, dask_client, caplog):
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Planted(marker))
    fresh = process_files([good_file], tmp_path / "fresh", processor=JetProcessor(), client=dask_client, chunksize=3,
                          progress=False, plot=False)
    out = tmp_path / "out"
    parts = out / ".parts"
    parts.mkdir(parents=True)
    chunks = make_chunks([check_file(good_file)], chunksize=3)
    for c in chunks:  # finished chunks, then a pickle planted as each chunk's accumulator
        res = run_chunk(c, JetProcessor())
        assert res["status"] == "done"
        store_result(parts, res)
        (parts / f"{c.key}.pkl").write_bytes(payload)
    for acc in sorted(parts.glob("*.json"))[:1]:  # and in place of a JSON accumulator
        acc.write_bytes(payload)
    prov = process_files([good_file], out, processor=JetProcessor(), client=dask_client, chunksize=3, progress=False,
                         plot=False)
    assert not marker.exists()
    assert prov["cutflow"] == fresh["cutflow"] and prov["chunks"]["cached"] == len(chunks) - 1
    # the planted accumulator was redone, not loaded
    assert "its cached part was damaged" in caplog.text and "not readable JSON" in caplog.text
    assert not (out / "histograms.pkl").exists() and not (out / ".parts").exists()
    a = read_jets(tmp_path / "fresh" / "jets.parquet")
    b = read_jets(out / "jets.parquet")
    assert ak.to_list(a[["pt", "mass", "event"]]) == ak.to_list(b[["pt", "mass", "event"]])


def test_damaged_or_misplaced_jet_tables_are_redone(good_file, tmp_path, dask_client, caplog):
    fresh = process_files([good_file], tmp_path / "fresh", processor=JetProcessor(), client=dask_client, chunksize=2,
                          progress=False, plot=False)
    out = tmp_path / "out"
    parts = out / ".parts"
    parts.mkdir(parents=True)
    results = [run_chunk(c, JetProcessor()) for c in make_chunks([check_file(good_file)], chunksize=2)]
    for res in results:
        store_result(parts, res)
    tables = [parts / f"{res['key']}.arrow" for res in results]
    tables[0].write_bytes(tables[0].read_bytes()[:1000])  # cut short
    shutil.copy(tables[2], tables[1])  # another chunk's table in its place
    prov = process_files([good_file], out, processor=JetProcessor(), client=dask_client, chunksize=2, progress=False,
                         plot=False)
    assert prov["chunks"]["cached"] == 1 and prov["cutflow"] == fresh["cutflow"]
    assert "not a readable Arrow file" in caplog.text and f"made for key '{results[2]['key']}'" in caplog.text
    a, b = read_jets(tmp_path / "fresh" / "jets.parquet"), read_jets(out / "jets.parquet")
    assert ak.array_equal(a, b)


class _Masked:
    """A processor whose output depends on more than its config, e.g. on a luminosity mask's content."""

    def __init__(self, mask_hash):
        self.config = JetProcessorConfig()
        self.mask_hash = mask_hash

    def settings_extra(self):
        return {"lumi_mask_sha1": self.mask_hash}


def test_settings_key_includes_the_processors_settings_extra():
    from hepscale.jets._parts import settings_key

    assert settings_key(_Masked("aa")) == settings_key(_Masked("aa"))
    assert settings_key(_Masked("aa")) != settings_key(_Masked("ab"))

    class _Plain:  # no settings_extra: the config alone
        config = JetProcessorConfig()

    assert settings_key(_Plain()) not in {settings_key(_Masked("aa")), settings_key(_Masked("ab"))}
    bad = _Masked("aa")
    bad.settings_extra = lambda: ["not", "a", "mapping"]
    with pytest.raises(TypeError, match="settings_extra"):
        settings_key(bad)
