"""Synthetic jets for tests that need a jet dataset but not physics (tokenizer, trainer, sampler)."""

from __future__ import annotations

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
