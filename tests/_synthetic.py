"""Synthetic jets for tests that need a jet dataset but not physics (tokenizer, trainer, sampler)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

from hepscale.jets.dataset import build_jets


def random_jets(n: int, *, seed: int = 0, n_max: int = 30) -> ak.Array:
    """``n`` jets of 2..n_max massless constituents around the axis (eta, phi) = (0, 0), seeded."""
    rng = np.random.default_rng(seed)
    k = rng.integers(2, n_max, size=n)
    tot = int(k.sum())
    cons = ak.zip(
        {
            "pt": rng.exponential(30.0, tot) + 0.6,
            "eta": rng.normal(0.0, 0.15, tot),
            "phi": rng.normal(0.0, 0.15, tot),
            "mass": np.zeros(tot),
        }
    )
    return build_jets(ak.unflatten(cons, k))


#: the observables of :func:`observable_sample`, in its column order
OBSERVABLE_NAMES = ("mass", "tau21", "tau32", "d2", "n_constituents")


def observable_sample(rng: np.random.Generator, n: int, *, shift: float = 0.0) -> np.ndarray:
    """Jet-like observables (n, 5) in the order of :data:`OBSERVABLE_NAMES`: mass (GeV, shifted
    by ``shift``), tau21, tau32, d2, multiplicity."""
    return np.column_stack(
        [
            rng.gamma(4.0, 25.0, n) + shift,
            rng.beta(4, 3, n),
            rng.beta(5, 3, n),
            rng.lognormal(0.5, 0.4, n),
            rng.poisson(40, n).astype(float),
        ]
    )


def token_dataset(base: Path, *, n: int, seed: int, n_max: int = 30) -> Path:
    """A small token dataset (8 x 4 x 4 bins, at most 22 constituents) of ``n`` random jets in ``base/tokens``."""
    from hepscale.jets.dataset import write_jets
    from hepscale.tokens.tokenizer import TokenizerConfig, tokenize_dataset

    write_jets(base / "jets.parquet", random_jets(n, seed=seed, n_max=n_max))
    tokenize_dataset(
        base / "jets.parquet", base / "tokens", config=TokenizerConfig(n_pt=8, n_eta=4, n_phi=4, max_constituents=22)
    )
    return base / "tokens"


def tiny_generation_run(base: Path, *, n_layer: int, d_model: int, steps: int, warmup_steps: int) -> Path:
    """A finished GPT run in ``base/run`` on the tokens of :func:`token_dataset` in ``base/tokens``
    (seq_len 20, batch 16, CPU, one torch thread), evaluated once, at its last step."""
    import torch

    from hepscale.config import load_config
    from hepscale.train import TrainConfig, train

    cfg = load_config(TrainConfig, base={
        "model": {"size": "custom", "n_layer": n_layer, "n_head": 2, "d_model": d_model},
        "data": {"tokens": str(base / "tokens"), "seq_len": 20, "batch_size": 16},
        "optim": {"lr": 3e-3, "warmup_steps": warmup_steps}, "budget": {"steps": steps},
        "eval": {"every": steps, "jets": 16}, "device": "cpu"})
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # a module-scoped fixture runs before the autouse one-thread fixture
    try:
        assert train(cfg, base / "run", progress=False) == 0
    finally:
        torch.set_num_threads(n)
    return base / "run"
