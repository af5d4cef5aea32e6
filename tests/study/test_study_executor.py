from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from _processes import gone, hepscale_children, kill_all, wait_until
from _study_setup import tiny_dict, write_study

from hepscale.study import collect, data_paths, expand_runs, load_study, main, run_study


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
    # the study's figures, and each SWD observable of the samples against the real jets
    names = ("swd_vs_N", "loss_vs_D", "search_space", "swd_vs_D", "swd_vs_loss",
             *(f"observables/{n}" for n in table["evaluation.swd.observables"].iloc[0]))
    assert out["figures"] == [str(folder / "figures" / f"{n}.{s}") for n in names for s in ("pdf", "png")]
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


def test_finish_redoes_the_end_of_a_study(finished_study: tuple[Path, dict[str, Any]], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``study finish``: the same table and fits as the study's own end; a failed fit is exit 1 (0 with
    --fit-failures-ok) and listed in finish.json; a folder without study.yaml is exit 2."""
    import shutil

    import yaml

    folder = tmp_path / "copy"
    shutil.copytree(finished_study[1]["study_dir"], folder)
    for name in ("runs.parquet", "runs.csv", "summary.txt"):
        (folder / name).unlink()
    shutil.rmtree(folder / "fits")
    assert main(["finish", str(folder)]) == 0
    pd.testing.assert_frame_equal(_table(folder), _table(Path(finished_study[1]["study_dir"])))
    record = json.loads((folder / "finish.json").read_text())
    assert record["fits_failed"] == [] and list(record["fits"]) == list(finished_study[1]["fits"])
    assert (folder / "summary.txt").read_text() == (Path(finished_study[1]["study_dir"]) / "summary.txt").read_text()
    study = yaml.safe_load((folder / "study.yaml").read_text())
    study["fit"]["fits"].append({"name": "broken", "law": "log", "x": "N", "args": ["--y-col", "no_such_column"]})
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    assert main(["finish", str(folder)]) == 1
    assert main(["finish", str(folder), "--fit-failures-ok"]) == 0
    assert json.loads((folder / "finish.json").read_text())["fits_failed"] == ["broken"]
    assert "no_such_column" in (folder / "fits" / "broken.log").read_text()
    capsys.readouterr()
    assert main(["finish", str(tmp_path)]) == 2
    assert f"{tmp_path} is not a study folder: it has no study.yaml" in capsys.readouterr().err


def test_one_study_run_per_folder(tmp_path: Path, jets_file: Path) -> None:
    from hepscale.study import StudyError
    from hepscale.study.executor import _folder_lock

    path = write_study(tmp_path / "s.yaml", tiny_dict(tmp_path / "out", jets_file))
    (tmp_path / "out").mkdir()
    with _folder_lock(tmp_path / "out"):
        with pytest.raises(StudyError, match="another 'hepscale study run' is using"):
            run_study(path, progress=False)
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize(("override", "column", "value"), [
    ("evaluation.bootstraps=4", "evaluation.swd.n_bootstraps", 4),
    ("evaluation.projections=64", "evaluation.swd.n_projections", 64),
    ("evaluation.seed=3", "evaluation.swd.seed", 3),
    (None, "evaluation.reference_resolution", "model"),  # an evaluation against raw jets, of earlier versions
    (None, "evaluation.swd.method", "histogram"),  # the exact estimator of earlier versions
    (None, "evaluation.swd.bins", 1000),  # another bin count
])
def test_new_evaluation_settings_reevaluate_without_retraining(finished_study: tuple[Path, dict[str, Any]],
                                                               tmp_path: Path, override: str | None, column: str,
                                                               value: Any) -> None:
    import json
    import shutil

    path, out = finished_study
    folder = tmp_path / "copy"
    shutil.copytree(out["study_dir"], folder)
    if override is None:  # the record of an evaluation that differs in `column` only
        stale = {"evaluation.reference_resolution": "raw", "evaluation.swd.method": "exact",
                 "evaluation.swd.bins": 100}[column]
        for result in folder.glob("runs/*/result.json"):
            record = json.loads(result.read_text())
            *keys, last = column.split(".")
            node = record
            for key in keys:
                node = node[key]
            assert node[last] == value
            node[last] = stale
            result.write_text(json.dumps(record))
    study = load_study(path, overrides=[override] if override else [])
    again = run_study(study, jobs=2, progress=False, output=folder, fits=False)
    assert again["done"] == 2
    table = pd.read_parquet(folder / "runs.parquet")
    assert (table[column] == value).all()
    for run in folder.glob("runs/*"):
        assert (run / "train.log").read_text().count("# attempt") == 1  # not trained again
        # same samples, except for a new seed, which the sampler takes too
        assert (run / "sample.log").read_text().count("# attempt") == (2 if override == "evaluation.seed=3" else 1)
        assert (run / "evaluate.log").read_text().count("# attempt") == 2


def test_plan_uses_the_accounting_of_the_trainer(finished_study: tuple[Path, dict[str, Any]],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """With the token dataset in the study folder, the plan's N, U, steps and C are the runs' own."""
    from hepscale.runs.folder import RunFolder
    from hepscale.study import plan_rows

    path, out = finished_study
    folder = Path(out["study_dir"])
    study = load_study(path)
    rows = plan_rows(study, expand_runs(study), study_dir=folder)
    assert len(rows) == 2
    for row in rows:
        result = RunFolder.in_study(folder, row.run_id).read_result()
        assert (row.n_params, row.n_params_total) == (result["n_params_non_embedding"], result["n_params_total"])
        assert row.steps == result["steps"] == 8 and row.unique_tokens == result["unique_tokens"]
        assert row.flops == result["flops"] and row.flops_total == result["flops_total_params"]
        assert row.epochs == pytest.approx(row.tokens / result["unique_tokens"])
    # a U budget beyond train.bin: planned over all of it, with the trainer's refusal as a warning
    big = load_study(path, overrides=["grid.unique_tokens=[1000000000]"])
    with caplog.at_level(logging.WARNING, logger="hepscale.study.plan"):
        (row, _) = plan_rows(big, expand_runs(big), study_dir=folder)
    assert "data.unique_tokens=1000000000 exceeds the" in caplog.text
    assert row.unique_tokens == rows[0].unique_tokens and row.steps == 8


def test_refused_study_run_leaves_the_folder_alone(tmp_path: Path, jets_file: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A second 'study run' (or prepare, condor) on a folder in use changes none of its files."""
    from hepscale.study import StudyError, write_study_files
    from hepscale.study.executor import _folder_lock

    folder = tmp_path / "out"
    first = load_study(write_study(tmp_path / "a.yaml", tiny_dict(folder, jets_file)))
    write_study_files(first, folder, expand_runs(first))  # as the running study wrote them
    names = ("plan.json", "study.yaml", "train.yaml")
    before = {n: (folder / n).read_bytes() for n in names}
    data = tiny_dict(folder, jets_file)
    data["grid"] = {"models": ["Pico"], "steps": [4]}  # another grid: other runs in plan.json
    second = write_study(tmp_path / "b.yaml", data)
    assert len(json.loads(before["plan.json"])["runs"]) == 2
    with _folder_lock(folder):  # held as a running 'study run' holds it
        with pytest.raises(StudyError, match="another 'hepscale study run' is using"):
            run_study(second, progress=False)
        capsys.readouterr()
        assert main(["prepare", str(second)]) == 2 and main(["condor", str(second)]) == 2
        assert capsys.readouterr().err.count("another 'hepscale study run' is using") == 2
    assert {n: (folder / n).read_bytes() for n in names} == before
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, ".hepscale-lock"])


