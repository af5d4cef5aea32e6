"""Fixtures of the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from _synthetic import token_dataset


@pytest.fixture(scope="session")
def tokens_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return token_dataset(tmp_path_factory.mktemp("tok"), n=240, seed=5)

