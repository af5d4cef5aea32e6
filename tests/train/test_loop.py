"""The training loop with the generation task: result, metrics, exact resume, errors, budgets, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from _training import final_weights, metrics, tiny, without_timing, write_cfg

from hepscale.errors import EXIT_CHECKPOINT as CHECKPOINT_EXIT_CODE
from hepscale.models.gpt import GPT, GPTConfig, count_parameters
from hepscale.tokens.tokenizer import load_tokens
from hepscale.train import (
    JetBatcher,
    TrainConfig,
    TrainError,
    load_checkpoint,
    run_id,
    train,
)

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- training and resume
def test_train_result_and_metrics(tokens_dir: Path, tmp_path: Path) -> None:
    cfg = tiny(tokens_dir, "data.unique_tokens=400")
    assert train(cfg, tmp_path / "run", progress=False) == 0
    run = tmp_path / "run"
    res = json.loads((run / "result.json").read_text())
    lines = metrics(run)
    assert [m["step"] for m in lines] == [4, 8, 12]
    model = GPT(GPTConfig(**res["model_config"]))
    assert res["n_params_total"] == count_parameters(model)
    assert res["n_params_non_embedding"] == count_parameters(model, non_embedding=True)
    assert res["steps"] == 12 and res["run_id"] == run_id(cfg)
    assert res["flops_non_embedding"] == 6 * res["n_params_non_embedding"] * 8 * 23 * 12
    assert res["flops_total_params"] == 6 * res["n_params_total"] * 8 * 23 * 12
    # C as the generation study defines it: 6 N_incl B S steps (the non-embedding variant kept beside it)
    assert res["flops_n"] == "total" and res["flops"] == res["flops_total_params"]
    # U: the leading jets of train.bin whose (capped) tokens fit into 400
    data, _ = load_tokens(tokens_dir, "train")
    lengths = np.minimum(data.lengths, 24)
    n_sub = int(np.searchsorted(np.cumsum(lengths), 400, side="right"))
    assert res["unique_tokens"] == int(lengths[:n_sub].sum()) <= 400
    # D: recount the tokens of the batches the trainer drew (12 steps x 8 jets)
    ids = JetBatcher(data, n_jets=n_sub, seq_len=23, pad=0, seed=cfg.seed).next_ids(96)
    assert res["tokens_seen"] == int(lengths[ids].sum()) == lines[-1]["tokens"]
    assert res["epochs"] == pytest.approx(res["tokens_seen"] / res["unique_tokens"]) and res["epochs"] > 2
    assert res["final_val_loss"] == lines[-1]["val_loss"] < lines[0]["val_loss"] < np.log(131) + 0.5
    per_pos = res["val_loss_per_position"]
    assert len(per_pos) == 23 and per_pos[0] is not None
    assert per_pos[-1] is not None  # S = longest sequence - 1: the longest jets reach the last position
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["unique_tokens"] == 400
    assert {"code_version", "config", "tokens_seen", "unique_tokens", "model"} <= set(res)


@pytest.mark.parametrize("optim", ["adamw", "ranger"])
def test_interrupted_and_resumed_run_is_exact(tokens_dir: Path, tmp_path: Path, optim: str) -> None:
    cfg = tiny(tokens_dir, f"optim.name={optim}", "optim.lookahead_k=3")
    assert train(cfg, tmp_path / "full", progress=False) == 0
    stopped = tiny(tokens_dir, f"optim.name={optim}", "optim.lookahead_k=3", "stop_after_steps=7")
    assert train(stopped, tmp_path / "part", progress=False) == CHECKPOINT_EXIT_CODE
    assert not (tmp_path / "part" / "result.json").exists()
    assert load_checkpoint(tmp_path / "part" / "checkpoints" / "ckpt.pt")["step"] == 7
    assert train(cfg, tmp_path / "part", resume=True, progress=False) == 0
    a, b = final_weights(tmp_path / "full"), final_weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert without_timing(metrics(tmp_path / "full")) == without_timing(metrics(tmp_path / "part"))
    ra = json.loads((tmp_path / "full" / "result.json").read_text())
    rb = json.loads((tmp_path / "part" / "result.json").read_text())
    for key in ("final_val_loss", "tokens_seen", "val_loss_per_position", "run_id", "flops"):
        assert ra[key] == rb[key]
    # a finished run is not trained again
    assert train(cfg, tmp_path / "part", resume=True, progress=False) == 0


def test_nan_loss_is_an_error_and_last_checkpoint_survives(
    tokens_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    original = GPT.forward

    def poisoned(self: GPT, *args: Any, **kwargs: Any) -> Any:
        logits, loss = original(self, *args, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] > 6 and loss is not None:
                loss = loss * float("nan")
        return logits, loss

    monkeypatch.setattr(GPT, "forward", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainError, match="non-finite .* step 8.*last good checkpoint"):
        train(tiny(tokens_dir), run, progress=False)
    ckpt = load_checkpoint(run / "checkpoints" / "ckpt.pt")
    assert ckpt["step"] == 5
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    assert not (run / "result.json").exists()



# ---------------------------------------------------------------------------- budgets
def test_token_and_flop_budgets(tokens_dir: Path, tmp_path: Path) -> None:
    cfg = tiny(tokens_dir, "budget.steps=null", "budget.flops=2e8", "eval.every=100")
    assert train(cfg, tmp_path / "f", progress=False) == 0
    res = json.loads((tmp_path / "f" / "result.json").read_text())
    per_step = 6 * res["n_params_total"] * 8 * 23  # C = 6 N_incl B S steps, the study's definition
    assert res["steps"] == int(np.ceil(2e8 / per_step)) and res["flops"] >= 2e8 > res["flops"] - per_step
    # the non-embedding variant, chosen explicitly: more steps for the same budget
    cfg = tiny(tokens_dir, "budget.steps=null", "budget.flops=2e8", "budget.flops_params=non_embedding",
               "eval.every=100")
    assert train(cfg, tmp_path / "n", progress=False) == 0
    ne = json.loads((tmp_path / "n" / "result.json").read_text())
    per_step_ne = 6 * ne["n_params_non_embedding"] * 8 * 23
    assert ne["flops_n"] == "non_embedding" and ne["steps"] == int(np.ceil(2e8 / per_step_ne)) > res["steps"]
    assert ne["flops"] == ne["flops_non_embedding"] >= 2e8
    cfg = tiny(tokens_dir, "budget.steps=null", "budget.tokens=1500", "eval.every=100")
    assert train(cfg, tmp_path / "t", progress=False) == 0
    res = json.loads((tmp_path / "t" / "result.json").read_text())
    assert abs(res["tokens_seen"] - 1500) < 2 * 8 * 24  # within a couple of batches of the budget


# ---------------------------------------------------------------------------- DDP
@pytest.mark.slow
def test_ddp_two_processes_matches_gradient_accumulation(tokens_dir: Path, tmp_path: Path) -> None:
    """2 gloo processes with 4 jets each = 1 process with 2 micro-batches of 4 jets."""
    cfg_path = write_cfg(tmp_path / "cfg.yaml", tiny(tokens_dir, "budget.steps=6", "eval.every=3"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "hepscale.train", str(cfg_path), "--output", str(tmp_path / "ddp"),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a hung rendezvous: end torchrun and its workers (own process group)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    single = tiny(tokens_dir, "budget.steps=6", "eval.every=3", "data.grad_accum=2")
    assert train(single, tmp_path / "one", progress=False) == 0
    a, b = final_weights(tmp_path / "ddp"), final_weights(tmp_path / "one")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    ra = json.loads((tmp_path / "ddp" / "result.json").read_text())
    rb = json.loads((tmp_path / "one" / "result.json").read_text())
    assert ra["world_size"] == 2 and ra["tokens_seen"] == rb["tokens_seen"]
    assert ra["final_val_loss"] == pytest.approx(rb["final_val_loss"], rel=1e-4)
    for ma, mb in zip(metrics(tmp_path / "ddp"), metrics(tmp_path / "one")):
        assert ma["train_loss"] == pytest.approx(mb["train_loss"], rel=1e-4)


def test_example_configs_load() -> None:
    paths = sorted((ROOT / "configs" / "train").glob("*.yaml"))
    assert paths
    from hepscale.models.tagger_sizes import tagger_sizes
    from hepscale.train.config import load_run_config
    from hepscale.tasks.tagging.config import TaggerTrainConfig

    kinds = set()
    for p in paths:
        cfg = load_run_config(p)
        kinds.add(type(cfg))
        if isinstance(cfg, TaggerTrainConfig):
            assert cfg.model.size in tagger_sizes(), p
        else:
            assert cfg.model.size in {"Pico", "XXS", "XS", "S", "M-", "M", "L", "XL", "XXL", "custom"}, p
    assert kinds == {TrainConfig, TaggerTrainConfig}


@pytest.mark.gpu
def test_cuda_bf16_run(tokens_dir: Path, tmp_path: Path) -> None:
    cfg = tiny(tokens_dir, "device=cuda", "dtype=bfloat16")
    assert train(cfg, tmp_path / "gpu", progress=False) == 0
    res = json.loads((tmp_path / "gpu" / "result.json").read_text())
    assert np.isfinite(res["final_val_loss"]) and res["final_val_loss"] < np.log(131)


def test_sigusr1_in_process(tokens_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = GPT.forward

    def signalling(self: GPT, *args: Any, **kwargs: Any) -> Any:
        if self.training:
            calls["n"] += 1
            if calls["n"] == 3:  # during step 3: the checkpoint comes at the end of that step
                os.kill(os.getpid(), signal.SIGUSR1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GPT, "forward", signalling)
    assert train(tiny(tokens_dir), tmp_path / "run", progress=False) == CHECKPOINT_EXIT_CODE
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "ckpt.pt")["step"] == 3
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # handler restored
