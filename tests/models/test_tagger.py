"""The particle-transformer tagger: parameter and FLOP accounting against the real tensors and the
FLOP counter, the size table, permutation and padding invariance, and the pair features."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from hepscale.errors import ConfigError
from hepscale.models.tagger import (
    PAIR_EPS,
    ParticleTransformer,
    TaggerConfig,
    count_parameters,
    forward_flops_per_jet,
    pairwise_features,
    param_counts,
    tagger_config,
    tagger_sizes,
    train_flops_per_jet,
)
from hepscale.models.tagger_sizes import _table_header

ROOT = Path(__file__).resolve().parents[2]
SIZES = ["Pico", "Nano", "Micro", "XXS", "XS", "S", "M", "L", "XL"]


def _small(pairwise: bool, **kw: object) -> TaggerConfig:
    base: dict[str, object] = {"n_features": 7, "n_classes": 3, "max_particles": 12, "d_model": 16, "n_head": 2,
                               "n_layer": 2, "n_class_layer": 2, "pair_dim": 8, "pairwise": pairwise}
    base.update(kw)
    return TaggerConfig(**base)  # type: ignore[arg-type]


def _jets(batch: int, p: int, f: int, n_real: list[int], *, seed: int = 0,
          dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random jets with ``n_real[i]`` real particles first (physical four-momenta), zeros after."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, p, f, generator=g, dtype=dtype)
    mask = torch.arange(p)[None, :] < torch.tensor(n_real)[:, None]
    pt = 10 + 100 * torch.rand(batch, p, generator=g, dtype=dtype)
    y = torch.randn(batch, p, generator=g, dtype=dtype) * 0.5
    phi = (torch.rand(batch, p, generator=g, dtype=dtype) * 2 - 1) * math.pi
    m = torch.rand(batch, p, generator=g, dtype=dtype) * 0.5
    mt = torch.sqrt(pt**2 + m**2)
    p4 = torch.stack([pt * torch.cos(phi), pt * torch.sin(phi), mt * torch.sinh(y), mt * torch.cosh(y)], dim=-1)
    zero = torch.zeros((), dtype=dtype)
    return torch.where(mask[..., None], x, zero), mask, torch.where(mask[..., None], p4, zero)


# ---------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("pairwise", [False, True])
def test_param_counts_match_tensors_for_every_size(pairwise: bool) -> None:
    for name in SIZES:
        cfg = tagger_config(name, n_features=17, n_classes=2, max_particles=128, pairwise=pairwise)
        with torch.device("meta"):  # the real tensors, without allocating them
            model = ParticleTransformer(cfg)
        assert count_parameters(model) == param_counts(cfg), name
        # independent split by parameter name: embedding = input embedding and pair embedding
        named = dict(model.named_parameters())
        emb = sum(p.numel() for n, p in named.items() if n.startswith(("embed.", "pair_embed.")))
        assert sum(p.numel() for p in named.values()) - emb == param_counts(cfg)[0], name
        assert (model.pair_embed is not None) == pairwise


def test_param_counts_custom_shapes() -> None:
    for kw in ({"ffn_ratio": 2}, {"n_class_layer": 1, "n_classes": 10}, {"n_features": 1, "pair_dim": 3}):
        for pairwise in (False, True):
            cfg = _small(pairwise, **kw)
            n_ne, n_tot = count_parameters(ParticleTransformer(cfg))
            assert (n_ne, n_tot) == param_counts(cfg)
            assert (n_tot > n_ne) and (n_ne == param_counts(dataclasses.replace(cfg, pairwise=not pairwise))[0])


# ---------------------------------------------------------------------------- FLOPs
def _sdpa_cpu(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:  # type: ignore[no-untyped-def]
    """The CUDA kernels' formula for the fused CPU kernel, which FlopCounterMode leaves uncounted."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _measure(model: ParticleTransformer, *inputs: torch.Tensor) -> FlopCounterMode:
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        model(*inputs)
    return counter


@pytest.mark.parametrize("pairwise", [False, True])
@pytest.mark.parametrize("shape", [{}, {"d_model": 24, "n_head": 3, "n_layer": 1, "n_class_layer": 3,
                                        "ffn_ratio": 2, "max_particles": 9, "n_classes": 5}])