def _slow_fit_study(path: Path, tmp_path: Path, **fit: Any) -> Path:
    data = yaml.safe_load(path.read_text())
    data["fit"].update(fit)
    return write_study(tmp_path / "variant.yaml", data)


def test_sigterm_during_the_fits_stops_the_fit(finished_study: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """SIGTERM of 'study run' while a fit runs: exit 130 and no fit process left behind."""
    import shutil

    path, out = finished_study
    folder = tmp_path / "copy"
    shutil.copytree(out["study_dir"], folder)
    slow = _slow_fit_study(path, tmp_path, n_bootstrap=10**6)  # a fit that runs for minutes
    proc = subprocess.Popen([sys.executable, "-m", "hepscale", "study", "run", str(slow), "--local", "--output",
                             str(folder), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    fits: list[Any] = []
    try:
        assert wait_until(lambda: bool(hepscale_children(proc.pid, "fit")) or proc.poll() is not None, 240)
        fits = hepscale_children(proc.pid, "fit")
        assert fits, "no fit started"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0].decode()
        assert proc.returncode == 130, output
        assert wait_until(lambda: gone(fits), timeout=10), [p.cmdline() for p in fits]
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_all(fits)


def test_fit_with_too_few_runs_is_skipped_not_failed(finished_study: tuple[Path, dict[str, Any]],
                                                      tmp_path: Path) -> None:
    """A 2-model study with the proxy fit (3 runs at least) ends with exit 0 and a warning."""
    import shutil

    path, out = finished_study
    folder = tmp_path / "copy"
    shutil.copytree(out["study_dir"], folder)
    variant = _slow_fit_study(path, tmp_path, fits=[{"name": "loss_vs_N", "law": "log", "x": "N"},
                                                    {"name": "swd_vs_loss", "law": "proxy"}])
    res = subprocess.run([sys.executable, "-m", "hepscale", "study", "run", str(variant), "--local", "--output",
                          str(folder), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    why = "2 run(s) in the runs table, law 'proxy' needs at least 3"
    assert f"fit swd_vs_loss: skipped ({why})" in res.stdout
    assert f"fit swd_vs_loss skipped: {why}" in res.stderr  # the warning
    assert f"fit loss_vs_N: {folder / 'fits' / 'loss_vs_N.json'}" in res.stdout
    assert not (folder / "fits" / "swd_vs_loss.json").exists() and not (folder / "fits" / "swd_vs_loss.log").exists()
