from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from hepscale.jets.dataset import build_jets, read_jets, write_jets
from hepscale.tokenize import main
from hepscale.tokens.tokenizer import (
    Tokenizer,
    TokenizerConfig,
    TokenizerError,
    load_tokens,
    tokenize_dataset,
)


def make_jets(n: int, *, seed: int = 0, n_max: int = 40) -> ak.Array:
    """Random jets: 3..n_max constituents spread around a random axis."""
    rng = np.random.default_rng(seed)
    k = rng.integers(3, n_max, size=n)
    tot = int(k.sum())
    cons = ak.zip(
        {
            "pt": rng.exponential(20.0, tot) + 0.6,
            "eta": rng.normal(0.0, 0.2, tot) + np.repeat(rng.uniform(-2, 2, n), k),
            "phi": rng.normal(0.0, 0.2, tot) + np.repeat(rng.uniform(-3, 3, n), k),
            "mass": np.zeros(tot),
        }
    )
    return build_jets(ak.unflatten(cons, k))


@pytest.fixture(scope="module")
def jets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jets") / "jets.parquet"
    write_jets(path, make_jets(300, seed=1))
    return path


def test_round_trip_within_one_bin() -> None:
    tok = Tokenizer()
    c = tok.config
    rng = np.random.default_rng(0)
    pt = np.exp(rng.uniform(np.log(c.pt_min), np.log(c.pt_max), 20000))
    deta = rng.uniform(-c.eta_max, c.eta_max, 20000)
    dphi = rng.uniform(-c.phi_max, c.phi_max, 20000)
    t = tok.encode_constituents(pt, deta, dphi)
    assert t.min() >= 0 and t.max() < tok.n_bins
    pt2, deta2, dphi2 = tok.decode_constituents(t)
    log_width = np.log(c.pt_max / c.pt_min) / c.n_pt
    # bin centres: at most half a bin width away
    assert np.max(np.abs(np.log(pt2 / pt))) <= 0.5 * log_width + 1e-12
    assert np.max(np.abs(deta2 - deta)) <= 0.5 * (2 * c.eta_max / c.n_eta) + 1e-12
    assert np.max(np.abs(dphi2 - dphi)) <= 0.5 * (2 * c.phi_max / c.n_phi) + 1e-12
    # decoding then encoding is the identity on tokens
    np.testing.assert_array_equal(tok.encode_constituents(pt2, deta2, dphi2), t)


def test_linear_pt_and_clipping() -> None:
    tok = Tokenizer(TokenizerConfig(pt_scale="linear", n_pt=10, pt_min=0.0, pt_max=100.0, n_eta=4, n_phi=4))
    t = tok.encode_constituents(np.array([5.0, 95.0, 500.0]), np.array([0.0, -5.0, 0.79]), np.array([0.1, 0.0, 2.0]))
    pt, deta, dphi = tok.decode_constituents(t)
    np.testing.assert_allclose(pt, [5.0, 95.0, 95.0])  # 500 GeV clipped into the last bin
    np.testing.assert_allclose(deta, [0.2, -0.6, 0.6])  # bins of width 0.4 over [-0.8, 0.8]
    np.testing.assert_allclose(dphi, [0.2, 0.2, 0.6])  # 0.0 is the lower edge of bin [0, 0.4)
    # the joint index: i_pt * n_eta * n_phi + i_eta * n_phi + i_phi
    assert t[0] == 0 * 16 + 2 * 4 + 2


def test_special_tokens_and_dtype() -> None:
    tok = Tokenizer()
    assert tok.n_bins == 40 * 30 * 30
    assert (tok.pad, tok.start, tok.stop, tok.vocab_size) == (36000, 36001, 36002, 36003)
    assert tok.dtype == np.uint16
    big = Tokenizer(TokenizerConfig(n_pt=100, n_eta=30, n_phi=30))
    assert big.dtype == np.uint32
    with pytest.raises(TokenizerError, match=r"must be in \[0, 36000\)"):
        tok.decode_constituents(np.array([tok.stop]))