def test_forward_flops_match_the_flop_counter(pairwise: bool, shape: dict) -> None:
    cfg = _small(pairwise, **shape)
    p = cfg.max_particles
    x, mask, p4 = _jets(1, p, cfg.n_features, [p - 3], dtype=torch.float32)  # padding costs like particles
    counter = _measure(ParticleTransformer(cfg), x, mask, p4)
    assert counter.get_total_flops() == forward_flops_per_jet(cfg)
    # the embedding share of the pair (non-embedding, total) is exactly the embedding modules' matmuls
    by_module = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    embedding = by_module["ParticleTransformer.embed"] + by_module.get("ParticleTransformer.pair_embed", 0)
    non_emb, total = train_flops_per_jet(cfg)
    assert total == 3 * forward_flops_per_jet(cfg)
    assert non_emb == 3 * (forward_flops_per_jet(cfg) - embedding)
    # batch B costs B jets
    x4, mask4, p44 = _jets(4, p, cfg.n_features, [1, 2, p, 0], dtype=torch.float32)
    assert _measure(ParticleTransformer(cfg), x4, mask4, p44).get_total_flops() == 4 * forward_flops_per_jet(cfg)


@pytest.mark.parametrize("pairwise", [False, True])
def test_flops_are_quadratic_in_the_length(pairwise: bool) -> None:
    """Only the self-attention scores/values and the pair embedding grow as P^2."""
    cfg = _small(pairwise)
    f = [forward_flops_per_jet(dataclasses.replace(cfg, max_particles=p)) for p in (10, 11, 12)]
    d, q = cfg.d_model, cfg.pair_dim
    per_pair = cfg.n_layer * 4 * d + (2 * (4 * q + q * q + q * cfg.n_head) if pairwise else 0)
    assert f[2] - 2 * f[1] + f[0] == 2 * per_pair


# ---------------------------------------------------------------------------- size table
def test_size_table_order_span_and_counts() -> None:
    import yaml

    sizes = tagger_sizes()
    assert list(sizes) == SIZES
    table = yaml.safe_load((ROOT / "configs" / "taggers.yaml").read_text())["sizes"]
    counts, flops = [], []
    for name in SIZES:
        cfg = tagger_config(name, n_features=17, n_classes=2, max_particles=128)
        n_ne = param_counts(cfg)[0]
        assert n_ne == table[name]["n_params_non_embedding"], name
        assert cfg.d_model % cfg.n_head == 0
        counts.append(n_ne)
        flops.append(train_flops_per_jet(cfg)[1])
    assert all(a < b for a, b in itertools.pairwise(counts))
    assert all(a < b for a, b in itertools.pairwise(flops))
    assert math.log10(counts[-1] / counts[0]) >= 3
    assert counts[0] < 1e4 and 1e7 <= counts[-1] <= 3e7
    assert 1.5e6 < param_counts(tagger_config("M", n_features=17, n_classes=2, max_particles=128))[1] < 2.5e6  # ParT


def test_size_table_header_agrees_with_the_counts() -> None:
    text = (ROOT / "configs" / "taggers.yaml").read_text()
    rows = {r["name"]: r for r in _table_header(tagger_sizes())}
    seen = set()
    for line in text.splitlines():
        m = re.match(r"#\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)$", line)
        if m and m.group(1) in rows:
            r = rows[m.group(1)]
            assert [int(m.group(i)) for i in (2, 3, 4)] == [r["n_params_non_embedding"], r["n_params_total"],
                                                             r["n_params_total_pairwise"]], line
            assert float(m.group(5)) == pytest.approx(r["train_flops_per_jet"], rel=5e-3), line
            assert float(m.group(6)) == pytest.approx(r["train_flops_per_jet_pairwise"], rel=5e-3), line
            seen.add(m.group(1))
    assert seen == set(SIZES)


