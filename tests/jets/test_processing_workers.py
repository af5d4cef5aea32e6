"""Workers that share no folder with the client: chunk results come back through dask, not through files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import pytest

from hepscale.jets.dataset import read_jets, read_metadata
from hepscale.jets.histograms import read_histograms
from hepscale.jets.processing import process_files
from processors import JetProcessor

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def isolated_workers(tmp_path):
    """A scheduler and two ``dask worker`` processes, each started in its own new, empty folder."""
    from dask.distributed import Client, LocalCluster

    folders = [tmp_path / f"worker_{i}" for i in range(2)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None, processes=True) as cluster:
        procs = []
        try:
            for folder in folders:
                folder.mkdir()
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address, "--nworkers", "1",
                     "--nthreads", "1", "--no-nanny", "--no-dashboard", "--local-directory", str(folder / "scratch")],
                    cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            with Client(cluster) as client:
                client.wait_for_workers(2, timeout=120)
                yield client, folders
        finally:
            for proc in procs:
                proc.terminate()
            deadline = time.monotonic() + 30
            for proc in procs:
                try:
                    proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def test_workers_without_the_clients_folder_give_the_same_dataset(isolated_workers, generated_samples, tmp_path,
                                                                  dask_client, monkeypatch):
    client, worker_folders = isolated_workers
    inputs = [generated_samples["ttbar"], generated_samples["qcd"]]
    reference = process_files(inputs, tmp_path / "reference", processor=JetProcessor(), client=dask_client,
                              chunksize=150, progress=False, plot=False)
    client_folder = tmp_path / "client"
    client_folder.mkdir()
    monkeypatch.chdir(client_folder)
    prov = process_files(inputs, "out", processor=JetProcessor(), client=client, chunksize=150, progress=False,
                         plot=False)
    assert {w["host"] for w in client.scheduler_info()["workers"].values()} == {"127.0.0.1"}
    assert len(client.scheduler_info()["workers"]) == 2
    out = client_folder / "out"
    a, b = read_jets(tmp_path / "reference" / "jets.parquet"), read_jets(out / "jets.parquet")
    assert len(b) == reference["n_jets"] > 0
    assert ak.array_equal(a, b)  # every field, constituents included, row by row
    assert prov["cutflow"] == reference["cutflow"] and prov["inputs"] == reference["inputs"]
    assert read_metadata(out / "jets.parquet")["cutflow"] == prov["cutflow"]
    ha, hb = read_histograms(tmp_path / "reference" / "histograms.json"), read_histograms(out / "histograms.json")
    assert ha.keys() == hb.keys() and all(ha[ds][n] == hb[ds][n] for ds in ha for n in ha[ds])
    assert not (out / ".parts").exists()
    # the workers ran in their own folders and left nothing of the output there
    for folder in worker_folders:
        left = [p.relative_to(folder) for p in folder.rglob("*")
                if p.suffix in {".parquet", ".arrow", ".json", ".root"} or p.name in {"out", ".parts"}]
        assert left == [], f"{folder}: {left}"
