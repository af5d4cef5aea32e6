"""Fixtures of the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from _training import make_jets

from hepscale.jets.dataset import write_jets
from hepscale.tokens.tokenizer import TokenizerConfig, tokenize_dataset


@pytest.fixture(scope="session")
def tokens_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tok")
    write_jets(base / "jets.parquet", make_jets(240, seed=5))
    tokenize_dataset(
        base / "jets.parquet", base / "tokens", config=TokenizerConfig(n_pt=8, n_eta=4, n_phi=4, max_constituents=22)
    )
    return base / "tokens"

