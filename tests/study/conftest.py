from __future__ import annotations

from pathlib import Path

import pytest
from _study_setup import make_jets

from hepscale.jets.dataset import write_jets


@pytest.fixture(scope="module")
def jets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jets") / "jets.parquet"
    write_jets(path, make_jets(600, seed=3))
    return path
