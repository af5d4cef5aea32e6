from __future__ import annotations

import json
import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
from _synthetic import random_jets, tiny_generation_run, token_dataset

from hepscale.config import load_config
from hepscale.errors import EXIT_CHECKPOINT
from hepscale.jets.dataset import build_jets, read_jets, read_metadata
from hepscale.models.gpt import GPT, GPTConfig, KVCache
from hepscale.models.sampling import (
    generate,
    jet_log_likelihood,
    load_run,
    log_likelihood,
)
from hepscale.sample import main
from hepscale.tokens.tokenizer import Tokenizer, TokenizerConfig
from hepscale.train import CheckpointError, TrainConfig, train


def make_jets(n: int, *, seed: int = 0, n_max: int = 20) -> ak.Array:
    return random_jets(n, seed=seed, n_max=n_max)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sample")
    token_dataset(base, n=200, seed=7, n_max=20)
    return tiny_generation_run(base, n_layer=2, d_model=32, steps=30, warmup_steps=3)


def test_kv_cache_sampling_equals_recompute(run_dir: Path) -> None:
    model, tok, _ = load_run(run_dir)
    kw = {"start": tok.start, "stop": tok.stop, "pad": tok.pad, "batch": 16, "seed": 3, "progress": False}
    a = generate(model, 40, use_cache=True, **kw)
    b = generate(model, 40, use_cache=False, **kw)
    assert len(a) == 40 and all(np.array_equal(x, y) for x, y in zip(a, b))
    c = generate(model, 40, use_cache=True, **{**kw, "seed": 4})
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    again = generate(model, 40, use_cache=True, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a, again))


def test_sequences_are_well_formed(run_dir: Path) -> None:
    model, tok, _ = load_run(run_dir)
    seqs = generate(model, 64, start=tok.start, stop=tok.stop, pad=tok.pad, batch=20, seed=1, top_k=20, progress=False)
    T = model.cfg.block_size
    n_stopped = 0
    for s in seqs:
        assert s[0] == tok.start and 2 <= len(s) <= T + 1
        body = s[1:-1] if s[-1] == tok.stop else s[1:]
        assert len(body) >= 1 and np.all(body < tok.n_bins)  # no special token inside, at least one constituent
        n_stopped += int(s[-1] == tok.stop)
    assert n_stopped > 32  # the trained model ends most jets itself (training jets have < 22 constituents)


def test_first_token_frequencies_follow_the_model() -> None:
    torch.manual_seed(0)
    tok = Tokenizer(TokenizerConfig(n_pt=2, n_eta=2, n_phi=2))  # 8 constituent tokens + pad, start, stop
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=4, n_layer=1, n_head=2, d_model=16, pad_token=tok.pad)
    model = GPT(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(60.0)  # make the distribution far from uniform
        logits, _ = model(torch.tensor([[tok.start]]))
    p = logits[0, -1].clone()
    p[[tok.pad, tok.start, tok.stop]] = float("-inf")  # pad/start never drawn, stop not first
    p = torch.softmax(p, -1).numpy()
    n = 6000
    seqs = generate(model, n, start=tok.start, stop=tok.stop, pad=tok.pad, batch=2000, seed=0, progress=False)
    freq = np.bincount([s[1] for s in seqs], minlength=tok.vocab_size) / n
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3)
    assert p.max() > 0.3  # the check above is not trivially satisfied by a flat distribution


def test_log_likelihood_equals_stepwise_sum(run_dir: Path) -> None:
    model, tok, _ = load_run(run_dir)
    jets = make_jets(12, seed=11)
    tokens, offsets = tok.encode_jets(jets)
    seqs = [tokens[offsets[i] : offsets[i + 1]].astype(np.int64) for i in range(12)]
    ll = log_likelihood(model, seqs, pad=tok.pad, batch=5)
    ll_one = log_likelihood(model, seqs, pad=tok.pad, batch=1)  # no padding at all
    np.testing.assert_allclose(ll, ll_one, rtol=1e-5)
    for i in (0, 5, 11):  # sum of log-softmax probabilities, one position at a time with the KV cache
        s = torch.from_numpy(seqs[i])[None]
        cache = KVCache(model.cfg, 1)
        total = 0.0
        with torch.no_grad():
            for t in range(len(seqs[i]) - 1):
                logits, _ = model(s[:, t : t + 1], cache=cache)
                total += torch.log_softmax(logits[0, -1].double(), -1)[s[0, t + 1]].item()
        assert ll[i] == pytest.approx(total, rel=1e-5)
    np.testing.assert_allclose(jet_log_likelihood(run_dir, jets, batch=7), ll, rtol=1e-5)
    assert np.all(ll < 0)


