"""A tiny study as an HTCondor DAG on a pool without a shared filesystem (tests/_condor_pool.py), with one
training job evicted mid-run: it finishes with the runs table of the local executor. The DAG's FINAL
node alone: it collects the runs that finished when another failed for good.

The site profile of the pool is written here: the software on the "workers" is this test's Python
(``software.python`` = ``sys.executable``, whose environment has hepscale installed), no GPUs, and a
checkpoint exit interval so short that every training execution checkpoints and exits with 85
after one step, so that every restart comes from HTCondor's spool. The module takes about a minute and a
half on two cores (every job starts a Python, and numba compiles the observables in every evaluation job, as
on a pool).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from _condor_pool import Execution, run_dag
from _study_setup import tiny_dict, write_study

from hepscale.runs.table import read_runs_table
from hepscale.study import expand_runs, load_study, main, run_study

pytestmark = [pytest.mark.slow, pytest.mark.condor]

#: columns that must agree between the local executor and the pool (run ids, N, D, C, losses, SWD)
COLUMNS = ["run_id", "model", "n_params_non_embedding", "n_params_total", "steps", "tokens_seen", "unique_tokens",
           "flops", "final_val_loss", "final_train_loss", "evaluation.swd.mean", "evaluation.swd.std"]


def _site(path: Path) -> Path:
    resources = {"request_cpus": 1, "request_gpus": 0, "request_memory": "2GB", "request_disk": "1GB"}
    path.write_text(yaml.safe_dump({
        "name": "test-pool",
        "checkpoint_exit_minutes": 1e-4,  # exit with 85 after the first step of every execution
        "software": {"python": sys.executable},
        "gpu": {"min_memory_mb": 0, "inference": False},
        "environment": {"PYTHONHASHSEED": "0"},
        "train": {**resources, "max_retries": 2},
        "light": {**resources, "max_retries": 1},
    }))
    return path


def _tiny(output: Path, jets: Path) -> dict:
    data = tiny_dict(output, jets)
    data["grid"]["steps"] = [4]  # every training execution of the pool starts a Python: keep them few
    return data


@pytest.fixture(scope="module")
def local_study(tmp_path_factory: pytest.TempPathFactory, jets_file: Path) -> Path:
    """The tiny study run by the local executor: its folder."""
    tmp = tmp_path_factory.mktemp("local")
    out = run_study(write_study(tmp / "local.yaml", _tiny(tmp / "local", jets_file)), jobs=2, progress=False)
    assert out["done"] == 2 and not out["failed"]
    return tmp / "local"


def test_condor_dag_on_a_pool_matches_the_local_study(tmp_path: Path, jets_file: Path, local_study: Path) -> None:
    pool_study = write_study(tmp_path / "pool.yaml", _tiny(tmp_path / "pool study", jets_file))
    assert main(["condor", str(pool_study), "--site", str(_site(tmp_path / "site.yaml"))]) == 0
    folder = tmp_path / "pool study"
    for sub in folder.glob("*.sub"):  # nothing absolute: every path is relative to the study folder
        assert str(tmp_path) not in sub.read_text(), sub
    assert str(tmp_path) not in (folder / "study.dag").read_text()
    runs = expand_runs(load_study(pool_study))
    victim = f"train:{len(runs) - 1}"
    evicted: list[Execution] = []

    def evict(execution: Execution) -> bool:
        # a restart from the spool that has resumed: evict it while it trains past its checkpoint
        if evicted or execution.node != victim or not execution.spooled or "resumed" not in execution.stderr_text():
            return False
        evicted.append(execution)
        return True

    result = run_dag(folder / "study.dag", tmp_path / "pool", slots=2, evict=evict)
    assert result.ok, "\n".join(result.events)
    assert {name.split(":")[0] for name in result.nodes} == {"prepare", "train", "sample", "evaluate", "finish"}

    # the eviction: the evicted execution had checkpointed a step further on SIGTERM (exit 85), but the next
    # one resumed from the spooled checkpoint of the execution before it
    (gone,) = evicted
    (job,) = result.nodes[victim].jobs
    starts = job.executions
    i = starts.index(gone)
    assert gone.evicted and gone.exit_code == 85 and len(starts) == 5  # 4 steps, one per execution, + the eviction

    def resumed_at(e: Execution) -> int:
        return int(e.stderr_text().split("at step ")[1].split()[0])

    assert resumed_at(starts[i + 1]) == resumed_at(gone)  # not the step the evicted execution checkpointed
    assert f"checkpoint at step {resumed_at(gone) + 1}" in gone.stderr_text()
    assert all(e.spooled for e in starts[1:]) and not starts[0].spooled

    # the same runs table as the local executor
    local_table = read_runs_table(local_study / "runs.parquet")
    pool_table = read_runs_table(folder / "runs.parquet")
    assert sorted(pool_table["run_id"]) == sorted(r.run_id for r in runs) == sorted(local_table["run_id"])
    a = local_table.sort_values("run_id").reset_index(drop=True)[COLUMNS]
    b = pool_table.sort_values("run_id").reset_index(drop=True)[COLUMNS]
    for column in COLUMNS:
        if pd.api.types.is_numeric_dtype(a[column]):
            np.testing.assert_allclose(b[column].to_numpy(float), a[column].to_numpy(float), rtol=1e-9, err_msg=column)
        else:
            assert list(a[column]) == list(b[column]), column
    assert (folder / "fits" / "loss_vs_N.json").is_file()


def _final_node_only(folder: Path) -> Path:
    """The DAG of ``folder`` reduced to its FINAL node (as if every other node had run or failed)."""
    lines = [line for line in (folder / "study.dag").read_text().splitlines()
             if line.split()[:1] in (["FINAL"], ["SCRIPT"], ["VARS"]) and " finish " in f"{line} "]
    path = folder / "finish_only.dag"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_final_node_collects_the_runs_that_finished(tmp_path: Path, jets_file: Path, local_study: Path) -> None:
    """One run failed for good: the FINAL node still collects the other and skips the fit that needs
    two; with no run finished it fails in its PRE script; a failed fit fails it after the transfer."""
    data = _tiny(tmp_path / "study", jets_file)
    path = write_study(tmp_path / "s.yaml", data)
    site = ["--site", str(_site(tmp_path / "site.yaml"))]
    assert main(["condor", str(path), "--no-prepare", *site]) == 0
    folder = tmp_path / "study"
    dag = _final_node_only(folder)
    assert dag.read_text().count("\n") == 4  # FINAL, PRE, POST, VARS

    result = run_dag(dag, tmp_path / "pool0")  # nothing finished: the PRE script fails the node, no job
    assert not result.ok and result.nodes["finish"].status == "failed" and not result.executions()
    assert not (folder / "runs.parquet").exists()

    runs = expand_runs(load_study(path))
    survivor = runs[1].run_id
    (folder / "runs" / survivor).mkdir(parents=True, exist_ok=True)
    for name in ("result.json", "config.yaml"):
        shutil.copy2(local_study / "runs" / survivor / name, folder / "runs" / survivor / name)
    result = run_dag(dag, tmp_path / "pool1")
    assert result.nodes["finish"].status == "done", "\n".join(result.events)
    assert (folder / "finish.inputs").read_text() == f"finish_inputs = plan.json, runs/{survivor}/result.json\n"
    table = read_runs_table(folder / "runs.parquet")
    local_row = read_runs_table(local_study / "runs.parquet").set_index("run_id").loc[survivor]
    assert list(table["run_id"]) == [survivor]
    np.testing.assert_allclose(table.iloc[0]["final_val_loss"], local_row["final_val_loss"], rtol=1e-12)
    record = json.loads((folder / "finish.json").read_text())
    assert record["table"]["rows"] == 1 and record["fits_skipped"] == ["loss_vs_N"]
    assert record["fits_failed"] == [] and (folder / "summary.txt").is_file() and (folder / "fits").is_dir()

    # both runs finished: the good fit comes back, a broken one (a column the table lacks) fails the node
    # after the transfer
    shutil.copytree(local_study / "runs" / runs[0].run_id, folder / "runs" / runs[0].run_id, dirs_exist_ok=True)
    data["fit"]["fits"].append({"name": "broken", "law": "log", "x": "N", "args": ["--y-col", "no_such_column"]})
    assert main(["condor", str(write_study(path, data)), "--no-prepare", *site]) == 0
    result = run_dag(_final_node_only(folder), tmp_path / "pool2")
    (job,) = result.nodes["finish"].jobs
    assert job.exit_code == 0 and result.nodes["finish"].status == "failed"  # the POST script's verdict
    record = json.loads((folder / "finish.json").read_text())
    assert record["table"]["rows"] == 2 and record["fits_failed"] == ["broken"]
    assert (folder / "fits" / "loss_vs_N.json").is_file() and (folder / "fits" / "broken.log").is_file()
    local_fit = json.loads((local_study / "fits" / "loss_vs_N.json").read_text())
    assert json.loads((folder / "fits" / "loss_vs_N.json").read_text())["params"] == local_fit["params"]
