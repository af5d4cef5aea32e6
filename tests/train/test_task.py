"""The task interface is real: a toy classification task trains, resumes exactly and finishes
through the same loop as generation; the config and budget modules stay free of torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _training import without_timing

from hepscale.config import load_config
from hepscale.errors import EXIT_CHECKPOINT, EXIT_OK
from hepscale.runs.folder import RunFolder
from hepscale.train import (
    EpochSampler,
    Evaluation,
    Task,
    TrainConfig,
    load_checkpoint,
    train,
)
from hepscale.train.distributed import Runtime

FEATURES, HIDDEN = 4, 16


class ToyTagger(Task):
    """Two classes of random 'jets' (FEATURES numbers each), separated by a hyperplane; a tiny MLP."""

    final_metric_keys = ("accuracy",)

    def __init__(self, *, seed: int, n_train: int = 96, n_val: int = 40) -> None:
        rng = np.random.default_rng(11)
        x = rng.normal(size=(n_train + n_val, FEATURES)).astype(np.float32)
        y = (x @ rng.normal(size=FEATURES) > 0).astype(np.int64)
        self.x, self.y, self.n_train, self.seed = torch.from_numpy(x), torch.from_numpy(y), n_train, seed

    def load(self, runtime: Runtime) -> EpochSampler:
        self.runtime = runtime
        return EpochSampler(np.ones(self.n_train, dtype=np.int64), seed=self.seed)  # one data unit per jet

    @property
    def seq_len(self) -> int:
        return 1

    def model_config(self) -> dict[str, Any]:
        return {"features": FEATURES, "hidden": HIDDEN, "classes": 2}

    def param_counts(self) -> tuple[int, int]:
        n = FEATURES * HIDDEN + HIDDEN + HIDDEN * 2 + 2
        return n, n

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 2))

    def loss(self, model: torch.nn.Module, ids: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(ids)
        with self.runtime.autocast:
            logits = model(self.x[t].to(self.runtime.device))
        return F.cross_entropy(logits.float(), self.y[t].to(self.runtime.device))

    def evaluate(self, model: torch.nn.Module, *, final: bool) -> Evaluation:
        x, y = self.x[self.n_train :], self.y[self.n_train :]
        logits = model(x)
        sums = torch.tensor([float(F.cross_entropy(logits, y, reduction="sum")), float((logits.argmax(1) == y).sum()),
                             float(len(y))], dtype=torch.float64)
        loss, correct, n = self.runtime.dist.all_reduce(sums).tolist()
        return Evaluation(loss / n, metrics={"val_accuracy": correct / n}, result={"accuracy": correct / n} if final else {})

    def result_keys(self) -> dict[str, Any]:
        return {"features": FEATURES}


def toy_config(*overrides: str) -> TrainConfig:
    base = {
        "model": {"size": "custom"},
        "data": {"batch_size": 8},
        "optim": {"lr": 3e-2, "warmup_steps": 2},
        "budget": {"steps": 30},
        "eval": {"every": 10},
        "checkpoint": {"every": 7},
        "device": "cpu",
    }
    return load_config(TrainConfig, base=base, overrides=list(overrides))


def test_toy_classification_task_trains_resumes_and_finishes(tmp_path: Path) -> None:
    cfg = toy_config()
    assert train(cfg, tmp_path / "full", task=ToyTagger(seed=cfg.seed), progress=False) == EXIT_OK
    stopped = toy_config("stop_after_steps=12")
    assert train(stopped, tmp_path / "part", task=ToyTagger(seed=cfg.seed), progress=False) == EXIT_CHECKPOINT
    part = RunFolder(tmp_path / "part")
    assert not part.finished and load_checkpoint(part.checkpoint)["step"] == 12
    assert train(cfg, part.path, task=ToyTagger(seed=cfg.seed), resume=True, progress=False) == EXIT_OK

    full = RunFolder(tmp_path / "full")
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(part.checkpoint)
    assert a["model"].keys() == b["model"].keys() and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["model_config"] == {"features": FEATURES, "hidden": HIDDEN, "classes": 2} and "tokenizer_fingerprint" not in a
    assert without_timing(full.read_metrics()) == without_timing(part.read_metrics())
    lines = full.read_metrics()
    assert [m["step"] for m in lines] == [10, 20, 30]
    assert list(lines[0])[5:7] == ["val_loss", "val_accuracy"]  # the task's metrics follow the validation loss

    res = full.read_result()  # schema-checked
    assert json.loads(part.result.read_text())["accuracy"] == res["accuracy"]
    keys = list(res)
    assert keys[keys.index("final_train_loss") + 1] == "accuracy" and keys[keys.index("elapsed_s") + 1] == "features"
    assert res["steps"] == 30 and res["tokens_seen"] == 30 * 8 and res["unique_tokens"] == 96  # one unit per jet
    assert res["epochs"] == pytest.approx(240 / 96)
    assert res["n_params_total"] == sum(p.numel() for p in ToyTagger(seed=0).build_model().parameters())
    assert res["flops"] == 6 * res["n_params_non_embedding"] * 8 * 1 * 30
    assert res["final_val_loss"] == lines[-1]["val_loss"] < math.log(2) and res["accuracy"] > 0.8
    assert "val_loss_per_position" not in res and "tokenizer" not in res


def test_config_and_budget_import_without_torch() -> None:
    code = "import hepscale.train.config, hepscale.train.budget, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
