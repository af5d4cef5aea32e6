"""The generation task's data: padded jet batches (:class:`hepscale.tasks.generation.trainer.JetBatcher`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hepscale.tokens.tokenizer import load_tokens
from hepscale.tasks.generation.trainer import JetBatcher


def test_batcher_epochs_visit_each_jet_once(tokens_dir: Path) -> None:
    data, tok = load_tokens(tokens_dir, "train")
    b = JetBatcher(data, n_jets=10, seq_len=24, pad=tok.pad, seed=3)
    ids = b.next_ids(25)  # 2.5 epochs
    assert sorted(ids[:10]) == list(range(10)) and sorted(ids[10:20]) == list(range(10))
    assert not np.array_equal(ids[:10], ids[10:20])  # a new permutation every epoch
    assert b.state() == {"epoch": 2, "cursor": 5}
    c = JetBatcher(data, n_jets=10, seq_len=24, pad=tok.pad, seed=3)
    c.load_state({"epoch": 1, "cursor": 3})
    np.testing.assert_array_equal(c.next_ids(4), ids[13:17])
    x, y, n = b.make_batch(np.array([0, 1]))
    seq0 = data.sequence(0)[:25]
    assert n == min(len(data.sequence(0)), 25) + min(len(data.sequence(1)), 25)
    np.testing.assert_array_equal(x[0, : len(seq0) - 1], seq0[:-1])
    np.testing.assert_array_equal(y[0, : len(seq0) - 1], seq0[1:])
    assert np.all(y[0, len(seq0) - 1 :] == tok.pad)
