from __future__ import annotations

import shutil

import awkward as ak
import numpy as np
import pytest

from hepscale.events.pythia import write_nanoaod
from hepscale.jets.dataset import read_jets, read_metadata
from hepscale.jets.processing import (
    ProcessingError,
    check_file,
    make_chunks,
    process_files,
    run_chunk,
)
from hepscale.process import main
from processors import JetProcessor, JetProcessorConfig


def write_events(path, pt_lists, *, nan_at=None):
    """A NanoAOD-like file with two back-to-back 'jets' of 20 particles per non-empty event."""
    rng = np.random.default_rng(0)
    records = []
    for n in pt_lists:
        eta = np.concatenate([rng.normal(0.2, 0.1, n // 2), rng.normal(-0.4, 0.1, n - n // 2)])
        phi = np.concatenate([rng.normal(0.5, 0.1, n // 2), rng.normal(0.5 + np.pi, 0.1, n - n // 2)])
        records.append({"pt": np.full(n, 40.0), "eta": eta, "phi": phi, "mass": np.zeros(n),
                        "pdgId": np.full(n, 211, dtype=np.int32), "charge": np.ones(n, dtype=np.int32)})
    pf = ak.zip({k: ak.Array([r[k] for r in records]) for k in records[0]})
    if nan_at is not None:
        flat = ak.to_numpy(ak.flatten(pf.pt)).copy()
        flat[nan_at] = np.nan
        pf = ak.with_field(pf, ak.unflatten(flat, ak.num(pf)), "pt")
    n_ev = len(pt_lists)
    events = {"run": np.ones(n_ev, dtype=np.uint32), "luminosityBlock": np.ones(n_ev, dtype=np.uint32),
              "event": np.arange(1, n_ev + 1, dtype=np.uint64), "genWeight": np.ones(n_ev, dtype=np.float32),
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


@pytest.mark.parametrize("kind", ["missing", "truncated", "text", "no_pfcands", "nan"])
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
    assert run_chunk(chunks[0], JetProcessor(config), str(parts))["status"] == "done"
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
    assert "constituent field(s) ['d0', 'dz'] are not in every input" in caplog.text
    jets = read_jets(tmp_path / "mix" / "jets.parquet")
    assert "d0" not in jets.constituents.fields and prov["constituent_fields"][-1] == "charge"
    # rows follow the input order, whatever order the workers finish in
    assert jets.source.to_list() == ["pfnano_qcd_pt1400to1800_2018mc_10ev.root"] * 20 + ["good.root"] * 6
