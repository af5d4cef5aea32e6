from __future__ import annotations

import json
import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
from _synthetic import random_jets, tiny_generation_run, token_dataset

from hepscale import evaluate
from hepscale.config import load_config
from hepscale.devices import resolve_device
from hepscale.errors import EXIT_CHECKPOINT, ConfigError
from hepscale.jets.dataset import build_jets, read_jets, read_metadata
from hepscale.models import sampling
from hepscale.models.gpt import GPT, GPTConfig, KVCache
from hepscale.models.sampling import generate, log_likelihood
from hepscale.sample import main
from hepscale.tasks.generation.sampling import jet_log_likelihood, load_run
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
    """Finished sequences leave the batch in both decoders; the sequences stay equal token for token."""
    model, tok, _ = load_run(run_dir)
    kw = {"start": tok.start, "stop": tok.stop, "pad": tok.pad, "batch": 16, "seed": 3, "progress": False}
    a = generate(model, 40, use_cache=True, **kw)
    b = generate(model, 40, use_cache=False, **kw)
    assert len(a) == 40 and all(np.array_equal(x, y) for x, y in zip(a, b))
    # the batches hold sequences that finish at different steps, many before the end of the block
    for lo in range(0, 40, 16):
        lengths = {len(s) for s in a[lo : lo + 16]}
        assert len(lengths) > 3 and min(lengths) < model.cfg.block_size
    c = generate(model, 40, use_cache=True, **{**kw, "seed": 4})
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    again = generate(model, 40, use_cache=True, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a, again))
    # temperature and top-k go through the same draw in both decoders
    hot = {**kw, "temperature": 1.7, "top_k": 9}
    hot_a, hot_b = generate(model, 24, **hot), generate(model, 24, use_cache=False, **hot)
    assert all(np.array_equal(x, y) for x, y in zip(hot_a, hot_b))


@pytest.mark.parametrize("use_cache", [True, False])
def test_finished_sequences_leave_the_batch(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, use_cache: bool
) -> None:
    """Later steps compute the live sequences only; one KV cache, allocated once, serves every batch and step."""
    model, tok, _ = load_run(run_dir)
    caches: list[KVCache] = []
    steps: list[tuple[int, int | None, int | None, int | None]] = []

    class CountedCache(KVCache):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            caches.append(self)

    hidden = GPT.hidden

    def recording(model: GPT, idx: torch.Tensor, *, cache: KVCache | None = None, last_only: bool = False
                  ) -> torch.Tensor:
        h = hidden(model, idx, cache=cache, last_only=last_only)
        steps.append((idx.size(0), None if cache is None else cache.batch,
                      None if cache is None else cache.k.data_ptr(), None if cache is None else cache.v.data_ptr()))
        return h

    monkeypatch.setattr(sampling, "KVCache", CountedCache)
    monkeypatch.setattr(GPT, "hidden", recording)
    seqs = generate(model, 36, start=tok.start, stop=tok.stop, pad=tok.pad, batch=16, seed=3, progress=False,
                    use_cache=use_cache)
    T = model.cfg.block_size
    assert len(seqs) == 36
    assert all(s[0] == tok.start and s[-1] == tok.stop and 3 <= len(s) <= T + 1 for s in seqs)
    assert all(np.count_nonzero(s == tok.stop) == 1 and not np.any(s == tok.pad) for s in seqs)
    rows = [r for r, *_ in steps]
    assert max(rows) == 16 and min(rows) < 4  # the batch shrinks as its sequences finish
    assert len(steps) < T * 3  # three batches, and no step after the last sequence of a batch has finished
    if use_cache:
        assert len(caches) == 1 and caches[0].capacity == 16
        assert all(batch == r for r, batch, *_ in steps)  # the cache holds exactly the live rows
        assert {(k, v) for *_, k, v in steps} == {(caches[0].k.data_ptr(), caches[0].v.data_ptr())}
    else:
        assert caches == []


