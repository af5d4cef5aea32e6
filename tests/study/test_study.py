from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import yaml
from _synthetic import random_jets

from hepscale.condor import condor_arguments, validate_submit
from hepscale.config import ConfigError
from hepscale.jets.dataset import write_jets
from hepscale.models.gpt import model_sizes
from hepscale.study.study import (
    collect,
    data_paths,
    expand_runs,
    format_plan,
    job_commands,
    load_study,
    main,
    plan_rows,
    prepare,
    run_study,
)
from hepscale.train.trainer import load_run_config, run_id
from processors.jets import JetProcessor

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted((ROOT / "configs" / "studies").glob("*.yaml"))
MODELS_YAML = yaml.safe_load((ROOT / "hepscale" / "data" / "models.yaml").read_text())["sizes"]


def make_jets(n: int, *, seed: int = 0, n_max: int = 30) -> ak.Array:
    return random_jets(n, seed=seed, n_max=n_max)


@pytest.fixture(scope="module")
def jets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jets") / "jets.parquet"
    write_jets(path, make_jets(600, seed=3))
    return path


def tiny_dict(output: Path, jets: Path) -> dict[str, Any]:
    return {
        "name": "tiny",
        "output": str(output),
        "data": {"jets": str(jets), "tokenizer": {"n_pt": 8, "n_eta": 4, "n_phi": 4, "max_constituents": 22,
                                                  "val_fraction": 0.4}},
        "train": {"config": str(ROOT / "configs" / "train" / "quick_cpu.yaml"),
                  "overrides": ["data.seq_len=24", "data.batch_size=8", "eval.every=4", "eval.jets=16",
                                "eval.batch_size=8", "checkpoint.every=2", "optim.warmup_steps=2"]},
        "grid": {"models": ["Pico", "XXS"], "lr": {"Pico": 3.0e-3, "XXS": 2.0e-3}, "steps": [8]},
        "evaluation": {"samples": 120, "n": 60, "bootstraps": 3, "projections": 20, "figures": False, "batch": 64},
        "fit": {"n_bootstrap": 10, "fits": [{"name": "loss_vs_N", "law": "log", "x": "N"}]},
        "retries": 0,
    }