def test_tagger_config_errors_and_overrides(tmp_path: Path) -> None:
    kw = {"n_features": 7, "n_classes": 2, "max_particles": 32}
    with pytest.raises(ConfigError, match=r"model\.size: 'Huge' .*valid sizes: Pico, Nano, .*XL, custom"):
        tagger_config("Huge", **kw)
    with pytest.raises(ConfigError, match=r"custom needs model\.n_head, model\.n_layer"):
        tagger_config("custom", d_model=32, **kw)
    with pytest.raises(ConfigError, match=r"model\.size: S fixes d_model"):
        tagger_config("S", d_model=32, **kw)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) depth"):
        tagger_config("S", depth=3, **kw)
    with pytest.raises(ConfigError, match=r"model\.d_model=30 must be divisible by model\.n_head=4"):
        tagger_config("custom", d_model=30, n_head=4, n_layer=1, **kw)
    with pytest.raises(ConfigError, match=r"model\.dropout"):
        tagger_config("Pico", dropout=1.0, **kw)
    with pytest.raises(ConfigError, match=r"model\.n_classes must be at least 2"):
        tagger_config("Pico", n_features=7, n_classes=1, max_particles=32)
    s = tagger_config("S", n_class_layer=4, pairwise=True, **kw)
    assert (s.d_model, s.n_layer, s.n_class_layer, s.pairwise) == (96, 5, 4, True)
    c = tagger_config("custom", d_model=32, n_head=4, n_layer=3, n_class_layer=None, **kw)
    assert (c.d_model, c.n_head, c.n_layer, c.n_class_layer, c.pair_dim) == (32, 4, 3, 2, 64)
    assert TaggerConfig(**dataclasses.asdict(s)) == s  # the checkpoint round trip
    table = tmp_path / "t.yaml"
    table.write_text("sizes:\n  A: {d_model: 8, n_head: 2, n_layer: 1, n_class_layer: 1}\n")
    with pytest.raises(ConfigError, match=r"t\.yaml: sizes\.A lacks pair_dim"):
        tagger_sizes(table)
    table.write_text("sizes:\n  A: {d_model: 8, n_head: 2, n_layer: 1, n_class_layer: 1, pair_dim: 4}\n")
    assert tagger_config("A", path=table, **kw).d_model == 8


def test_tagger_sizes_imports_without_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "import hepscale.models, hepscale.models.tagger_sizes as t\n"
            "cfg = hepscale.models.tagger_config('XL', n_features=13, n_classes=10, max_particles=128)\n"
            "print(t.param_counts(cfg)[0] > 0, t.train_flops_per_jet(cfg)[0] > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


# ---------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("pairwise", [False, True])
def test_permutation_and_padding_invariance(pairwise: bool) -> None:
    torch.manual_seed(0)
    cfg = _small(pairwise, n_layer=2, n_class_layer=2)
    model = ParticleTransformer(cfg).double().eval()
    if model.pair_embed is not None:  # attention biases of order one, as after training
        for layer in (model.pair_embed.fc1, model.pair_embed.fc2, model.pair_embed.fc3):
            torch.nn.init.normal_(layer.weight, std=0.5)
    n_real = [7, 1, 12, 4]
    x, mask, p4 = _jets(4, 12, cfg.n_features, n_real, seed=1)
    ref = model(x, mask, p4)
    assert torch.isfinite(ref).all()
    assert not torch.allclose(ref[0], ref[2])  # not trivially constant

    # permute every slot (real particles and padding mixed), per jet
    g = torch.Generator().manual_seed(2)
    perm = torch.stack([torch.randperm(12, generator=g) for _ in range(4)])

    def take(t: torch.Tensor) -> torch.Tensor:
        return torch.gather(t, 1, perm.view(4, 12, *([1] * (t.dim() - 2))).expand_as(t))

    torch.testing.assert_close(model(take(x), take(mask), take(p4)), ref, atol=1e-10, rtol=0)

    # garbage (even NaN and inf) in the padded slots, and five more garbage slots appended
    def garbage(t: torch.Tensor, extra: int) -> torch.Tensor:
        noisy = torch.where(mask.view(4, 12, *([1] * (t.dim() - 2))), t, 1e3 * torch.randn_like(t))
        noisy[1, 5] = float("nan")
        pad = 1e3 * torch.randn(4, extra, *t.shape[2:], dtype=t.dtype)
        pad[2, 0] = float("inf")
        return torch.cat([noisy, pad], dim=1)

    mask_ext = torch.cat([mask, torch.zeros(4, 5, dtype=torch.bool)], dim=1)
    out = model(garbage(x, 5), mask_ext, garbage(p4, 5))
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)

    # a real particle's features and (with pairwise) its momentum do matter
    x2 = x.clone()
    x2[0, 3, 0] += 1.0  # one feature (a shift of all of them is what the input LayerNorm removes)
    assert (model(x2, mask, p4)[0] - ref[0]).abs().max() > 1e-6
    p42 = p4.clone()
    p42[0, 3, :3] *= 1.5
    p42[0, 3, 3] *= 1.5
    changed = (model(x, mask, p42)[0] - ref[0]).abs().max()
    assert (changed > 1e-8) if pairwise else (changed == 0)


