"""The generation task: next-token prediction on tokenized jets with a GPT.

Each training item is one jet, ``start, constituents..., stop``, truncated to ``seq_len + 1``
tokens and padded to ``seq_len`` input positions; the loss ignores padding. ``seq_len`` may not
exceed the longest sequence of the token data minus one (:func:`check_seq_len`): positions no jet
reaches would only inflate the compute. Data units are the jet's real tokens (capped at
``S + 1``): ``tokens_seen`` (D) counts those of the jets consumed, ``unique_tokens`` (U) those of
the fixed training subset (the first jets of ``train.bin`` whose tokens fit into
``data.unique_tokens``, all jets when unset).

The task writes ``tokenizer.json`` (a copy of the token dataset's binning, which the sampler
reads) into the run folder, stores the tokenizer fingerprint in checkpoints and refuses to
resume on another binning or vocabulary, reports the validation loss per position as its final
metric (``val_loss_per_position``) and the tokenizer in ``result.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepscale.config import ConfigError
from hepscale.models.gpt import GPT, n_params_non_embedding, n_params_total
from hepscale.runs.folder import RunFolder
from hepscale.tokens.tokenizer import TokenData, load_tokens
from hepscale.train.budget import unique_subset
from hepscale.train.checkpoint import CheckpointError
from hepscale.train.config import TrainConfig, TrainError, model_config_for
from hepscale.train.data import EpochSampler
from hepscale.train.distributed import Runtime
from hepscale.train.task import Evaluation, Task

__all__ = ["JetBatcher", "GenerationTask", "check_seq_len"]


def check_seq_len(seq_len: int, *splits: TokenData, source: str) -> None:
    """Refuse a ``data.seq_len`` longer than the token data needs.

    A sequence of L tokens (``start, constituents..., stop``) fills L - 1 input positions, so
    S = L_max - 1 covers the longest sequence of the splits; more positions are padding that
    still costs compute (and would count in C = 6 N B S steps).

    Raises
    ------
    ConfigError
        When ``seq_len`` exceeds the longest sequence minus one; the message gives the value to use.
    """
    longest = max((int(d.lengths.max()) for d in splits if d.n_jets), default=0)
    if longest and seq_len > longest - 1:
        raise ConfigError(
            f"data.seq_len={seq_len} is longer than the token data of {source} needs: its longest sequence "
            f"(train.bin and val.bin) has {longest} tokens, i.e. {longest - 1} input positions; "
            f"use data.seq_len={longest - 1} (or less)"
        )


class JetBatcher(EpochSampler):
    """Padded jet batches from a fixed subset of a token split, one seeded permutation per epoch.

    The position in the data is ``(epoch, cursor)``; batches depend only on it and the seed.

    Parameters
    ----------
    data
        Token split.
    n_jets
        Size of the subset (the first ``n_jets`` jets).
    seq_len
        Input positions S; jets are cut to S + 1 tokens.
    pad
        Padding token.
    seed
        Seed of the epoch permutations.
    """

    def __init__(self, data: TokenData, *, n_jets: int, seq_len: int, pad: int, seed: int) -> None:
        self.data = data
        self.n_jets = n_jets
        self.seq_len = seq_len
        self.pad = pad
        self.lengths = np.minimum(np.diff(data.offsets[: n_jets + 1]), seq_len + 1)
        super().__init__(self.lengths, seed=seed)

    @property
    def unique_tokens(self) -> int:
        """Real tokens (capped at S + 1 per jet) in the subset: U."""
        return self.unique_units

    def make_batch(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Inputs and targets (int64, shape (len(ids), S)) and the number of real tokens."""
        S = self.seq_len
        starts = self.data.offsets[ids]
        lens = np.minimum(self.data.offsets[ids + 1] - starts, S + 1)
        ar = np.arange(S + 1)
        valid = ar[None, :] < lens[:, None]
        idx = np.where(valid, starts[:, None] + ar[None, :], starts[:, None])
        seq = np.where(valid, np.asarray(self.data.tokens[idx.ravel()]).reshape(idx.shape), self.pad).astype(np.int64)
        return seq[:, :-1], seq[:, 1:], int(lens.sum())


