"""The SWD reference at the model's resolution: real jets encoded and decoded as generated jets are."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from _synthetic import random_jets, tiny_generation_run, token_dataset

from hepscale.jets.dataset import write_jets
from hepscale.tasks.generation.evaluate import evaluate_run
from hepscale.tasks.generation.resolution import decode_like_generated, run_resolution
from hepscale.runs.folder import RunFolder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("resolution")
    token_dataset(base, n=200, seed=7, n_max=30)  # up to 29 constituents: truncated at seq_len - 1 = 19
    return tiny_generation_run(base, n_layer=1, d_model=16, steps=2, warmup_steps=1)


def test_decoded_jets_follow_the_generated_representation(run_dir: Path) -> None:
    res = run_resolution(run_dir)
    assert res is not None and res.seq_len == 20 and res.max_constituents == 19  # min(22 of the tokenizer, 20 - 1)
    jets = random_jets(300, seed=11, n_max=30)
    dec = decode_like_generated(jets, res)
    k = ak.to_numpy(ak.num(jets.constituents))
    assert np.array_equal(ak.to_numpy(dec.n_constituents), np.minimum(k, 19))
    # the hardest constituents kept, each within its pT bin (edges of the run's tokenizer)
    edges = res.tokenizer.pt_edges
    pt_sorted = ak.sort(jets.constituents.pt, axis=1, ascending=False)[:, :19]
    raw, back = ak.to_numpy(ak.flatten(pt_sorted)), ak.to_numpy(ak.flatten(ak.sort(dec.constituents.pt, axis=1,
                                                                                   ascending=False)))
    inside = (raw >= edges[0]) & (raw < edges[-1])
    bin_raw = np.searchsorted(edges, raw[inside], side="right") - 1
    assert np.all((back[inside] >= edges[bin_raw]) & (back[inside] <= edges[bin_raw + 1]))
    # massless decoded constituents: the jet mass is that of the sum of massless four-vectors
    c = dec.constituents
    px, py = c.pt * np.cos(c.phi), c.pt * np.sin(c.phi)
    pz, e = c.pt * np.sinh(c.eta), c.pt * np.cosh(c.eta)
    m2 = ak.sum(e, axis=1) ** 2 - ak.sum(px, axis=1) ** 2 - ak.sum(py, axis=1) ** 2 - ak.sum(pz, axis=1) ** 2
    assert ak.to_numpy(dec.mass) == pytest.approx(np.sqrt(np.clip(ak.to_numpy(m2), 0, None)), rel=1e-6, abs=1e-6)


def test_a_model_as_good_as_its_representation_reaches_the_tokenized_floor(run_dir: Path, tmp_path: Path) -> None:
    """Samples = independent real jets through the run's representation. Against the reference at
    the model's resolution they sit at the floor; against raw real jets they would not, and the
    tokenization distance says why."""
    res = run_resolution(run_dir)
    reference = tmp_path / "reference.parquet"
    write_jets(reference, random_jets(3000, seed=21, n_max=30))
    write_jets(RunFolder(run_dir).samples, decode_like_generated(random_jets(1500, seed=22, n_max=30), res))
    kw = dict(n_jets=600, n_bootstraps=8, n_projections=64, seed=1, figures=False, progress=False)
    rec, _ = evaluate_run(run_dir, reference, **kw)
    s, t = rec["swd"], rec["tokenization"]
    assert rec["reference_resolution"] == "model" and rec["resolution"]["max_constituents"] == 19
    assert s["mean"] / s["floor_mean"] == pytest.approx(1.0, abs=0.35)
    assert t["mean"] > 3 * t["raw_floor_mean"]  # the representation alone, far above the raw floor
    raw, _ = evaluate_run(run_dir, reference, resolution="raw", **kw)
    assert raw["reference_resolution"] == "raw" and "tokenization" not in raw
    assert raw["swd"]["mean"] > 3 * raw["swd"]["floor_mean"]  # what the old comparison would have called the model
    assert raw["swd"]["mean"] == pytest.approx(t["mean"], rel=0.25)