@pytest.mark.parametrize("pairwise", [False, True])
def test_single_particle_and_empty_jets_are_finite(pairwise: bool) -> None:
    torch.manual_seed(0)
    cfg = _small(pairwise)
    model = ParticleTransformer(cfg).train()
    x, mask, p4 = _jets(3, 12, cfg.n_features, [1, 0, 5], dtype=torch.float32)
    logits = model(x, mask, p4)
    assert logits.shape == (3, cfg.n_classes) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # a jet without real particles gives the same logits whatever its slots hold
    model.eval()
    a = model(x[1:2], mask[1:2], p4[1:2])
    b = model(torch.randn_like(x[1:2]), mask[1:2], torch.randn_like(p4[1:2]))
    torch.testing.assert_close(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(model(x, mask, p4)).all()


def test_forward_checks_inputs() -> None:
    model = ParticleTransformer(_small(True))
    x, mask, p4 = _jets(2, 12, 7, [3, 4], dtype=torch.float32)
    with pytest.raises(ValueError, match="pairwise needs p4"):
        model(x, mask)
    with pytest.raises(ValueError, match=r"expected x \(B, P, 7\)"):
        model(x[..., :5], mask, p4)


# ---------------------------------------------------------------------------- pair features
def _numpy_pair_features(p4: np.ndarray, mask: np.ndarray, eps: float) -> np.ndarray:
    """Plain loops over pairs, in float64."""
    n = len(p4)
    out = np.zeros((n, n, 4))
    for a in range(n):
        for b in range(n):
            if not (mask[a] and mask[b]):
                continue
            (pxa, pya, pza, ea), (pxb, pyb, pzb, eb) = p4[a], p4[b]
            pta, ptb = math.hypot(pxa, pya), math.hypot(pxb, pyb)
            ya, yb = math.atanh(pza / ea), math.atanh(pzb / eb)
            dphi = math.atan2(pya, pxa) - math.atan2(pyb, pxb)
            while dphi >= math.pi:
                dphi -= 2 * math.pi
            while dphi < -math.pi:
                dphi += 2 * math.pi
            delta = math.sqrt((ya - yb) ** 2 + dphi**2)
            ptmin = min(pta, ptb)
            m2 = (ea + eb) ** 2 - (pxa + pxb) ** 2 - (pya + pyb) ** 2 - (pza + pzb) ** 2
            out[a, b] = [math.log(max(v, eps)) for v in (delta, ptmin * delta, ptmin / (pta + ptb), m2)]
    return out


def _particle(pt: float, y: float, phi: float, m: float) -> list[float]:
    mt = math.sqrt(pt * pt + m * m)
    return [pt * math.cos(phi), pt * math.sin(phi), mt * math.sinh(y), mt * math.cosh(y)]


def test_pairwise_features_against_numpy() -> None:
    # phi across the +-pi seam, a massive pair, a collinear massless pair, and padding
    parts = [(50.0, 0.3, 3.1, 0.0), (20.0, -0.4, -3.0, 0.14), (5.0, 1.2, 0.5, 4.2), (12.0, 1.2, 0.5, 0.0),
             (7.0, -2.0, -1.0, 0.5)]
    p4 = np.array([_particle(*q) for q in parts] + [[3.0, 1.0, 2.0, 9.0]])  # the last is padding
    mask = np.array([True] * 5 + [False])
    got = pairwise_features(torch.tensor(p4)[None], torch.tensor(mask)[None])[0].numpy()
    want = _numpy_pair_features(p4, mask, PAIR_EPS)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    assert (got[5] == 0).all() and (got[:, 5] == 0).all()
    # known answers: the wrapped Delta of particles 0 and 1, and m^2 of two particles in (pT, y, phi, m)
    (pt0, y0, f0, m0), (pt1, y1, f1, m1) = parts[0], parts[1]
    dphi = f0 - f1 - 2 * math.pi
    assert math.exp(got[0, 1, 0]) == pytest.approx(math.hypot(y0 - y1, dphi), rel=1e-12)
    mt0, mt1 = math.hypot(pt0, m0), math.hypot(pt1, m1)
    m2 = m0**2 + m1**2 + 2 * (mt0 * mt1 * math.cosh(y0 - y1) - pt0 * pt1 * math.cos(dphi))
    assert math.exp(got[0, 1, 3]) == pytest.approx(m2, rel=1e-10)
    assert math.exp(got[0, 1, 2]) == pytest.approx(20.0 / 70.0, rel=1e-12)
    # symmetric; the collinear pair (2, 3) and self pairs have Delta = 0 -> ln eps
    np.testing.assert_allclose(got, got.transpose(1, 0, 2), rtol=1e-12)
    assert got[2, 3, 0] == pytest.approx(math.log(PAIR_EPS)) and got[0, 0, 0] == pytest.approx(math.log(PAIR_EPS))
    assert math.exp(got[2, 2, 3]) == pytest.approx(4 * 4.2**2, rel=1e-9)  # self pair: (2 p)^2 = 4 m^2
