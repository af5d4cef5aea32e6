"""A study whose events lie on storage: ``root://`` URLs and coffea filesets in ``data.events``.

The study reads the sample CMS file through a real XRootD server on localhost (Debian's
``xrootd-server``, installed by ``.ci/run``; the tests skip and say so where the daemon is
missing); its HTCondor prepare job reads the URL from storage instead of transferring a file.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from _servers import xrootd_server
from _study_setup import tiny_dict, write_study

from hepscale.jets.dataset import read_jets
from hepscale.study import load_study, main
from hepscale.study.data import data_keys
from hepscale.study.prepare import prepare

os.environ.setdefault("XRD_CONNECTIONRETRY", "1")


@pytest.fixture(scope="module")
def xrootd(pfnano_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """``(URL of the sample file on a real XRootD server, local copy)``."""
    if shutil.which("xrootd") is None:
        pytest.skip("no xrootd daemon on PATH: install Debian's xrootd-server (as .ci/run does)")
    folder = tmp_path_factory.mktemp("storage")
    local = folder / "nano_2018.root"
    shutil.copy(pfnano_file, local)
    with xrootd_server(folder) as (base, export):
        yield f"{base}/{export / local.name}", local


def _events_study(output: Path, events: list[str], jets_file: Path) -> dict:
    data = tiny_dict(output, jets_file)
    data["data"].pop("jets")
    data["data"]["events"] = events
    return data


def _processor(config):
    from processors.jets import JetProcessor

    return JetProcessor(config)


def test_study_reads_events_from_xrootd(xrootd, tmp_path: Path, jets_file: Path, dask_client) -> None:
    """The same jets through root:// as from the local file; the URL is kept as given (study.yaml, data key)."""
    url, local = xrootd
    remote_study = load_study(write_study(tmp_path / "r.yaml", _events_study(tmp_path / "r", [url], jets_file)))
    local_study = load_study(write_study(tmp_path / "l.yaml", _events_study(tmp_path / "l", [str(local)], jets_file)))
    assert data_keys(remote_study)["jets"] != data_keys(local_study)["jets"]  # another source, another key
    jets = {}
    for name, study in (("r", remote_study), ("l", local_study)):
        paths = prepare(study, tmp_path / name, client=dask_client, progress=False, processor_factory=_processor)
        jets[name] = read_jets(tmp_path / name / paths["jets"])
    assert len(jets["r"]) == len(jets["l"]) > 0
    for field in ("pt", "eta", "phi", "mass", "tau32", "n_constituents"):
        np.testing.assert_array_equal(ak.to_numpy(jets["r"][field]), ak.to_numpy(jets["l"][field]))
    assert main(["condor", str(tmp_path / "r.yaml")]) == 0
    assert load_study(tmp_path / "r" / "study.yaml").data.events == [url]
    prepare_sub = (tmp_path / "r" / "prepare.sub").read_text()
    assert "transfer_input_files = study.yaml, train.yaml\n" in prepare_sub  # read from storage, not transferred
    assert not (tmp_path / "r" / "inputs").exists()


def test_fileset_of_urls_is_transferred_and_names_the_same_data(xrootd, tmp_path: Path, jets_file: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A fileset of URLs goes to the prepare job (its copy names the same data there); one that lists
    local files is refused by ``study condor``, naming the fileset and the file."""
    from hepscale.study.inputs import node_studies

    url, local = xrootd
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"ttbar": {"files": {url: "Events"}, "metadata": {"xsec": 831.8}}}))
    path = write_study(tmp_path / "s.yaml", _events_study(tmp_path / "out", [str(fileset)], jets_file))
    assert main(["condor", str(path)]) == 0
    out = tmp_path / "out"
    assert "inputs/events0-fileset.json" in (out / "prepare.sub").read_text()
    expected = data_keys(load_study(path))
    worker = tmp_path / "worker"  # the prepare job's scratch folder: its files, no fileset at the original path
    worker.mkdir()
    for name in ("study.yaml", "train.yaml"):
        shutil.copy(out / name, worker / name)
    (worker / "inputs").mkdir()
    shutil.copy(fileset, worker / "inputs" / "events0-fileset.json")
    fileset.unlink()
    monkeypatch.chdir(worker)
    there, identity = node_studies("study.yaml", [])
    assert there.data.events == ["inputs/events0-fileset.json"] and data_keys(identity) == expected
    monkeypatch.undo()

    relative = tmp_path / "local.json"
    relative.write_text(json.dumps({"ttbar": {"files": {local.name: "Events"}}}))
    shutil.copy(local, tmp_path / local.name)
    path = write_study(tmp_path / "t.yaml", _events_study(tmp_path / "out2", [url, str(relative)], jets_file))
    capsys.readouterr()
    assert main(["condor", str(path)]) == 2
    assert f"data.events[1]: fileset {relative} lists local file(s) ({tmp_path / local.name})" in capsys.readouterr().err
    assert main(["plan", str(path)]) == 0  # the local executor reads it


def test_fileset_identity_follows_its_contents(tmp_path: Path, pfnano_file: Path, jets_file: Path) -> None:
    """Two copies of one fileset (URLs) are the same data; another cross-section is another."""
    entry = {"files": {"root://storage.example//store/nano.root": "Events"}, "metadata": {"xsec": 1.0}}
    keys = []
    for name, xsec in (("a", 1.0), ("b", 1.0), ("c", 2.0)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "fileset.json").write_text(json.dumps({"qcd": {**entry, "metadata": {"xsec": xsec}}}))
        study = load_study(write_study(folder / "s.yaml", _events_study(folder / "out", [str(folder / "fileset.json")],
                                                                       jets_file)))
        keys.append(data_keys(study)["jets"])
    assert keys[0] == keys[1] != keys[2]