def test_kv_cache_keeps_rows_in_place() -> None:
    """KVCache.keep moves the kept rows to the front of the same buffers; decoding goes on as for those rows alone."""
    torch.manual_seed(4)
    cfg = GPTConfig(vocab_size=40, block_size=12, n_layer=2, n_head=2, d_model=16)
    model = GPT(cfg).eval()
    x = torch.randint(0, 40, (5, 12))
    keep = torch.tensor([0, 2, 4])
    with torch.no_grad():
        full, _ = model(x[keep])
        cache = KVCache(cfg, 5)
        ptrs = (cache.k.data_ptr(), cache.v.data_ptr())
        for t in range(6):
            model(x[:, t : t + 1], cache=cache)
        cache.keep(torch.tensor([0, 2, 4]))
        assert cache.batch == 3 and cache.pos == 6
        steps = [model(x[keep, t : t + 1], cache=cache)[0] for t in range(6, 9)]
        torch.testing.assert_close(torch.cat(steps, dim=1), full[:, 6:9], rtol=1e-5, atol=1e-5)
        cache.keep(torch.tensor([1]))  # again: row 1 of the three live ones, the sequence x[2]
        torch.testing.assert_close(model(x[2:3, 9:10], cache=cache)[0], full[1:2, 9:10], rtol=1e-5, atol=1e-5)
        assert (cache.k.data_ptr(), cache.v.data_ptr()) == ptrs and cache.k.shape[1] == 5
        with pytest.raises(ValueError, match="KV cache holding 1"):
            model(x[:2, 10:11], cache=cache)
        cache.reset(4)
        assert cache.pos == 0 and cache.batch == 4
        with pytest.raises(ValueError, match="does not fit"):
            cache.reset(6)


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_sampler_logits_equal_the_model_forward(pos_emb: str) -> None:
    """The sampler's own head (logits as (V, n)) gives the logits of GPT.forward, with and without a cache."""
    torch.manual_seed(5)
    cfg = GPTConfig(vocab_size=300, block_size=10, n_layer=2, n_head=2, d_model=16, pos_emb=pos_emb)
    model = GPT(cfg).eval()
    x = torch.randint(0, 300, (3, 10))
    buffer = torch.empty(300 * 3)
    with torch.no_grad():
        ref, _ = model(x[:, :7], last_only=True)
        got = sampling._output_head(model, model.hidden(x[:, :7], last_only=True)[:, 0], buffer)
        torch.testing.assert_close(got.t(), ref[:, -1], rtol=1e-5, atol=1e-5)
        assert got.data_ptr() == buffer.data_ptr()
        cache = KVCache(cfg, 3)
        for t in range(7):
            h = model.hidden(x[:, t : t + 1], cache=cache, last_only=True)[:, 0]
        torch.testing.assert_close(sampling._output_head(model, h, None).t(), ref[:, -1], rtol=1e-5, atol=1e-5)
        assert cache.pos == 7


@pytest.mark.parametrize(
    ("temperature", "top_k", "V"), [(1.0, None, 1000), (0.6, 40, 1000), (2.5, None, 256), (1.0, 3, 7)]
)
def test_two_level_draw_is_the_inverse_cdf(temperature: float, top_k: int | None, V: int) -> None:
    """The draw by vocabulary blocks picks the token of the float64 inverse CDF of softmax(logits / T), top-k."""
    g = torch.Generator().manual_seed(6)
    n = 6
    logits = torch.randn(V, n, generator=g) * 3
    banned = torch.tensor([0, V - 1])
    ref = logits.double().t() / temperature
    ref[:, banned] = float("-inf")
    if top_k is not None:
        ref[ref < torch.topk(ref, top_k, dim=1).values[:, -1:]] = float("-inf")
    cdf = torch.softmax(ref, dim=1).cumsum(dim=1)
    for u in torch.linspace(0.0005, 0.9995, 400, dtype=torch.float64):
        col = torch.full((n, 1), float(u), dtype=torch.float64)
        got = sampling._sample_next(logits.clone(), temperature=temperature, top_k=top_k, banned=banned, u=col)
        want = torch.searchsorted(cdf, col * cdf[:, -1:], right=True).squeeze(1)
        gap = (cdf - col * cdf[:, -1:]).abs().min(dim=1).values
        clear = gap > 1e-9  # away from a boundary of the CDF, where float32 and float64 may disagree
        assert torch.equal(got[clear], want[clear])
        assert not torch.isin(got, banned).any() and bool((got < V).all())
        if top_k is not None:
            assert bool((torch.isfinite(ref.gather(1, got[:, None]))).all())


@pytest.mark.parametrize("n", [1, 5, 31, 32, 40])
@pytest.mark.parametrize("V", [40, 70, 1024])
def test_column_max(n: int, V: int) -> None:
    x = torch.randn(V, n, generator=torch.Generator().manual_seed(n + V))
    x[::3] = float("-inf")
    assert torch.equal(sampling._column_max(x), x.amax(dim=0, keepdim=True))


def test_device_is_checked(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="no torch device"):
        resolve_device("gpu0")
    if torch.cuda.is_available():
        return
    # CUDA requested on a machine without it: a clear message and exit status 2 from both tools
    with pytest.raises(ConfigError, match="CUDA was requested but is not available"):
        load_run(run_dir, device="cuda")
    out = tmp_path / "s.parquet"
    assert main([str(run_dir), "--n", "3", "--output", str(out), "--device", "cuda"]) == 2
    assert "hepscale sample: error: device 'cuda': CUDA was requested" in capsys.readouterr().err
    assert not out.exists()
    assert evaluate.main([str(run_dir), "--device", "cuda:1", "--no-figures"]) == 2
    assert "hepscale evaluate: error: device 'cuda:1': CUDA was requested" in capsys.readouterr().err


@pytest.mark.gpu
def test_cuda_sampling(run_dir: Path) -> None:
    """On CUDA: bfloat16 autocast by default, seeded; in float32 the KV cache equals the recomputed prefix."""
    model, tok, _ = load_run(run_dir, device="cuda")
    kw = {"start": tok.start, "stop": tok.stop, "pad": tok.pad, "batch": 16, "seed": 3, "progress": False}
    a = generate(model, 40, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a, generate(model, 40, **kw)))
    T = model.cfg.block_size
    assert all(s[0] == tok.start and s[-1] == tok.stop and 3 <= len(s) <= T + 1 for s in a)
    f32 = generate(model, 40, bf16=False, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(f32, generate(model, 40, bf16=False, use_cache=False, **kw)))


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
