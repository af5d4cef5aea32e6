"""``hepscale train`` (:mod:`hepscale.train.cli`): SIGTERM from outside, config errors, exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _training import metrics, tiny, write_cfg

from hepscale.config import ConfigError
from hepscale.errors import EXIT_CHECKPOINT as CHECKPOINT_EXIT_CODE
from hepscale.train import CheckpointError, TrainError, load_checkpoint, train
from hepscale.train.cli import main


def test_sigterm_checkpoints_and_exits_85(tokens_dir: Path, tmp_path: Path) -> None:
    cfg_path = write_cfg(tmp_path / "cfg.yaml", tiny(tokens_dir, "budget.steps=100000", "eval.every=50"))
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "hepscale.train", str(cfg_path), "--output", str(run)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (run / "metrics.jsonl").is_file() or not metrics(run):  # training is under way
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == CHECKPOINT_EXIT_CODE, err
    step = load_checkpoint(run / "checkpoints" / "ckpt.pt")["step"]
    assert 50 <= step < 100000 and not (run / "result.json").exists()
    # resuming with a shorter budget is a different config: refused, checkpoint intact
    with pytest.raises(CheckpointError, match="budget.steps"):
        train(tiny(tokens_dir, "budget.steps=10", "eval.every=50"), run, resume=True, progress=False)
    assert load_checkpoint(run / "checkpoints" / "ckpt.pt")["step"] == step


def test_threads_option(tokens_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    cfg_path = write_cfg(tmp_path / "cfg.yaml", tiny(tokens_dir, "budget.steps=2", "eval.every=2"))
    for bad in ("0", "two"):
        with pytest.raises(SystemExit) as stop:
            main([str(cfg_path), "--output", str(tmp_path / "bad"), "--threads", bad])
        assert stop.value.code == 2 and "--threads" in capsys.readouterr().err
    assert torch.get_num_threads() == 1  # the tests' own setting
    assert main([str(cfg_path), "--output", str(tmp_path / "run"), "--threads", "2"]) == 0
    assert torch.get_num_threads() == 2 and (tmp_path / "run" / "result.json").is_file()


# ---------------------------------------------------------------------------- errors
def test_config_errors_via_cli(tokens_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = write_cfg(tmp_path / "cfg.yaml", tiny(tokens_dir))
    out = str(tmp_path / "run")
    assert main([str(cfg_path), "optim.learning_rate=1", "--output", out]) == 2
    err = capsys.readouterr().err
    assert "optim.learning_rate" in err and "valid keys are" in err and "lr" in err
    assert main([str(cfg_path), "optim.lr=fast", "--output", out]) == 2
    assert "optim.lr" in capsys.readouterr().err
    assert main([str(cfg_path), "model.vocab_size=500", "--output", out]) == 2
    err = capsys.readouterr().err
    assert "model.vocab_size=500" in err and "131" in err and "tokenizer.json" in err
    assert main([str(cfg_path), "model.size=Giant", "--output", out]) == 2
    assert "Pico" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="exactly one"):
        tiny(tokens_dir, "budget.tokens=100")
    assert not (tmp_path / "run" / "result.json").exists()


def test_existing_run_needs_resume_and_corrupt_checkpoint(
    tokens_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    cfg = tiny(tokens_dir, "stop_after_steps=5")
    assert train(cfg, run, progress=False) == CHECKPOINT_EXIT_CODE
    with pytest.raises(TrainError, match="--resume"):
        train(cfg, run, progress=False)
    (run / "checkpoints" / "ckpt.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    cfg_path = write_cfg(tmp_path / "cfg.yaml", tiny(tokens_dir))
    assert main([str(cfg_path), "--output", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "ckpt.pt" in err and "corrupt" in err

