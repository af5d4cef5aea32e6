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