class GenerationTask(Task):
    """Next-token prediction on the token dataset ``cfg.data.tokens`` with the GPT of ``cfg.model``.

    Parameters
    ----------
    cfg
        The resolved run configuration.

    Raises
    ------
    ConfigError
        When ``data.tokens`` is not set.
    """

    final_metric_keys = ("val_loss_per_position",)

    def __init__(self, cfg: TrainConfig) -> None:
        if not cfg.data.tokens:
            raise ConfigError("data.tokens: the token dataset folder is required (hepscale tokenize ... --output DIR)")
        self.cfg = cfg

    # ------------------------------------------------------------------ data and model
    def load(self, runtime: Runtime) -> JetBatcher:
        cfg, S = self.cfg, self.cfg.data.seq_len
        self.runtime = runtime
        train_data, self.tokenizer = load_tokens(cfg.data.tokens, "train")
        self.val_data, _ = load_tokens(cfg.data.tokens, "val")
        if train_data.n_jets == 0:
            raise TrainError(f"token dataset {cfg.data.tokens}: train.bin holds no jets")
        check_seq_len(S, train_data, self.val_data, source=cfg.data.tokens)
        self.gpt_config = model_config_for(cfg, self.tokenizer)
        lengths = np.minimum(train_data.lengths, S + 1)
        n_sub = unique_subset(lengths, cfg.data.unique_tokens, where="data.unique_tokens",
                              source=f"{cfg.data.tokens}/train.bin", unit="tokens")
        self.batcher = JetBatcher(train_data, n_jets=n_sub, seq_len=S, pad=self.tokenizer.pad, seed=cfg.seed)
        self.n_val = min(cfg.eval.jets, self.val_data.n_jets)
        if self.n_val == 0:
            raise TrainError(f"token dataset {cfg.data.tokens}: val.bin holds no jets for validation")
        return self.batcher

    @property
    def seq_len(self) -> int:
        return self.cfg.data.seq_len

    def model_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.gpt_config)

    def param_counts(self) -> tuple[int, int]:
        return n_params_non_embedding(self.gpt_config), n_params_total(self.gpt_config)

    def build_model(self) -> GPT:
        return GPT(self.gpt_config)

    # ------------------------------------------------------------------ loss and evaluation
    def loss(self, model: torch.nn.Module, ids: np.ndarray) -> torch.Tensor:
        device = self.runtime.device
        x, y, _ = self.batcher.make_batch(ids)
        xt = torch.from_numpy(x).to(device, non_blocking=True)
        yt = torch.from_numpy(y).to(device, non_blocking=True)
        with self.runtime.autocast:
            _, loss = model(xt, yt)
        return loss

    def evaluate(self, model: torch.nn.Module, *, final: bool) -> Evaluation:
        """Mean next-token loss over the first ``eval.jets`` jets of ``val.bin`` (real targets only);
        with ``final``, also per input position (null where no jet reaches the position)."""
        rt, S, pad = self.runtime, self.cfg.data.seq_len, self.tokenizer.pad
        pos_sum = torch.zeros(S, dtype=torch.float64, device=rt.device)
        pos_n = torch.zeros(S, dtype=torch.float64, device=rt.device)
        ids = np.arange(rt.dist.rank, self.n_val, rt.dist.world)
        val_batcher = JetBatcher(self.val_data, n_jets=self.n_val, seq_len=S, pad=pad, seed=0)
        batch = self.cfg.eval.batch_size
        for i in range(0, len(ids), batch):
            x, y, _ = val_batcher.make_batch(ids[i : i + batch])
            xt, yt = torch.from_numpy(x).to(rt.device), torch.from_numpy(y).to(rt.device)
            with rt.autocast:
                _, loss = model(xt, yt, reduction="none")
            pos_sum += loss.double().sum(0)
            pos_n += (yt != pad).double().sum(0)
        rt.dist.all_reduce(pos_sum)
        rt.dist.all_reduce(pos_n)
        val = float(pos_sum.sum() / pos_n.sum().clamp(min=1))
        if not final:
            return Evaluation(val)
        per = (pos_sum / pos_n.clamp(min=1)).tolist()
        return Evaluation(val, result={"val_loss_per_position": [p if n > 0 else None for p, n in zip(per, pos_n.tolist())]})

    # ------------------------------------------------------------------ run folder, checkpoint, result
    def write_files(self, folder: RunFolder) -> None:
        from hepscale._io import atomic_write_json

        atomic_write_json(folder.tokenizer, self.tokenizer.to_dict())

    def checkpoint_keys(self) -> dict[str, Any]:
        return {"tokenizer_fingerprint": self.tokenizer.fingerprint()}

    def check_checkpoint(self, ckpt: Mapping[str, Any], path: Path) -> None:
        tokens = self.cfg.data.tokens
        if ckpt["model_config"].get("vocab_size") != self.gpt_config.vocab_size:
            raise CheckpointError(
                f"checkpoint {path} has vocabulary {ckpt['model_config'].get('vocab_size')}, the tokenizer of "
                f"{tokens} has {self.gpt_config.vocab_size}"
            )
        if ckpt.get("tokenizer_fingerprint") != self.tokenizer.fingerprint():
            raise CheckpointError(f"checkpoint {path} was trained on another binning than {tokens}/tokenizer.json")

    def result_keys(self) -> dict[str, Any]:
        tok = self.tokenizer
        return {"tokenizer": {"path": self.cfg.data.tokens, "vocab_size": tok.vocab_size, "fingerprint": tok.fingerprint()}}
