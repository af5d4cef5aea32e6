from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _shared_data_dir() -> Path:
    env = os.environ.get("HEPSCALE_SHARED_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of small real sample files (``../shared/data`` beside the project)."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.fail(f"sample data folder {path} not found (set HEPSCALE_SHARED_DATA to its location)")
    return path


@pytest.fixture(scope="session")
def pfnano_file(shared_data: Path) -> Path:
    return shared_data / "pfnano_qcd_pt1400to1800_2018mc_10ev.root"


@pytest.fixture(scope="session")
def jetclass_file(shared_data: Path) -> Path:
    return shared_data / "jetclass2_example_100jets.root"


@pytest.fixture(scope="session")
def nanoaod_file(shared_data: Path) -> Path:
    return shared_data / "nanoaod_2015_opendata_ttbar_200ev.root"


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Two CPU cores shared by dask workers and torch: one torch thread avoids OpenMP spin-waiting."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def generated_samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small ttbar and QCD samples from the embedded generator (seeded), made once per session."""
    from hepscale.events.pythia import GeneratorConfig, generate

    folder = tmp_path_factory.mktemp("generated")
    samples = {}
    for process, events, seed in (("ttbar", 400, 11), ("qcd", 400, 12)):
        samples[process] = generate(GeneratorConfig(process=process, events=events, seed=seed), folder / f"{process}.root")
    return samples


@pytest.fixture(scope="session")
def dask_client():
    """A real dask.distributed LocalCluster with 2 worker processes, shared by the session."""
    from hepscale.jets.cluster import local_cluster

    with local_cluster(2) as client:
        yield client


@pytest.fixture(scope="session")
def processed_samples(generated_samples: dict[str, Path], dask_client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated samples run through ``process_files`` on the dask LocalCluster."""
    from hepscale.jets.processing import process_files
    from processors.jets import JetProcessor

    out = tmp_path_factory.mktemp("processed")
    process_files(list(generated_samples.values()), out, processor=JetProcessor(), client=dask_client, chunksize=150, progress=False)
    return out
