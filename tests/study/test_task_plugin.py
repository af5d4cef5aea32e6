"""A third task, defined in tests/_regression_task.py and registered through ``HEPSCALE_TASKS``, runs a
study end to end (plan, local executor, finish, and as an HTCondor DAG on the pool harness) with no
change to the library: a task is one folder (here one module) plus one registry line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from _study_setup import write_study

from hepscale.runs.table import read_runs_table
from hepscale.study import expand_runs, load_study, main, run_study
from hepscale.tasks import task_names, task_spec

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


@pytest.fixture(autouse=True)
def regression_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """The task registered in this process and in every job it starts (tests/ on their Python path)."""
    monkeypatch.setenv("HEPSCALE_TASKS", "_regression_task:SPEC")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]))


def _study(output: Path, jets: Path) -> dict:
    return {
        "name": "mass_regression",
        "task": "regression",
        "output": str(output),
        "data": {"jets": str(jets), "split": {"val_fraction": 0.3, "seed": 2}},
        "train": {"config": str(ROOT / "configs" / "train" / "tagger_cpu.yaml"),
                  "overrides": ["task=regression", "data.max_particles=16", "data.batch_size=16", "eval.every=4", "checkpoint.every=4",
                                "optim.warmup_steps=2"]},
        "grid": {"models": ["S", "M"], "lr": {"S": 1.0e-2, "M": 1.0e-2}, "steps": [8]},
        "evaluation": {"figures": False},
        "fit": {"n_bootstrap": 10, "fits": [{"name": "loss_vs_N", "law": "log", "x": "N"}]},
        "retries": 0,
    }


def test_the_task_is_registered_and_its_study_refuses_other_tasks_keys(tmp_path: Path, jets_file: Path) -> None:
    assert task_names() == ("generation", "tagging", "regression") and task_spec("regression").unit == "jets"
    data = _study(tmp_path / "out", jets_file)
    data["grid"]["tokens"] = [1000]
    with pytest.raises(Exception, match=r"grid\.tokens: a regression study counts jets: use grid\.jets"):
        load_study(write_study(tmp_path / "bad.yaml", data))
    data = _study(tmp_path / "out", jets_file)
    data["grid"]["models"] = ["Pico"]
    with pytest.raises(Exception, match=r"grid\.models\[0\]: 'Pico' is not a size of the regression sizes"):
        load_study(write_study(tmp_path / "bad.yaml", data))


def test_plan_run_and_finish_a_study_of_the_third_task(tmp_path: Path, jets_file: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = write_study(tmp_path / "s.yaml", _study(tmp_path / "out", jets_file))
    assert main(["plan", str(path)]) == 0
    plan = capsys.readouterr().out
    assert "study mass_regression: 2 runs" in plan and "D: jets seen" in plan
    out = run_study(path, jobs=2, progress=False)
    assert out["done"] == 2 and not out["failed"], out
    root = tmp_path / "out"
    table = read_runs_table(root / "runs.parquet")
    runs = expand_runs(load_study(path))
    assert sorted(table["run_id"]) == sorted(r.run_id for r in runs)
    assert set(table["task"]) == {"regression"} and set(table["data_unit"]) == {"jets"}
    assert (table["items_seen"] == 8 * 16).all() and (table["tokens_seen"] == table["items_seen"]).all()
    assert np.isfinite(table["final_val_loss"]).all()
    data_dirs = list((root / "data").glob("regression-*"))
    assert len(data_dirs) == 1 and (data_dirs[0] / "info.json").is_file()  # prepared by the task's spec
    summary = (root / "summary.txt").read_text()
    assert "val MSE" in summary and len(summary.splitlines()) == 3
    fit = json.loads((root / "fits" / "loss_vs_N.json").read_text())
    assert fit["law"] == "log"
    before = (root / "runs.parquet").stat().st_mtime_ns
    assert main(["finish", str(root)]) == 0  # the end of the study again, on the same runs
    assert (root / "runs.parquet").stat().st_mtime_ns >= before and (root / "summary.txt").read_text() == summary


@pytest.mark.slow
@pytest.mark.condor
def test_a_study_of_the_third_task_runs_on_the_pool(tmp_path: Path, jets_file: Path) -> None:
    from _condor_pool import run_dag

    path = write_study(tmp_path / "s.yaml", _study(tmp_path / "pool study", jets_file))
    site = tmp_path / "site.yaml"
    resources = {"request_cpus": 1, "request_gpus": 0, "request_memory": "2GB", "request_disk": "1GB"}
    site.write_text(yaml.safe_dump({
        "name": "test-pool", "software": {"python": sys.executable},
        "gpu": {"min_memory_mb": 0, "inference": False},
        # the task's package on the workers: here the tests folder, named by the job environment
        "environment": {"PYTHONHASHSEED": "0", "HEPSCALE_TASKS": "_regression_task:SPEC", "PYTHONPATH": str(TESTS)},
        "train": {**resources, "max_retries": 1}, "light": {**resources, "max_retries": 1},
    }))
    assert main(["condor", str(path), "--site", str(site)]) == 0
    folder = tmp_path / "pool study"
    result = run_dag(folder / "study.dag", tmp_path / "pool", slots=2)
    assert result.ok, "\n".join(result.events)
    assert {name.split(":")[0] for name in result.nodes} == {"prepare", "train", "finish"}
    table = read_runs_table(folder / "runs.parquet")
    assert sorted(table["run_id"]) == sorted(r.run_id for r in expand_runs(load_study(path)))
    assert set(table["task"]) == {"regression"} and np.isfinite(table["final_val_loss"]).all()
    assert (folder / "fits" / "loss_vs_N.json").is_file() and "val MSE" in (folder / "summary.txt").read_text()
