"""Soak: a study killed with SIGKILL five times at random moments ends as if it had never been.

The tiny study (Pico and XXS, ``-j 2``) runs as ``python -m hepscale study run`` and is killed
(SIGKILL, as the OOM killer would) each time after a seeded random delay once its trainers are
training; its trainers get SIGTERM from the kernel (parent-death signal), checkpoint and exit.
Then it runs to completion. Its runs table, every run's final weights and ``metrics.jsonl`` must
equal those of an uninterrupted run of the same study in another folder, bit for bit (timing
columns aside), and no process of the study may be left.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _processes import gone, hepscale_children, kill_all, study_processes, wait_until
from _study_setup import tiny_dict, write_study

from hepscale.runs.folder import RunFolder
from hepscale.study import expand_runs, load_study, run_study

pytestmark = pytest.mark.slow

SEED = 20240611
KILLS = 5
#: the longest random wait (s) between seeing the trainers train and the SIGKILL
MAX_DELAY = 1.2
#: training steps per run (Pico and XXS of configs/models.yaml at a few ms a step)
STEPS = 300
#: timing fields of metrics.jsonl and columns of the runs table (wall clock, code provenance)
TIMING = ("elapsed_s", "tokens_per_s", "positions_per_s")


def _study(tmp_path: Path, name: str, jets: Path) -> Path:
    data = tiny_dict(tmp_path / name, jets)
    data["grid"]["steps"] = [STEPS]  # several seconds of training per run: room for five kills
    data["evaluation"]["enabled"] = False
    data["fit"]["fits"] = []
    (tmp_path / "studies").mkdir(exist_ok=True)  # not in the study folder: its command line does not name it
    return write_study(tmp_path / "studies" / f"{name}.yaml", data)


def _table(folder: Path) -> pd.DataFrame:
    table = pd.read_parquet(folder / "runs.parquet")
    drop = [c for c in table.columns if "code_version" in c or c.split(".")[-1] in TIMING]
    return table.drop(columns=drop).sort_values("run_id").reset_index(drop=True)


def _metrics(run: RunFolder) -> list[dict[str, Any]]:
    return [{k: v for k, v in line.items() if k not in TIMING} for line in run.read_metrics()]


def _weights(run: RunFolder) -> dict[str, Any]:
    from hepscale.train.checkpoint import load_checkpoint

    return load_checkpoint(run.checkpoint)["model"]


def _progress(folder: Path, since_ns: int) -> bool:
    """True when a run folder was written since ``since_ns`` (a trainer resumed or trained)."""
    for path in [*folder.glob("runs/*/metrics.jsonl"), *folder.glob("runs/*/checkpoints/ckpt.pt")]:
        try:
            if path.stat().st_mtime_ns >= since_ns:
                return True
        except FileNotFoundError:
            continue
    return False


def test_study_killed_five_times_ends_as_an_uninterrupted_one(tmp_path: Path, jets_file: Path) -> None:
    reference = _study(tmp_path, "reference", jets_file)
    soaked = _study(tmp_path, "soaked", jets_file)
    ref_out = run_study(reference, jobs=2, progress=False, fits=False)  # the same threads per job as -j 2
    assert ref_out["done"] == 2 and not ref_out["failed"]
    folder = tmp_path / "soaked"
    rng = random.Random(SEED)
    command = [sys.executable, "-m", "hepscale", "study", "run", str(soaked), "--local", "-j", "2", "--no-progress",
               "--no-fits"]
    kills = 0
    try:
        for cycle in range(KILLS):
            since = time.time_ns()
            with open(tmp_path / f"cycle{cycle}.log", "wb") as log:
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            training = wait_until(lambda: proc.poll() is not None or (
                bool(hepscale_children(proc.pid, "train")) and _progress(folder, since)), timeout=180)
            assert training, f"cycle {cycle}: no trainer trained within 180 s"
            time.sleep(rng.uniform(0.0, MAX_DELAY))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
            # the kernel stops the trainers with the study (SIGTERM: checkpoint, exit 85)
            assert wait_until(lambda: not study_processes(folder), timeout=30), (
                f"cycle {cycle}: left behind {[p.cmdline() for p in study_processes(folder)]}")
        assert kills == KILLS, f"only {kills} of {KILLS} kills found the study running"
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "runs: 2 of 2 done, 0 failed, 0 interrupted" in done.stdout
    finally:
        leftovers = study_processes(folder)
        kill_all(leftovers)
    assert gone(leftovers) and not leftovers
    study = load_study(soaked)
    resumed = 0
    for run in expand_runs(study):
        mine, theirs = RunFolder.in_study(folder, run.run_id), RunFolder.in_study(tmp_path / "reference", run.run_id)
        resumed += mine.log("train").read_text().count("# attempt") - 1
        assert _metrics(mine) == _metrics(theirs), run.model
        steps = [line["step"] for line in mine.read_metrics()]
        assert steps == sorted(set(steps))  # no line twice
        a, b = _weights(mine), _weights(theirs)
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].dtype == b[key].dtype and bool((a[key] == b[key]).all()), f"{run.model}: {key}"
        assert json.loads(mine.result.read_text())["steps"] == STEPS
    assert resumed >= KILLS  # each kill stopped at least one trainer that a later run resumed
    pd.testing.assert_frame_equal(_table(folder), _table(tmp_path / "reference"), check_exact=True)
