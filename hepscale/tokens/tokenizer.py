"""Binned tokenizer of jet constituents for autoregressive (GPT) jet generation.

Each constituent becomes **one token**: the joint index of its bins in
(``pT`` or ``log pT``, ``deta``, ``dphi``), the last two relative to the jet axis::

    token = i_pt * (n_eta * n_phi) + i_eta * n_phi + i_phi        (0 <= token < n_bins)

followed by three special tokens ``pad = n_bins``, ``start = n_bins + 1`` and
``stop = n_bins + 2`` (vocabulary ``n_bins + 3``). A jet is the sequence
``start, c_1, ..., c_n, stop`` with its constituents in descending pT.

Defaults and why
----------------
- ``pt_scale = "log"``, 40 bins over ``[0.5, 1000]`` GeV (constituent pT, absolute):
  the constituent spectrum of AK8 jets with pT > 300 GeV falls steeply over three
  orders of magnitude; logarithmic bins give each decade the same resolution (edges in
  the ratio 2000^(1/40), 21 % per bin). Absolute pT is used (not pT / jet pT) because it
  is the simplest invertible choice and the jet pT is the sum of the generated
  constituents anyway.
  Constituents below ``pt_min`` (rare: PF thresholds are about 0.5-1 GeV) or above
  ``pt_max`` go to the first/last bin.
- 30 bins in ``deta`` and in ``dphi`` over ``[-0.8, 0.8]``: the AK8 radius R = 0.8
  bounds the constituents of an anti-kT jet (within rounding of the axis), so the
  range loses nothing; 30 bins give a 0.053 resolution, below the size of the CMS
  HCAL cells (0.087) that limit the angular resolution of neutral hadrons.
  Values outside the range are clipped into the edge bins.
- at most 128 constituents per jet (the limit of the jet dataset), so sequences have
  at most 130 tokens.

The vocabulary (36 003 tokens by default) fits ``uint16``; larger binnings are stored as
``uint32``. ``tokenizer.json`` records the dtype and everything needed to decode.

Token dataset (``hepscale tokenize JETS --output DIR``)
-------------------------------------------------------
``DIR/train.bin`` and ``DIR/val.bin``: flat token arrays (raw, little-endian, memory
mapped with :func:`numpy.memmap`, nanoGPT style); ``DIR/train_offsets.npy`` and
``DIR/val_offsets.npy``: int64 arrays of shape (n_jets + 1,), jet ``i`` is
``tokens[offsets[i]:offsets[i + 1]]``; ``DIR/tokenizer.json``. The split is by jet and
deterministic: a permutation seeded with ``split_seed`` puts ``val_fraction`` of the jets
in the validation set, and both splits are written in a seeded random order (recorded as
``split_order`` in ``tokenizer.json``). Input files are sorted by process, so the unique-data
subsets of the trainer, the first jets of ``train.bin``, are random subsets of the training
split with its composition, never the first process of the input.

Decoding gives the bin centres (the geometric centre for log bins), so a constituent in
range comes back within one bin width. Generated jets are turned into a jet dataset with
:func:`hepscale.jets.dataset.build_jets`, the same observables as real jets: constituents get
``eta = deta``, ``phi = dphi`` (jet axis at eta = phi = 0) and zero mass. The round trip is
not the identity for the observables: bin centres, massless constituents and the truncation at
``max_constituents`` change jet mass, tau_N, D2 and multiplicity, so generated jets are only
compared with real jets that went through the same encoding and decoding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import awkward as ak
import numpy as np

from hepscale.errors import DataError

__all__ = [
    "TokenizerConfig",
    "Tokenizer",
    "TokenizerError",
    "TokenData",
    "load_tokens",
    "tokenize_dataset",
    "split_indices",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: version of what :func:`tokenize_dataset` writes for the same jets and settings, part of a
#: study's data key (2: both splits in a seeded random order)
SPLIT_LAYOUT = 2


class TokenizerError(DataError):
    """A tokenizer description or token dataset is invalid or inconsistent."""


@dataclass
class TokenizerConfig:
    """Binning of constituents; see the module docstring for the reasoning behind defaults.

    Attributes
    ----------
    pt_scale
        ``"log"`` (bins uniform in log pT) or ``"linear"``.
    n_pt, pt_min, pt_max
        Number of pT bins and range, GeV (``pt_min > 0`` for log bins).
    n_eta, eta_max
        Bins of ``deta`` uniform over ``[-eta_max, eta_max]`` (radians in eta).
    n_phi, phi_max
        Bins of ``dphi`` uniform over ``[-phi_max, phi_max]``, radians.
    max_constituents
        Constituents kept per jet (leading in pT).
    val_fraction, split_seed
        Fraction of jets in the validation split and the seed of the split.
    """

    pt_scale: Literal["log", "linear"] = "log"
    n_pt: int = 40
    pt_min: float = 0.5
    pt_max: float = 1000.0
    n_eta: int = 30
    eta_max: float = 0.8
    n_phi: int = 30
    phi_max: float = 0.8
    max_constituents: int = 128
    val_fraction: float = 0.1
    split_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_pt", "n_eta", "n_phi", "max_constituents"):
            if getattr(self, name) < 1:
                raise TokenizerError(f"tokenizer field {name!r} must be at least 1, got {getattr(self, name)}")
        if not self.pt_max > self.pt_min:
            raise TokenizerError(f"tokenizer fields pt_min={self.pt_min} and pt_max={self.pt_max}: need pt_max > pt_min")
        if self.pt_scale == "log" and self.pt_min <= 0:
            raise TokenizerError(f"tokenizer field pt_min must be > 0 for pt_scale 'log', got {self.pt_min}")
        if self.eta_max <= 0 or self.phi_max <= 0:
            raise TokenizerError("tokenizer fields eta_max and phi_max must be positive")
        if not 0.0 <= self.val_fraction < 1.0:
            raise TokenizerError(f"tokenizer field val_fraction must be in [0, 1), got {self.val_fraction}")


class Tokenizer:
    """Encode constituents to tokens and decode tokens to constituents and jets.

    Parameters
    ----------
    config
        The binning.
    """

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        self.config = config or TokenizerConfig()
        c = self.config
        self.n_bins = c.n_pt * c.n_eta * c.n_phi
        self.pad = self.n_bins
        self.start = self.n_bins + 1
        self.stop = self.n_bins + 2
        self.vocab_size = self.n_bins + 3
        self.dtype = np.dtype(np.uint16 if self.vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32)
        if c.pt_scale == "log":
            self.pt_edges = np.geomspace(c.pt_min, c.pt_max, c.n_pt + 1)
        else:
            self.pt_edges = np.linspace(c.pt_min, c.pt_max, c.n_pt + 1)
        self.eta_edges = np.linspace(-c.eta_max, c.eta_max, c.n_eta + 1)
        self.phi_edges = np.linspace(-c.phi_max, c.phi_max, c.n_phi + 1)

    # ------------------------------------------------------------------ description
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to decode tokens (written as ``tokenizer.json``)."""
        return {
            "format_version": FORMAT_VERSION,
            "kind": "joint_bin",
            "config": dataclasses.asdict(self.config),
            "n_bins": self.n_bins,
            "vocab_size": self.vocab_size,
            "special_tokens": {"pad": self.pad, "start": self.start, "stop": self.stop},
            "token_layout": "token = i_pt * n_eta * n_phi + i_eta * n_phi + i_phi",
            "dtype": self.dtype.name,
            "pt_edges_GeV": self.pt_edges.tolist(),
            "deta_edges": self.eta_edges.tolist(),
            "dphi_edges": self.phi_edges.tolist(),
            "coordinates": "pt absolute (GeV); deta, dphi relative to the jet axis",
            "max_sequence_length": self.config.max_constituents + 2,
        }

    def fingerprint(self) -> str:
        """A short hash of the binning (equal binnings have equal fingerprints)."""
        blob = json.dumps(dataclasses.asdict(self.config), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "tokenizer description") -> Tokenizer:
        """Rebuild a tokenizer from :meth:`to_dict` output, checking its consistency."""
        if not isinstance(data, dict) or "config" not in data:
            raise TokenizerError(f"{where}: missing key 'config'")
        if data.get("format_version") != FORMAT_VERSION:
            raise TokenizerError(f"{where}: format_version {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        from hepscale.config import ConfigError, from_dict

        try:
            cfg = from_dict(TokenizerConfig, data["config"], where=f"{where}: config")
        except ConfigError as err:
            raise TokenizerError(str(err)) from err
        tok = cls(cfg)
        for key in ("vocab_size", "n_bins"):
            if key in data and data[key] != getattr(tok, key):
                raise TokenizerError(f"{where}: {key} {data[key]!r} does not match the binning ({getattr(tok, key)})")
        if "dtype" in data and data["dtype"] != tok.dtype.name:
            raise TokenizerError(f"{where}: dtype {data['dtype']!r} does not match the binning ({tok.dtype.name})")
        return tok

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Read ``tokenizer.json`` (a file, or a token directory holding one)."""
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            raise TokenizerError(f"tokenizer description {p} does not exist")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise TokenizerError(f"tokenizer description {p} is not valid JSON: {err}") from err
        return cls.from_dict(data, where=str(p))

    # ------------------------------------------------------------------ binning
    @staticmethod
    def _bin(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(edges, x, side="right") - 1
        return np.clip(idx, 0, len(edges) - 2)

    def encode_constituents(self, pt: np.ndarray, deta: np.ndarray, dphi: np.ndarray) -> np.ndarray:
        """Tokens of constituents.

        Parameters
        ----------
        pt, deta, dphi
            Arrays of equal shape: pT in GeV, eta and phi (radians) relative to the jet axis.

        Returns
        -------
        np.ndarray
            int64 tokens in ``[0, n_bins)``, same shape.
        """
        c = self.config
        i_pt = self._bin(np.asarray(pt, dtype=np.float64), self.pt_edges)
        i_eta = self._bin(np.asarray(deta, dtype=np.float64), self.eta_edges)
        i_phi = self._bin(np.asarray(dphi, dtype=np.float64), self.phi_edges)
        return (i_pt * (c.n_eta * c.n_phi) + i_eta * c.n_phi + i_phi).astype(np.int64)

    def decode_constituents(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bin centres ``(pt [GeV], deta, dphi)`` of constituent tokens (int array, any shape).

        Raises
        ------
        TokenizerError
            If a token is a special token or outside the vocabulary.
        """
        c = self.config
        t = np.asarray(tokens, dtype=np.int64)
        if t.size and (t.min() < 0 or t.max() >= self.n_bins):
            raise TokenizerError(f"constituent tokens must be in [0, {self.n_bins}), got range [{t.min()}, {t.max()}]")
        i_pt, rest = np.divmod(t, c.n_eta * c.n_phi)
        i_eta, i_phi = np.divmod(rest, c.n_phi)
        if c.pt_scale == "log":
            centres = np.sqrt(self.pt_edges[:-1] * self.pt_edges[1:])
        else:
            centres = 0.5 * (self.pt_edges[:-1] + self.pt_edges[1:])
        eta_c = 0.5 * (self.eta_edges[:-1] + self.eta_edges[1:])
        phi_c = 0.5 * (self.phi_edges[:-1] + self.phi_edges[1:])
        return centres[i_pt], eta_c[i_eta], phi_c[i_phi]

    # ------------------------------------------------------------------ jets
    def encode_jets(self, jets: ak.Array) -> tuple[np.ndarray, np.ndarray]:
        """Token sequences of jets (``start``, constituents by descending pT, ``stop``).

        Parameters
        ----------
        jets
            Jet dataset records (see :mod:`hepscale.jets.dataset`).

        Returns
        -------
        tokens, offsets
            Flat tokens (``self.dtype``) and int64 offsets of shape (n_jets + 1,).
        """
        cons = jets["constituents"]
        for field in ("pt", "deta", "dphi"):
            if field not in cons.fields:
                raise TokenizerError(f"jet constituents lack field {field!r}; they have {cons.fields}")
        order = ak.argsort(cons.pt, axis=1, ascending=False, stable=True)
        cons = cons[order][:, : self.config.max_constituents]
        counts = ak.to_numpy(ak.num(cons, axis=1)).astype(np.int64)
        flat = self.encode_constituents(
            ak.to_numpy(ak.flatten(cons.pt)), ak.to_numpy(ak.flatten(cons.deta)), ak.to_numpy(ak.flatten(cons.dphi))
        )
        lengths = counts + 2
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        out = np.empty(int(offsets[-1]), dtype=self.dtype)
        is_special = np.zeros(len(out), dtype=bool)
        is_special[offsets[:-1]] = True
        is_special[offsets[1:] - 1] = True
        out[offsets[:-1]] = self.start
        out[offsets[1:] - 1] = self.stop
        out[~is_special] = flat
        return out, offsets

    def split_sequence(self, seq: Sequence[int] | np.ndarray) -> np.ndarray:
        """Constituent tokens of one generated sequence: drop a leading ``start``, cut at the first
        ``stop`` (or ``pad``), keep the rest (int64)."""
        s = np.asarray(seq, dtype=np.int64)
        if len(s) and s[0] == self.start:
            s = s[1:]
        end = np.flatnonzero((s == self.stop) | (s == self.pad) | (s == self.start))
        if len(end):
            s = s[: end[0]]
        return s

    def decode_constituent_array(self, sequences: Sequence[Sequence[int] | np.ndarray]) -> ak.Array:
        """Constituents (n_jets, var) with ``pt, eta, phi, mass`` from token sequences.

        The jet axis is put at ``eta = phi = 0``: ``eta = deta``, ``phi = dphi``, mass 0.
        """
        parts = [self.split_sequence(s) for s in sequences]
        counts = np.array([len(p) for p in parts], dtype=np.int64)
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        pt, deta, dphi = self.decode_constituents(flat)
        rec = ak.zip({"pt": pt, "eta": deta, "phi": dphi, "mass": np.zeros_like(pt)})
        return ak.unflatten(rec, counts)

    def tokens_to_jets(
        self, sequences: Sequence[Sequence[int] | np.ndarray], *, source: str = "generated", label: int = 0
    ) -> ak.Array:
        """A jet dataset (same schema and observables as real jets) from token sequences."""
        from hepscale.jets.dataset import build_jets

        cons = self.decode_constituent_array(sequences)
        return build_jets(
            cons, label=label, source=source, event=np.arange(len(cons)), max_constituents=self.config.max_constituents
        )


@dataclass
class TokenData:
    """One split of a token dataset: flat ``tokens`` (memory-mapped) and int64 ``offsets``."""

    tokens: np.ndarray
    offsets: np.ndarray

    @property
    def n_jets(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, i: int) -> np.ndarray:
        """Tokens of jet ``i`` (int64)."""
        return np.asarray(self.tokens[self.offsets[i] : self.offsets[i + 1]], dtype=np.int64)


def load_tokens(directory: str | os.PathLike[str], split: Literal["train", "val"]) -> tuple[TokenData, Tokenizer]:
    """Open one split of a token dataset written by :func:`tokenize_dataset`.

    Raises
    ------
    TokenizerError
        If a file is missing or the offsets do not match the token file.
    """
    d = Path(directory)
    tok = Tokenizer.from_json(d)
    bin_path, off_path = d / f"{split}.bin", d / f"{split}_offsets.npy"
    for p in (bin_path, off_path):
        if not p.is_file():
            raise TokenizerError(f"token dataset {d}: file {p.name} does not exist")
    offsets = np.load(off_path, allow_pickle=False)
    if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0:
        raise TokenizerError(f"token dataset {d}: {off_path.name} must be int64 offsets starting at 0")
    size = bin_path.stat().st_size
    if size != int(offsets[-1]) * tok.dtype.itemsize:
        raise TokenizerError(
            f"token dataset {d}: {bin_path.name} holds {size // tok.dtype.itemsize} tokens, offsets say {int(offsets[-1])}"
        )
    tokens = np.memmap(bin_path, dtype=tok.dtype, mode="r") if size else np.zeros(0, dtype=tok.dtype)
    return TokenData(tokens, offsets), tok


def _write_split(directory: Path, split: str, tokens: np.ndarray, offsets: np.ndarray) -> None:
    from hepscale._io import atomic_path

    with atomic_path(directory / f"{split}.bin") as tmp:
        tokens.tofile(tmp)
    with atomic_path(directory / f"{split}_offsets.npy", suffix=".npy") as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, offsets.astype(np.int64), allow_pickle=False)