def test_cli_writes_jet_dataset(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "samples.parquet"
    assert main([str(run_dir), "--n", "25", "--batch", "10", "--seed", "5", "--top-k", "30", "--output", str(out)]) == 0
    jets = read_jets(out)
    assert len(jets) == 25
    meta = read_metadata(out)
    assert meta["seed"] == 5 and meta["top_k"] == 30 and meta["step"] == 30
    # same observables as jets built from the decoded constituents with the shared implementation
    model, tok, _ = load_run(run_dir)
    seqs = generate(model, 25, start=tok.start, stop=tok.stop, pad=tok.pad, batch=10, seed=5, top_k=30, progress=False)
    ref = build_jets(tok.decode_constituent_array(seqs))
    for name in ("mass", "tau21", "tau32", "d2", "n_constituents"):
        np.testing.assert_allclose(ak.to_numpy(jets[name]), ak.to_numpy(ref[name]), rtol=1e-12)
    ll_path = tmp_path / "ll.npy"
    assert main([str(run_dir), "--log-likelihood", str(out), "--output", str(ll_path)]) == 0
    assert np.load(ll_path).shape == (25,)
    assert main([str(tmp_path / "nowhere"), "--n", "3", "--output", str(out)]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_every_sample_ends_with_stop_within_the_block() -> None:
    """At the last position of the block only stop may be drawn: every sample is a sequence the model can score."""
    torch.manual_seed(1)
    tok = Tokenizer(TokenizerConfig(n_pt=2, n_eta=2, n_phi=2))
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=5, n_layer=1, n_head=2, d_model=16, pad_token=tok.pad)
    model = GPT(cfg).eval()  # untrained: stop is about as likely as each of the 8 constituent tokens
    seqs = generate(model, 200, start=tok.start, stop=tok.stop, pad=tok.pad, batch=50, seed=2, progress=False)
    assert all(s[-1] == tok.stop and 3 <= len(s) <= 6 for s in seqs)
    assert sum(len(s) == 6 for s in seqs) > 50  # many reach the end of the block, where the stop is forced
    assert np.all(np.isfinite(log_likelihood(model, seqs, pad=tok.pad, batch=64)))


def test_checkpoint_of_another_run_is_refused(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = run_dir.parent / "tokens"
    other = tmp_path / "other"
    cfg = load_config(TrainConfig, base={
        "model": {"size": "custom", "n_layer": 1, "n_head": 2, "d_model": 32},
        "data": {"tokens": str(tokens), "seq_len": 20, "batch_size": 16},
        "budget": {"steps": 10}, "eval": {"every": 5, "jets": 16}, "device": "cpu", "stop_after_steps": 2,
    })
    assert train(cfg, other, progress=False) == EXIT_CHECKPOINT
    # an unfinished run (no result.json): its run id comes from config.yaml, and its own checkpoint samples
    assert main([str(other), "--n", "4", "--output", str(tmp_path / "other.parquet")]) == 0
    # the checkpoint of another run in this run's folder: the same vocabulary, another model and run id
    mixed = tmp_path / "mixed"
    shutil.copytree(run_dir, mixed)
    shutil.copyfile(other / "checkpoints" / "ckpt.pt", mixed / "checkpoints" / "ckpt.pt")
    assert main([str(mixed), "--n", "4", "--output", str(tmp_path / "mixed.parquet")]) == 2
    err = capsys.readouterr().err
    assert str(mixed / "checkpoints" / "ckpt.pt") in err and str(mixed / "result.json") in err and "belongs to run" in err
    assert not (tmp_path / "mixed.parquet").exists()
    with pytest.raises(CheckpointError, match="belongs to run"):
        load_run(run_dir, checkpoint=other / "checkpoints" / "ckpt.pt")


def test_tokenizer_with_another_binning_is_refused(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """tokenizer.json of the run folder with another binning and the same vocabulary: the tokens would
    decode to other constituents."""
    rebinned = tmp_path / "rebinned"
    shutil.copytree(run_dir, rebinned)
    desc = json.loads((rebinned / "tokenizer.json").read_text())
    desc["config"]["pt_max"] = 2 * desc["config"]["pt_max"]
    (rebinned / "tokenizer.json").write_text(json.dumps(desc))
    assert Tokenizer.from_json(rebinned / "tokenizer.json").vocab_size == load_run(run_dir)[1].vocab_size
    assert main([str(rebinned), "--n", "4", "--output", str(tmp_path / "rebinned.parquet")]) == 2
    err = capsys.readouterr().err
    assert str(rebinned / "checkpoints" / "ckpt.pt") in err and str(rebinned / "tokenizer.json") in err
    assert "another binning" in err