def write_study(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _nested_set(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    node = data
    *parents, last = key.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    return data


# ---------------------------------------------------------------------------- configs
@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_studies_load_and_expand(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # relative paths of shipped studies are relative to the repository root
    study = load_study(path)
    runs = expand_runs(study)
    assert runs and len({r.run_id for r in runs}) == len(runs)
    for r in runs[:3]:
        cfg = load_run_config(study.train.config, r.overrides)
        assert run_id(cfg) == r.run_id
        assert cfg.model.size == r.model and cfg.optim.lr == study.grid.lr[r.model]
        assert cfg.data.tokens == data_paths(study)["tokens"]
    assert set(study.grid.lr) == set(study.grid.models)  # a learning rate per size
    rows = plan_rows(study, runs, study_dir=Path("/nonexistent"))
    for row, run in zip(rows, runs):
        B, S = run.config.data.batch_size, run.config.data.seq_len
        assert row.flops == pytest.approx(6 * MODELS_YAML[run.model]["n_params_non_embedding"] * B * S * row.steps)
    if study.grid.flops is not None:  # isoFLOP: five budgets spaced evenly in log C
        logs = np.diff(np.log10(study.grid.flops))
        assert len(study.grid.flops) == 5 and np.allclose(logs, logs[0], rtol=1e-3)
        assert len(runs) == 5 * len(study.grid.models)
    if path.stem.startswith("generation_phase1"):
        n = [MODELS_YAML[m]["n_params_non_embedding"] for m in study.grid.models]
        assert len(n) >= 4 and math.log10(max(n) / min(n)) >= 1.5
        if path.stem == "generation_phase1":
            assert study.grid.models == list(model_sizes())


def test_phase2_many_epochs_only_on_small_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    study = load_study(ROOT / "configs/studies/generation_phase2_cpu.yaml")
    pairs = sorted((r.config.data.unique_tokens, r.config.budget.tokens) for r in expand_runs(study))
    assert pairs == [(15000, 15000), (15000, 60000), (15000, 240000), (60000, 60000), (60000, 240000),
                     (240000, 240000)]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("grid.modelz", ["Pico"], "unknown key.*'modelz'"),
    ("grid.models", ["Huge"], r"grid\.models\[0\].*'Huge'"),
    ("grid.tokens", [1000], "exactly one of grid.steps, grid.tokens"),
    ("grid.lr", {"M": 1e-3}, r"grid\.lr\.M"),
    ("grid.steps", [0], r"grid\.steps.*positive"),
    ("data.events", "x.root", r"data\.events.*expected a list"),
    ("data.generate", {"processes": ["ttbar"]}, "exactly one of data.generate, data.events, data.jets"),
    ("data.tokenizer", {"n_pt": 0}, r"data\.tokenizer.*n_pt"),
    ("evaluation.samples", 10, r"evaluation\.samples.*evaluation\.n"),
    ("fit.fits", [{"name": "a", "law": "cubic"}], r"fit\.fits\[0\]\.law"),
    ("name", "", "name"),
])
def test_invalid_study_names_the_field(tmp_path: Path, jets_file: Path, key: str, value: Any, message: str) -> None:
    path = write_study(tmp_path / "s.yaml", _nested_set(tiny_dict(tmp_path / "out", jets_file), key, value))
    with pytest.raises(ConfigError, match=message) as err:
        load_study(path)
    if key != "grid.modelz":
        assert "s.yaml" in str(err.value)  # the file is named too


def test_epochs_grid_and_run_ids(tmp_path: Path, jets_file: Path) -> None:
    data = tiny_dict(tmp_path / "out", jets_file)
    data["grid"] = {"models": ["Pico"], "unique_tokens": [1000, 5000], "epochs": [1, 4], "max_tokens": 10000,
                    "seeds": [7]}
    study = load_study(write_study(tmp_path / "s.yaml", data))
    runs = expand_runs(study)
    assert sorted((r.config.data.unique_tokens, r.config.budget.tokens) for r in runs) == [
        (1000, 1000), (1000, 4000), (5000, 5000)]
    assert all(r.config.seed == 7 and r.config.budget.steps is None for r in runs)
    assert [r.run_id for r in runs] == [r.run_id for r in expand_runs(load_study(tmp_path / "s.yaml"))]
    data["grid"]["max_tokens"] = 10
    with pytest.raises(ConfigError, match="grid.max_tokens=10 leaves no run"):
        expand_runs(load_study(write_study(tmp_path / "u.yaml", data)))
    data["grid"]["max_tokens"] = 10000
    # the data settings are part of the run: another binning gives other run ids
    data["data"]["tokenizer"]["n_pt"] = 9
    other = expand_runs(load_study(write_study(tmp_path / "t.yaml", data)))
    assert not {r.run_id for r in runs} & {r.run_id for r in other}


def test_plan_numbers(tmp_path: Path, jets_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny_dict(tmp_path / "out", jets_file)
    data["grid"] = {"models": ["Pico", "XS"], "flops": [1.0e9]}
    data["plan"] = {"sustained_flops": 1.0e6}
    study = load_study(write_study(tmp_path / "s.yaml", data))
    rows = plan_rows(study, expand_runs(study))
    vocab = 8 * 4 * 4 + 3
    B, S = 8, 24
    for row in rows:
        shape = MODELS_YAML[row.model]
        n_ne = shape["n_params_non_embedding"]
        n_tot = n_ne + vocab * shape["d_model"] + S * shape["d_model"]  # tied head, learned positions
        assert row.n_params == n_ne and row.n_params_total == n_tot
        assert row.steps == math.ceil(1.0e9 / (6 * n_ne * B * S))
        assert row.flops == pytest.approx(6 * n_ne * B * S * row.steps)
        assert row.tokens == pytest.approx(row.steps * B * 60.0)  # plan.mean_jet_tokens before the data exists
    hours = sum(6 * r.n_params_total * B * S * r.steps for r in rows) / 1.0e6 / 3600
    text = format_plan(study, rows)
    assert f"estimate {hours:.3g} GPU-hours" in text and "1e+06 FLOP/s" in text
    assert main(["plan", str(tmp_path / "s.yaml")]) == 0
    out = capsys.readouterr().out
    assert all(r.run_id in out for r in rows) and "total compute" in out


def test_train_commands_reproduce_the_run(tmp_path: Path, jets_file: Path) -> None:
    study = load_study(write_study(tmp_path / "s.yaml", tiny_dict(tmp_path / "out", jets_file)))
    runs = expand_runs(study)
    commands = job_commands(study, runs)
    for (job_id, args), run in zip(commands["train"], runs):
        assert args[:2] == ["train", "train.yaml"] and args[-3:] == ["--output", f"runs/{job_id}", "--resume"]
        assert run_id(load_run_config(study.train.config, args[2:-3])) == job_id == run.run_id
    assert [j for j, _ in commands["evaluate"]] == [r.run_id for r in runs]
    assert commands["collect"] == [("collect", ["study", "collect", "."])]


# ---------------------------------------------------------------------------- HTCondor
def test_condor_dag_runs_the_local_commands(tmp_path: Path, jets_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny_dict(tmp_path / "out", jets_file)
    data["grid"]["seeds"] = [1, 2]  # 4 runs; --test keeps two
    path = write_study(tmp_path / "s.yaml", data)
    site = tmp_path / "site.yaml"
    site_data = yaml.safe_load((ROOT / "configs/sites/generic-gpu.yaml").read_text())
    site_data.update(container_image="docker://example/hepscale:1", accounting_group="group_physics.user")
    site.write_text(yaml.safe_dump(site_data))
    assert main(["condor", str(path), "--site", str(site), "--test"]) == 0
    out_dir = tmp_path / "out"
    dag = (out_dir / "study.dag").read_text()
    study = load_study(path)
    runs = expand_runs(study)
    assert len(runs) == 4
    commands = job_commands(study, runs[:2])
    vars_lines = re.findall(r'^VARS (\w+):\d+ job_id="([^"]+)" args="(.*)"$', dag, flags=re.M)
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for kind, job_id, args in vars_lines:
        by_kind.setdefault(kind, []).append((job_id, args))
    assert set(by_kind) == {"prepare", "train", "sample", "evaluate", "collect", "fit"}
    for kind, items in by_kind.items():
        expected = [(j, condor_arguments(a).replace('"', '\\"')) for j, a in commands[kind]]
        assert items == expected, kind
    assert "PARENT prepare:0 CHILD train:0 train:1" in dag and "PARENT train:1 CHILD sample:1" in dag
    assert "RETRY train:0 3" in dag
    train_sub = (out_dir / "train.sub").read_text()
    for line in ("checkpoint_exit_code = 85", "request_gpus = 1", "request_memory = 32GB",
                 "transfer_checkpoint_files = runs/$(job_id)", "preserve_relative_paths = True",
                 "container_image = docker://example/hepscale:1", "accounting_group = group_physics.user",
                 f"transfer_input_files = train.yaml, {data_paths(study)['tokens']}"):
        assert line in train_sub
    assert "universe = local" in (out_dir / "collect.sub").read_text()  # on the access point, no transfers
    evaluate_sub = (out_dir / "evaluate.sub").read_text()
    assert "transfer_output_files = runs/$(job_id)/result.json\n" in evaluate_sub
    assert "universe = vanilla" in evaluate_sub and "checkpoint_exit_code" not in evaluate_sub
    queue = (out_dir / "train.queue.sub").read_text()
    assert "queue job_id, args from train.queue.items" in queue
    rows = validate_submit(queue, items=(out_dir / "train.queue.items").read_text())
    assert [r["job_id"] for r in rows] == [r.run_id for r in runs[:2]]
    assert (out_dir / "hepscale_job.sh").is_file() and (out_dir / "study.yaml").is_file()
    assert len(json.loads((out_dir / "plan.json").read_text())["runs"]) == 4  # the plan keeps every run
    copy = load_study(out_dir / "study.yaml")
    assert copy.output == "." and [r.run_id for r in expand_runs(copy, train_config=out_dir / "train.yaml")] == [
        r.run_id for r in runs]
    assert main(["condor", str(path), "--no-prepare"]) == 0  # data prepared on the access point instead
    dag = (out_dir / "study.dag").read_text()
    assert "prepare" not in dag and dag.count("\nJOB train:") == 4
    capsys.readouterr()
    assert main(["condor", str(path), "--submit"]) == 2  # no schedd here: a clear error
    assert "HTCondor access point" in capsys.readouterr().err


# ---------------------------------------------------------------------------- local executor
@pytest.fixture(scope="module")
def finished_study(tmp_path_factory: pytest.TempPathFactory, jets_file: Path) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("study_a")
    path = write_study(base / "s.yaml", tiny_dict(base / "out", jets_file))
    return path, run_study(path, jobs=2, progress=False)


def _table(folder: Path) -> pd.DataFrame:
    """The runs table without wall-clock time and code provenance (commits land while tests run)."""
    table = pd.read_parquet(folder / "runs.parquet")
    drop = ["elapsed_s", *[c for c in table.columns if "code_version" in c]]
    return table.drop(columns=drop).sort_values("run_id").reset_index(drop=True)


def test_local_study_end_to_end(finished_study: tuple[Path, dict[str, Any]]) -> None:
    path, out = finished_study
    folder = Path(out["study_dir"])
    assert out["done"] == 2 and not out["failed"] and not out["interrupted"]
    table = pd.read_parquet(folder / "runs.parquet")
    study = load_study(path)
    assert sorted(table["run_id"]) == sorted(r.run_id for r in expand_runs(study))
    assert sorted(table["model"]) == ["Pico", "XXS"]
    assert (table["steps"] == 8).all() and (table["evaluation.swd.n_bootstraps"] == 3).all()
    assert (table["evaluation.swd.mean"] > 0).all() and table["evaluation.swd.floor_mean"].notna().all()
    assert table["code_version.version"].notna().all() and (table["config.data.tokens"] ==
                                                             data_paths(study)["tokens"]).all()
    assert len(pd.read_csv(folder / "runs.csv")) == 2
    # the reference is the validation split of the token dataset
    info = json.loads((folder / data_paths(study)["tokens"] / "tokenizer.json").read_text())
    assert table["evaluation.n_reference"].iloc[0] == info["n_val_jets"] == 240
    fit = json.loads((folder / "fits" / "loss_vs_N.json").read_text())
    assert fit["inputs"]["n_rows"] == 2 and fit["law"] == "log"
    # the fit's loss values are the runs' final validation losses
    assert sorted(fit["inputs"]["data"]["final_val_loss"]) == pytest.approx(sorted(table["final_val_loss"]))
    # summary table and the SWD-vs-N figure with its floor band
    summary = (folder / "summary.txt").read_text()
    for _, row in table.iterrows():
        assert f"{row['final_val_loss']:.4f}" in summary and f"{row['evaluation.swd.mean']:.4g} +- " in summary
    assert out["figures"] == [str(folder / "figures" / f"swd_vs_N.{s}") for s in ("pdf", "png")]
    assert all(Path(f).stat().st_size > 0 for f in out["figures"])


def test_rerun_of_a_finished_study_does_nothing(finished_study: tuple[Path, dict[str, Any]]) -> None:
    path, out = finished_study
    folder = Path(out["study_dir"])
    before = _table(folder)
    again = run_study(path, jobs=2, progress=False, fits=False)
    assert again["done"] == 2
    for log in folder.glob("runs/*/train.log"):
        assert log.read_text().count("# attempt") == 1  # no run was started again
    pd.testing.assert_frame_equal(_table(folder), before)


def test_interrupted_study_gives_the_same_table(tmp_path: Path, jets_file: Path,
                                                finished_study: tuple[Path, dict[str, Any]]) -> None:
    """Interrupt a study while its first run is being evaluated, re-run it: same runs table."""
    _, reference = finished_study
    path = write_study(tmp_path / "s.yaml", tiny_dict(tmp_path / "out", jets_file))
    runs = tmp_path / "out" / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "hepscale", "study", "run", str(path), "--local", "-j", "2",
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not list(runs.glob("*/result.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=180)[0].decode()
    assert proc.returncode == 130, output
    assert "interrupted" in output
    finished = [p for p in runs.glob("*/result.json") if "evaluation" in json.loads(p.read_text())]
    assert len(finished) < 2  # the study really stopped half-way
    table = tmp_path / "out" / "runs.parquet"
    assert not table.exists() or len(pd.read_parquet(table)) < 2
    out = run_study(path, jobs=2, progress=False, fits=False)
    assert out["done"] == 2 and not out["failed"]
    pd.testing.assert_frame_equal(_table(tmp_path / "out"), _table(Path(reference["study_dir"])))


def test_failed_run_is_retried_and_reported(tmp_path: Path, jets_file: Path) -> None:
    data = tiny_dict(tmp_path / "out", jets_file)
    data["grid"] = {"models": ["Pico"], "steps": [4], "unique_tokens": [10**9]}  # more than train.bin holds
    data["retries"] = 1
    out = run_study(write_study(tmp_path / "s.yaml", data), jobs=1, progress=False)
    assert out["done"] == 0 and len(out["failed"]) == 1 and out["table"] is None
    failure = out["failed"][0]
    log = Path(failure["log"])
    assert failure["kind"] == "train" and log.name == "train.log" and log.parent.name == failure["run_id"]
    text = log.read_text()
    assert text.count("# attempt") == 2 and "data.unique_tokens=1000000000 exceeds" in text


def test_collect_keeps_only_runs_of_the_plan(finished_study: tuple[Path, dict[str, Any]], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(finished_study[1]["study_dir"], folder)
    stale = folder / "runs" / "0000000000000000"
    shutil.copytree(next((folder / "runs").iterdir()), stale)
    result = json.loads((stale / "result.json").read_text())
    result["run_id"] = "0000000000000000"
    (stale / "result.json").write_text(json.dumps(result))
    assert main(["collect", str(folder)]) == 0
    assert "2 runs" in capsys.readouterr().out
    assert "0000000000000000" not in set(pd.read_parquet(folder / "runs.parquet")["run_id"])
    (folder / "plan.json").unlink()
    assert collect(folder)["rows"] == 3


def test_prepare_from_generated_events_is_cached(tmp_path: Path, generated_samples: dict[str, Path],
                                                 dask_client: Any) -> None:
    data = tiny_dict(tmp_path / "out", Path("unused"))
    data["data"] = {"events": [str(p) for p in generated_samples.values()],
                    "process": {"chunksize": 200},
                    "tokenizer": {"n_pt": 8, "n_eta": 4, "n_phi": 4, "max_constituents": 32, "val_fraction": 0.3}}
    study = load_study(write_study(tmp_path / "s.yaml", data))
    folder = tmp_path / "out"
    paths = prepare(study, folder, client=dask_client, processor_factory=JetProcessor)
    jets = folder / paths["jets"]
    tokens = folder / paths["tokens"]
    info = json.loads((tokens / "tokenizer.json").read_text())
    ref = ak.from_parquet(folder / paths["reference"])
    assert len(ref) == info["n_val_jets"] > 0
    assert info["n_train_jets"] + info["n_val_jets"] == len(ak.from_parquet(jets))
    stamps = {p: p.stat().st_mtime_ns for p in (jets, tokens / "train.bin", folder / paths["reference"])}
    prepare(study, folder, client=dask_client, processor_factory=JetProcessor)  # everything is cached
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # another binning: the jets are reused, new tokens and reference beside the old ones
    data["data"]["tokenizer"]["n_pt"] = 6
    other = prepare(load_study(write_study(tmp_path / "t.yaml", data)), folder, client=dask_client, processor_factory=JetProcessor)
    assert other["tokens"] != paths["tokens"] and (folder / other["tokens"] / "train.bin").is_file()
    assert jets.stat().st_mtime_ns == stamps[jets]



def test_one_study_run_per_folder(tmp_path: Path, jets_file: Path) -> None:
    from hepscale.study.study import StudyError, _folder_lock

    path = write_study(tmp_path / "s.yaml", tiny_dict(tmp_path / "out", jets_file))
    (tmp_path / "out").mkdir()
    with _folder_lock(tmp_path / "out"):
        with pytest.raises(StudyError, match="another 'hepscale study run' is using"):
            run_study(path, progress=False)
    assert not (tmp_path / "out" / "runs").exists()


def test_new_evaluation_settings_reevaluate_without_retraining(finished_study: tuple[Path, dict[str, Any]],
                                                               tmp_path: Path) -> None:
    import shutil

    path, out = finished_study
    folder = tmp_path / "copy"
    shutil.copytree(out["study_dir"], folder)
    study = load_study(path, overrides=["evaluation.bootstraps=4"])
    again = run_study(study, jobs=2, progress=False, output=folder, fits=False)
    assert again["done"] == 2
    table = pd.read_parquet(folder / "runs.parquet")
    assert (table["evaluation.swd.n_bootstraps"] == 4).all()
    for run in folder.glob("runs/*"):
        assert (run / "train.log").read_text().count("# attempt") == 1  # not trained again
        assert (run / "sample.log").read_text().count("# attempt") == 1  # same samples
        assert (run / "evaluate.log").read_text().count("# attempt") == 2
