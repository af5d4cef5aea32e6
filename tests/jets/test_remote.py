"""Remote inputs of ``hepscale process``: a real XRootD server and an HTTP server on localhost.

The XRootD tests need the ``xrootd`` daemon (Debian package ``xrootd-server``, installed by
``.ci/run``) and ``fsspec-xrootd``; where the daemon is missing they skip and say so.
"""

from __future__ import annotations

import os
import shutil

import awkward as ak
import numpy as np
import pytest
from _pfnano import raw_pt_differences, write_stored_layout
from _servers import free_port, http_server, xrootd_server

from hepscale.jets.dataset import read_jets
from hepscale.jets.inputs import check_file
from hepscale.jets.processing import ProcessingError, process_files
from processors.jets import JetProcessor, JetProcessorConfig

# a refused connection fails after one try, not after the XRootD client's default retries (set before it loads)
os.environ.setdefault("XRD_CONNECTIONRETRY", "1")
os.environ.setdefault("XRD_CONNECTIONWINDOW", "5")

needs_xrootd = pytest.mark.skipif(shutil.which("xrootd") is None,
                                  reason="no xrootd daemon on PATH: install Debian's xrootd-server (as .ci/run does)")


@pytest.fixture(scope="module")
def served(pfnano_file, tmp_path_factory):
    """A folder with the sample file in the newer and the older PFNano layout."""
    folder = tmp_path_factory.mktemp("served")
    shutil.copy(pfnano_file, folder / "pfnano_2018.root")
    write_stored_layout(pfnano_file, folder / "pfnano_2017.root")
    return folder


@pytest.fixture(scope="module")
def xrootd(served):
    """``(root://localhost:PORT/, served folder)``: the sample files behind a real XRootD server."""
    if shutil.which("xrootd") is None:
        pytest.skip("no xrootd daemon on PATH: install Debian's xrootd-server (as .ci/run does)")
    with xrootd_server(served) as server:
        yield server


def _process(inputs, out, client, **kwargs):
    return process_files(inputs, out, processor=JetProcessor(JetProcessorConfig(constituents="pfnano")),
                         client=client, progress=False, plot=False, **kwargs)


@needs_xrootd
def test_stored_constituents_over_xrootd_reproduce_the_raw_fatjet_pt(served, xrootd, tmp_path, dask_client):
    """The older PFNano layout read through root:// gives the jets of the local file: raw FatJet pT within 0.5%."""
    base, export = xrootd
    local = served / "pfnano_2017.root"
    url = f"{base}/{export / local.name}"
    check = check_file(url, constituents="pfnano")
    assert check.error is None and check.layout == "pfnano-stored" and check.entries == 10
    prov = _process([url], tmp_path / "remote", dask_client)
    assert prov["inputs"][0]["path"] == url and prov["inputs"][0]["layout"] == "pfnano-stored"
    remote = read_jets(tmp_path / "remote" / "jets.parquet")
    diff = raw_pt_differences(local, remote)
    assert len(remote) == 20 and np.median(diff) < 5e-3 and diff.max() < 1e-2
    _process([local], tmp_path / "local", dask_client)
    here = read_jets(tmp_path / "local" / "jets.parquet")
    for name in ("pt", "eta", "phi", "mass", "tau32", "weight"):
        np.testing.assert_array_equal(ak.to_numpy(remote[name]), ak.to_numpy(here[name]))


@needs_xrootd
def test_missing_remote_file_and_refused_connection_are_named(served, xrootd, tmp_path, dask_client):
    base, export = xrootd
    good = f"{base}/{export / 'pfnano_2018.root'}"
    missing = f"{base}/{export / 'no_such_file.root'}"
    refused = f"root://localhost:{free_port()}//store/mc/nano.root"
    for url in (missing, refused):
        with pytest.raises(ProcessingError) as err:
            _process([good, url], tmp_path / "out", dask_client)
        assert url in str(err.value) and "--skip-bad-files" in str(err.value)
    prov = _process([good, missing, refused], tmp_path / "skip", dask_client, skip_bad_files=True)
    assert [i["path"] for i in prov["inputs"]] == [good]
    assert [s["path"] for s in prov["skipped_files"]] == [missing, refused]
    assert "no such file" in prov["skipped_files"][0]["reason"].lower()
    assert prov["n_jets"] == 20


def test_https_style_inputs_are_read_over_http(served, tmp_path, dask_client):
    """http(s):// URLs go through fsspec's HTTP file system with byte ranges, as from a web server or XCache."""
    with http_server(served) as base:
        url = f"{base}pfnano_2018.root"
        prov = _process([url], tmp_path / "http", dask_client)
        missing = f"{base}nope.root"
        assert str(missing) in check_file(missing).error
    assert prov["inputs"][0]["path"] == url and prov["inputs"][0]["layout"] == "pfnano"
    jets = read_jets(tmp_path / "http" / "jets.parquet")
    assert len(jets) == 20 and np.median(raw_pt_differences(served / "pfnano_2018.root", jets)) < 5e-3