def test_encode_jets_sequences() -> None:
    jets = make_jets(20, seed=3)
    tok = Tokenizer(TokenizerConfig(max_constituents=10))
    tokens, offsets = tok.encode_jets(jets)
    assert tokens.dtype == np.uint16 and offsets.dtype == np.int64
    n = np.minimum(ak.to_numpy(ak.num(jets.constituents)), 10)
    np.testing.assert_array_equal(np.diff(offsets), n + 2)
    for i in range(len(jets)):
        seq = tokens[offsets[i] : offsets[i + 1]].astype(np.int64)
        assert seq[0] == tok.start and seq[-1] == tok.stop
        body = seq[1:-1]
        i_pt = body // (tok.config.n_eta * tok.config.n_phi)
        assert np.all(np.diff(i_pt) <= 0), "constituents must come in descending pT"
        c = jets.constituents[i][:10]
        np.testing.assert_array_equal(
            body, tok.encode_constituents(ak.to_numpy(c.pt), ak.to_numpy(c.deta), ak.to_numpy(c.dphi))
        )


def test_tokens_to_jets_observables_match_independent_sum() -> None:
    tok = Tokenizer()
    jets = make_jets(30, seed=4)
    tokens, offsets = tok.encode_jets(jets)
    seqs = [tokens[offsets[i] : offsets[i + 1]] for i in range(len(jets))]
    out = tok.tokens_to_jets(seqs)
    assert len(out) == 30 and set(jets.fields) == set(out.fields)
    np.testing.assert_array_equal(ak.to_numpy(out.n_constituents), ak.to_numpy(ak.num(jets.constituents)))
    for i in (0, 7, 29):  # mass from the decoded massless constituents, summed by hand
        pt, deta, dphi = tok.decode_constituents(seqs[i][1:-1].astype(np.int64))
        px, py, pz = pt * np.cos(dphi), pt * np.sin(dphi), pt * np.sinh(deta)
        e = pt * np.cosh(deta)
        m = np.sqrt(max(e.sum() ** 2 - px.sum() ** 2 - py.sum() ** 2 - pz.sum() ** 2, 0.0))
        assert out.mass[i] == pytest.approx(m, rel=1e-9)
        assert abs(out.eta[i]) < 0.8 and out.pt[i] == pytest.approx(np.hypot(px.sum(), py.sum()), rel=1e-9)
    # binning changes the mass by a few per cent at most for these jets
    np.testing.assert_allclose(ak.to_numpy(out.mass), ak.to_numpy(jets.mass), rtol=0.1)


def test_split_sequence_cuts_at_stop() -> None:
    tok = Tokenizer()
    np.testing.assert_array_equal(tok.split_sequence([tok.start, 5, 6, tok.stop, 7]), [5, 6])
    np.testing.assert_array_equal(tok.split_sequence([tok.start, 5, 6]), [5, 6])


