"""Real jets at a generative model's resolution: the like-with-like reference of the SWD.

A generated jet is decoded from tokens (:meth:`hepscale.tokens.tokenizer.Tokenizer.tokens_to_jets`):
constituents at the centres of their (pT, deta, dphi) bins, massless, at most
``max_constituents`` of them and, as the sampler stops every sequence at the model's block,
at most ``seq_len - 1``. Real jets compared with it must go through the same representation:
:func:`decode_like_generated` encodes them with the run's tokenizer, truncates their sequences
as the sampler would and decodes them with the same code and the same mass convention (massless
constituents), so that the SWD measures the model and not the binning.

The distance the representation alone causes, SWD(decoded real, real), and the floor of raw
real jets are reported beside it (``evaluation.tokenization`` of ``result.json``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CONSTITUENT_MASS", "Resolution", "run_resolution", "decode_like_generated", "reference_pair"]

#: the mass given to every decoded constituent (generated and real alike)
CONSTITUENT_MASS = "massless"


@dataclass(frozen=True)
class Resolution:
    """The representation of a generative run: its tokenizer and the most constituents a
    generated jet can have (``min(max_constituents, seq_len - 1)``)."""

    tokenizer: Any
    max_constituents: int
    seq_len: int

    def record(self) -> dict[str, Any]:
        """JSON description (for ``result.json``)."""
        return {"tokenizer_fingerprint": self.tokenizer.fingerprint(), "max_constituents": self.max_constituents,
                "seq_len": self.seq_len, "constituent_mass": CONSTITUENT_MASS}


def run_resolution(run_dir: str | os.PathLike[str]) -> Resolution | None:
    """The :class:`Resolution` of a generative run folder (its ``tokenizer.json`` and
    ``config.yaml``), or None for a folder that is not a generative run (no tokenizer)."""
    from hepscale.runs.folder import RunFolder
    from hepscale.tokens.tokenizer import Tokenizer
    from hepscale.train.config import load_run_config, run_task

    run = RunFolder(run_dir)
    if not run.config.is_file() or not run.tokenizer.is_file() or run_task(run.config) != "generation":
        return None
    tok = Tokenizer.from_json(run.tokenizer)
    seq_len = int(load_run_config(run.config).data.seq_len)
    return Resolution(tok, max_constituents=min(int(tok.config.max_constituents), seq_len - 1), seq_len=seq_len)


def decode_like_generated(jets: Any, resolution: Resolution, *, source: str = "reference") -> Any:
    """Jets encoded with ``resolution``'s tokenizer, truncated to its ``max_constituents`` and
    decoded as generated jets are (same observables code, massless constituents)."""
    tok = resolution.tokenizer
    tokens, offsets = tok.encode_jets(jets)
    tokens = np.asarray(tokens, dtype=np.int64)
    keep = resolution.max_constituents
    # sequence i: start, constituents (by descending pT), stop; keep the first `keep` constituents
    sequences = [tokens[offsets[i] + 1 : min(offsets[i + 1] - 1, offsets[i] + 1 + keep)] for i in range(len(offsets) - 1)]
    return tok.tokens_to_jets(sequences, source=source)


def reference_pair(reference: str | os.PathLike[str], resolution: Resolution) -> tuple[Any, Any]:
    """The reference jet dataset ``reference`` raw and at ``resolution`` (the same jets, in order)."""
    from hepscale.jets.dataset import read_jets

    raw = read_jets(Path(reference))
    return raw, decode_like_generated(raw, resolution, source=f"{Path(reference).name} (tokenized)")
