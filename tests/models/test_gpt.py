from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from hepscale.models.gpt import (
    GPT,
    GPTConfig,
    KVCache,
    count_parameters,
    flops_per_token,
    model_sizes,
    n_params_non_embedding,
    n_params_total,
    size_config,
)

ROOT = Path(__file__).resolve().parents[2]


SIZES = ["Pico", "XXS", "XS", "S", "M-", "M", "L", "XL", "XXL"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"pos_emb": "rotary"},
        {"bias": True},
        {"tie_embeddings": False},
        {"bias": True, "tie_embeddings": False, "pos_emb": "rotary"},
    ],
)
def test_parameter_counts_match_tensors(kwargs: dict) -> None:
    cfg = GPTConfig(vocab_size=101, block_size=20, n_layer=3, n_head=4, d_model=32, **kwargs)
    model = GPT(cfg)
    assert count_parameters(model) == n_params_total(cfg)
    assert count_parameters(model, non_embedding=True) == n_params_non_embedding(cfg)
    # independent count: all tensors except the embedding (and untied head) tensors
    emb = {"wte.weight", "wpe.weight", "lm_head.weight", "lm_head.bias"}
    by_name = sum(p.numel() for n, p in model.named_parameters() if n not in emb)  # named_parameters skips shared
    assert by_name == n_params_non_embedding(cfg)


def test_size_table_counts_and_span() -> None:
    import yaml

    sizes = model_sizes()
    assert list(sizes) == SIZES
    table = yaml.safe_load((ROOT / "configs" / "models.yaml").read_text())["sizes"]
    counts = []
    for name in SIZES:
        cfg = size_config(name, vocab_size=36003, block_size=129)
        with torch.device("meta"):  # count the real tensors without allocating them
            model = GPT(cfg)
        n = count_parameters(model, non_embedding=True)
        assert n == n_params_non_embedding(cfg) == table[name]["n_params_non_embedding"], name
        counts.append(n)
    assert all(a < b for a, b in zip(counts, counts[1:]))
    # the axis of the generation study: 3.5 decades, about 1e4 to 1e8
    assert math.log10(counts[-1] / counts[0]) == pytest.approx(3.5, abs=0.05)
    assert 1e4 <= counts[0] < 5e4 and 5e7 < counts[-1] <= 1e8
    steps = [b / a for a, b in zip(counts, counts[1:])]
    assert all(2 < s < 3.5 for s in steps)  # evenly spread in log N
    with pytest.raises(KeyError, match="valid sizes: Pico"):
        size_config("Huge")


def test_flops_per_token_matches_counted_matmuls() -> None:
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, d_model=32)
    model = GPT(cfg)
    B, T = 3, 16
    x = torch.randint(0, 50, (B, T))
    with FlopCounterMode(display=False) as counter:
        _, loss = model(x, x)
        loss.backward()
    ln_params = (2 * cfg.n_layer + 1) * cfg.d_model  # LayerNorm gains: parameters without matmuls
    # forward 2 N + backward 4 N per token for the block matrices and the (tied) output head;
    # on CPU the attention score/value products run inside SDPA and are not counted here
    expected = 6 * B * T * (n_params_non_embedding(cfg) - ln_params + cfg.d_model * cfg.vocab_size)
    assert counter.get_total_flops() == expected
    assert flops_per_token(cfg) == 6 * n_params_non_embedding(cfg)
    assert flops_per_token(cfg, include_embedding=True) == 6 * n_params_total(cfg)
    assert flops_per_token(cfg, include_attention=True, seq_len=10) == 6 * n_params_non_embedding(cfg) + 6 * 2 * 10 * 32


def test_loss_ignores_padding() -> None:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, d_model=16, pad_token=19)
    model = GPT(cfg)
    x = torch.randint(0, 19, (2, 8))
    y = torch.randint(0, 19, (2, 8))
    y[0, 5:] = 19
    logits, loss = model(x, y)
    keep = y != 19
    manual = F.cross_entropy(logits[keep], y[keep])
    assert loss.item() == pytest.approx(manual.item(), rel=1e-6)
    _, per_token = model(x, y, reduction="none")
    assert per_token.shape == (2, 8) and torch.all(per_token[0, 5:] == 0)
    assert per_token[keep].mean().item() == pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_causal(pos_emb: str) -> None:
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=30, block_size=12, n_layer=2, n_head=2, d_model=16, pos_emb=pos_emb))
    x = torch.randint(0, 30, (1, 12))
    a, _ = model(x)
    x2 = x.clone()
    x2[0, 7:] = (x2[0, 7:] + 1) % 30
    b, _ = model(x2)
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_kv_cache_logits_equal_full_recompute(pos_emb: str) -> None:
    torch.manual_seed(2)
    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=4, d_model=32, pos_emb=pos_emb)
    model = GPT(cfg).eval()
    x = torch.randint(0, 40, (3, 16))
    with torch.no_grad():
        full, _ = model(x)
        cache = KVCache(cfg, 3)
        steps = [model(x[:, t : t + 1], cache=cache)[0] for t in range(16)]
        torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
        # prefill of 5 positions, then a chunk of 4 after the prefix, then single steps
        cache = KVCache(cfg, 3)
        parts = [model(x[:, :5], cache=cache)[0], model(x[:, 5:9], cache=cache)[0]]
        parts += [model(x[:, t : t + 1], cache=cache)[0] for t in range(9, 16)]
        torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
        assert cache.pos == 16
        last, _ = model(x, last_only=True)
        torch.testing.assert_close(last, full[:, -1:], rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError, match="block_size"):
            model(x[:, :1], cache=cache)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(d_model=30, n_head=4)
    with pytest.raises(ValueError, match="even head size"):
        GPTConfig(d_model=12, n_head=4, pos_emb="rotary")