def test_tokenize_dataset_split_and_files(jets_file: Path, tmp_path: Path) -> None:
    info = tokenize_dataset(jets_file, tmp_path / "a", config=TokenizerConfig(val_fraction=0.2, split_seed=3))
    assert info["n_train_jets"] + info["n_val_jets"] == 300 and info["n_val_jets"] == 60
    train, tok = load_tokens(tmp_path / "a", "train")
    val, _ = load_tokens(tmp_path / "a", "val")
    assert isinstance(train.tokens, np.memmap) and train.tokens.dtype == np.uint16
    assert train.n_jets == 240 and val.n_jets == 60
    # the two splits are exactly the jets of the file, each once
    tokens, offsets = tok.encode_jets(read_jets(jets_file))
    every = sorted(tuple(tokens[offsets[i] : offsets[i + 1]]) for i in range(300))
    both = sorted([tuple(train.sequence(i)) for i in range(240)] + [tuple(val.sequence(i)) for i in range(60)])
    assert every == both
    # deterministic: a second run writes identical bytes
    tokenize_dataset(jets_file, tmp_path / "b", config=TokenizerConfig(val_fraction=0.2, split_seed=3))
    for name in ("train.bin", "val.bin", "train_offsets.npy", "val_offsets.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    described = json.loads((tmp_path / "a" / "tokenizer.json").read_text())
    assert described["dtype"] == "uint16" and described["vocab_size"] == 36003
    assert Tokenizer.from_json(tmp_path / "a").fingerprint() == tok.fingerprint()


def test_cli_overrides_and_errors(jets_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(jets_file), "--output", str(tmp_path / "t"), "n_pt=8", "n_eta=4", "n_phi=4"]) == 0
    assert Tokenizer.from_json(tmp_path / "t").vocab_size == 8 * 4 * 4 + 3
    assert "vocabulary 131" in capsys.readouterr().out
    assert main([str(jets_file), "--output", str(tmp_path / "u"), "n_bins=8"]) == 2
    err = capsys.readouterr().err
    assert "n_bins" in err and "valid keys are" in err and "n_pt" in err
    assert main([str(jets_file), "--output", str(tmp_path / "u"), "n_pt=many"]) == 2
    assert "n_pt" in capsys.readouterr().err


def test_inconsistent_description_is_rejected(jets_file: Path, tmp_path: Path) -> None:
    tokenize_dataset(jets_file, tmp_path, config=TokenizerConfig(n_pt=8, n_eta=4, n_phi=4))
    path = tmp_path / "tokenizer.json"
    data = json.loads(path.read_text())
    data["vocab_size"] = 999
    path.write_text(json.dumps(data))
    with pytest.raises(TokenizerError, match="vocab_size"):
        Tokenizer.from_json(path)
    (tmp_path / "val.bin").write_bytes(b"\x00\x01\x02")
    data["vocab_size"] = 131
    path.write_text(json.dumps(data))
    with pytest.raises(TokenizerError, match="val.bin"):
        load_tokens(tmp_path, "val")


def test_unique_subsets_keep_the_composition_of_the_training_split(tmp_path: Path) -> None:
    """Input sorted by process (all 'ttbar' jets, then all 'QCD' jets): every unique-token budget U
    of the trainer (the first jets of train.bin) holds both processes in the training split's
    proportion within its binomial error, not the first process of the file."""
    from hepscale.train.budget import unique_subset

    rng = np.random.default_rng(4)
    n_a, n_b = 900, 2100  # process A: 12 constituents per jet, process B: 25 (told apart by length)
    k = np.r_[np.full(n_a, 12), np.full(n_b, 25)]
    tot = int(k.sum())
    cons = ak.zip({"pt": rng.exponential(20.0, tot) + 0.6, "eta": rng.normal(0, 0.2, tot),
                   "phi": rng.normal(0, 0.2, tot), "mass": np.zeros(tot)})
    write_jets(tmp_path / "jets.parquet", build_jets(ak.unflatten(cons, k)))
    info = tokenize_dataset(tmp_path / "jets.parquet", tmp_path / "tokens", config=TokenizerConfig(split_seed=5))
    assert info["split_order"] == {"shuffled": True, "seed": 5}
    train, _ = load_tokens(tmp_path / "tokens", "train")
    is_a = train.lengths == 12 + 2  # start and stop tokens
    assert is_a.sum() + (train.lengths == 25 + 2).sum() == train.n_jets
    frac = is_a.mean()
    for budget in (500, 2000, 8000, 30000):
        n = unique_subset(train.lengths, budget)
        got = is_a[:n].mean()
        sigma = np.sqrt(frac * (1 - frac) / n * (1 - n / train.n_jets))  # without replacement
        assert abs(got - frac) <= 4 * sigma + 1e-12, (budget, n, got, frac)
    # the two smallest budgets would hold no process-B jet at all in file order
    assert unique_subset(train.lengths, 2000) < n_a * 0.9