def _select(tokens: np.ndarray, offsets: np.ndarray, jets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.diff(offsets)[jets]
    new_offsets = np.zeros(len(jets) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    if len(jets) == 0:
        return tokens[:0], new_offsets
    starts = np.repeat(offsets[:-1][jets], lengths)
    within = np.arange(int(new_offsets[-1])) - np.repeat(new_offsets[:-1], lengths)
    return tokens[starts + within], new_offsets


def split_indices(n: int, config: TokenizerConfig) -> tuple[np.ndarray, np.ndarray]:
    """The jets (indices into the input) of ``train.bin`` and ``val.bin``, in their order.

    A permutation seeded with ``config.split_seed`` puts ``val_fraction`` of the jets in the
    validation split; both splits are then written in a seeded random order: the input is sorted
    by process (ttbar files, then QCD), and a unique-data budget U takes the first jets of
    ``train.bin``, so it must never be the first process of the input.
    """
    rng = np.random.default_rng(config.split_seed)
    is_val = np.zeros(n, dtype=bool)
    is_val[rng.permutation(n)[: int(round(config.val_fraction * n))]] = True
    train = rng.permutation(np.flatnonzero(~is_val))
    val = rng.permutation(np.flatnonzero(is_val))
    return train, val


def tokenize_dataset(
    jets_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    config: TokenizerConfig | None = None,
) -> dict[str, Any]:
    """Tokenize a jet dataset into ``output`` (see the module docstring for the layout).

    Returns
    -------
    dict
        The contents of ``tokenizer.json`` (binning, split sizes, provenance).
    """
    from hepscale._io import atomic_write_json
    from hepscale._version import code_version
    from hepscale.jets.dataset import read_jets

    tok = Tokenizer(config)
    jets = read_jets(jets_path, columns=["constituents"])
    logger.info("tokenizing %d jets from %s", len(jets), jets_path)
    tokens, offsets = tok.encode_jets(jets)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    info = tok.to_dict()
    for split, index in zip(("train", "val"), split_indices(len(offsets) - 1, tok.config)):
        t, o = _select(tokens, offsets, index)
        _write_split(out, split, t, o)
        info[f"n_{split}_jets"] = int(len(o) - 1)
        info[f"n_{split}_tokens"] = int(o[-1])
    info["source"] = os.fspath(jets_path)
    info["split_order"] = {"shuffled": True, "seed": tok.config.split_seed}
    info["fingerprint"] = tok.fingerprint()
    info["code_version"] = code_version()
    atomic_write_json(out / "tokenizer.json", info)
    logger.info("wrote %d train and %d val jets to %s", info["n_train_jets"], info["n_val_jets"], out)
    return info
